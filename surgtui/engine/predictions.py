"""predictions.json: a COCO-style document of `predict`'s detections (images, categories, scored annotations).

Boxes are `[x, y, w, h]` in the original image's pixels; a video's frames are its images.
"""

from __future__ import annotations

import numpy as np
import torch

from surgtui.config.schema import CLASS_NAMES
from surgtui.data.formats import CATEGORIES
from surgtui.engine.sources import Item

PREDICTIONS_FILE = "predictions.json"


class Collector:
    """Builds predictions.json: images, categories, annotations (COCO results with ids and names)."""

    def __init__(self, video: bool) -> None:
        self.video = video
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.per_class = np.zeros(len(CLASS_NAMES), dtype=np.int64)

    def add(self, item: Item, det: torch.Tensor) -> None:
        image_id = item.index + 1
        image = {"id": image_id, "file_name": item.name, "width": item.width, "height": item.height}
        if self.video:
            image["frame"] = item.index
            if item.time is not None:
                image["time"] = round(item.time, 6)
        self.images.append(image)
        for x1, y1, x2, y2, score, label in det.tolist():
            label = int(label)
            w, h = x2 - x1, y2 - y1
            ann = {"id": len(self.annotations) + 1, "image_id": image_id}
            ann.update({"frame": item.index} if self.video else {"file_name": item.name})
            ann.update(
                {
                    "category_id": label + 1,
                    "category": CLASS_NAMES[label],
                    "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                    "area": round(w * h, 2),
                    "score": round(score, 5),
                    "iscrowd": 0,
                }
            )
            self.annotations.append(ann)
            self.per_class[label] += 1

    def document(self, info: dict) -> dict:
        return {
            "info": info,
            "images": self.images,
            "categories": CATEGORIES,
            "annotations": self.annotations,
        }
