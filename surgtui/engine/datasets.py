"""Detection datasets for the engine: letterboxed images in [0, 1] and boxes in letterboxed pixels.

Item: (image float32 3×S×S, target) with target keys
  boxes      float32 [N, 4] x1 y1 x2 y2 in pixels of the S×S letterboxed image
  labels     int64 [N]: 0 needle, 1 needle_driver (COCO category_id = label + 1)
  image_id   int (the COCO image id)
  file       str (image path)
  orig_size  (h, w) of the original image
  letterbox  (scale, pad_x, pad_y): original (x, y) = ((x' - pad_x) / scale, (y' - pad_y) / scale)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

from surgtui.config import Experiment
from surgtui.config.schema import AugmentConfig, DataConfig
from surgtui.data import formats
from surgtui.data.cache import TRAIN_SPLIT, VAL_SPLIT, cache_root, synthetic_dataset
from surgtui.engine.transforms import letterbox, letterbox_geometry, train_transforms
from surgtui.errors import UserError


class DetectionDataset(Dataset):
    """Images and boxes of one split; augmented when `augment` is given (training)."""

    def __init__(self, records: list[formats.ImageRecord], img_size: int, augment: AugmentConfig | None = None) -> None:
        self.records = records
        self.img_size = img_size
        self.transforms = train_transforms(augment) if augment is not None else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        r = self.records[index]
        canvas, scale, pad_x, pad_y, orig_size = letterbox(r.path, self.img_size)
        if orig_size != (r.height, r.width):
            raise UserError(f"{r.path}: image is {orig_size[1]}x{orig_size[0]} but its annotations say {r.width}x{r.height}")
        boxes = tv_tensors.BoundingBoxes(torch.from_numpy(r.boxes * scale) + torch.tensor([pad_x, pad_y] * 2),
                                         format="XYXY", canvas_size=(self.img_size, self.img_size))
        target = {"boxes": boxes, "labels": torch.from_numpy(r.labels)}
        if self.transforms is not None:
            image, target = self.transforms(canvas, target)
        else:
            image = v2.functional.to_image(canvas)
        return image.as_subclass(torch.Tensor).float().div_(255), {
            "boxes": target["boxes"].as_subclass(torch.Tensor).float(),
            "labels": target["labels"],
            "image_id": r.id,
            "file": str(r.path),
            "orig_size": orig_size,
            "letterbox": (scale, pad_x, pad_y),
        }

    def coco_gt(self) -> dict:
        """COCO ground truth of this split in letterboxed pixels (images are S×S), for pycocotools."""
        images, annotations = [], []
        s = self.img_size
        for r in self.records:
            scale, _, _, pad_x, pad_y = letterbox_geometry(r.width, r.height, s)
            images.append({"id": r.id, "file_name": r.path.name, "width": s, "height": s})
            for (x1, y1, x2, y2), label in zip(r.boxes.tolist(), r.labels.tolist()):
                annotations.append(formats.coco_annotation(len(annotations) + 1, r.id, label, x1 * scale + pad_x,
                                                           y1 * scale + pad_y, (x2 - x1) * scale, (y2 - y1) * scale))
        return formats.coco_dict(images, annotations)


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """Stack images into B×3×S×S; keep each image's target dict (box counts differ)."""
    images, targets = zip(*batch)
    return default_collate(list(images)), list(targets)  # stacks straight into shared memory inside a worker


def _resolve_source(data: DataConfig) -> tuple[Path, formats.Format, str, str]:
    """(directory, layout, train split, val split) that `data` points to; UserError if unusable."""
    if data.source == "synthetic":
        return synthetic_dataset(data.synthetic, cache_root(data.cache_dir)), "coco", TRAIN_SPLIT, VAL_SPLIT
    root = Path(data.source).expanduser()
    if not root.is_dir():
        raise UserError(f"data.source = {data.source!r}: no such directory; expected \"synthetic\" or a data set directory")
    found = formats.detect_format(root)
    if found == "simsurgskill":
        raise UserError(f"data.source = {data.source!r}: raw SimSurgSkill videos; run "
                        f"`surgtui data prepare {root} --out DIR` and point data.source at DIR")
    wanted = "coco" if data.format == "simsurgskill" else data.format  # a prepared SimSurgSkill set is COCO
    if wanted not in ("auto", found):
        raise UserError(f"data.format = {data.format!r} but {root} holds a {found} layout; set data.format = \"auto\"")
    return root, found, data.train_split, data.val_split


def build_datasets(exp: Experiment) -> tuple[DetectionDataset, DetectionDataset]:
    """(train, val) datasets for `exp`: train augmented when `data.augment.enabled`, val never."""
    root, fmt, train_split, val_split = _resolve_source(exp.data)
    augment = exp.data.augment if exp.data.augment.enabled else None
    size = exp.model.img_size
    return (DetectionDataset(formats.read_split(root, fmt, train_split), size, augment),
            DetectionDataset(formats.read_split(root, fmt, val_split), size))
