"""predictions.json: a COCO-style document of `predict`'s detections (images, categories, scored annotations).

Boxes are `[x, y, w, h]` in the original image's pixels; a video's frames are its images.
With --save-txt, also one YOLO label file per image or frame in DIR/labels/ (Ultralytics' `save_txt`:
`class cx cy w h`, 0..1 of the image, `%g`; the score appended with --save-conf).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from surgtui.config.schema import CLASS_NAMES
from surgtui.data.formats import CATEGORIES
from surgtui.data.media import label_name
from surgtui.engine.sources import Item
from surgtui.fileio import write_text_atomic

PREDICTIONS_FILE = "predictions.json"


class Collector:
    """Builds predictions.json: images, categories, annotations (COCO results with ids and names)."""

    def __init__(self, video: bool, labels: Path | None = None, save_conf: bool = False) -> None:
        """`labels`: write a YOLO label file per image there (--save-txt), with the score when `save_conf`."""
        self.video = video
        self.labels = labels
        self.save_conf = save_conf
        self.label_files = 0
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
        lines: list[str] = []
        for x1, y1, x2, y2, score, label in det.tolist():
            label = int(label)
            w, h = x2 - x1, y2 - y1
            bbox = [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)]
            ann = {"id": len(self.annotations) + 1, "image_id": image_id}
            ann.update({"frame": item.index} if self.video else {"file_name": item.name})
            ann.update(
                {
                    "category_id": label + 1,
                    "category": CLASS_NAMES[label],
                    "bbox": bbox,
                    "area": round(w * h, 2),
                    "score": round(score, 5),
                    "iscrowd": 0,
                }
            )
            self.annotations.append(ann)
            self.per_class[label] += 1
            lines.append(
                yolo_line(label, bbox, item.width, item.height, ann["score"] if self.save_conf else None)
            )
        # An empty file for no detections (Ultralytics writes none): it replaces a stale one in a reused DIR.
        if self.labels is not None:
            name = label_name(item.name, item.index if self.video else None)
            write_text_atomic(
                self.labels / name, "".join(f"{line}\n" for line in lines), durable=False, parents=True
            )
            self.label_files += 1

    def document(self, info: dict) -> dict:
        return {
            "info": info,
            "images": self.images,
            "categories": CATEGORIES,
            "annotations": self.annotations,
        }


def yolo_line(label: int, bbox: list[float], width: int, height: int, score: float | None = None) -> str:
    """`class cx cy w h [score]` of a box `[x, y, w, h]` in pixels, 0..1 of the image, `%g` as Ultralytics writes.

    From predictions.json's rounded box and score, so the two files give the same box.
    """
    x, y, w, h = bbox
    values = (label, (x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
    return " ".join(f"{v:g}" for v in values + ((score,) if score is not None else ()))
