"""Detection datasets for the engine: letterboxed images in [0, 1] and boxes in letterboxed pixels.

Item: (image float32 3×H×W, target). H×W is the image's letterbox canvas: S×S, or with
`rect` S on the long side and the short side rounded up to a multiple of 32 (640×360 at
S = 320 → 192×320); a training mosaic is `mosaic_canvas` (S×S, or the split's usual rect canvas). Target keys:
  boxes      float32 [N, 4] x1 y1 x2 y2 in pixels of that canvas
  labels     int64 [N]: 0 needle, 1 needle_driver (COCO category_id = label + 1)
  image_id   int (the COCO image id; a mosaic's first image)
  file       str (image path; a mosaic's first image)
  orig_size  (h, w) of the original image; the mosaic's canvas (h, w) for a mosaic
  letterbox  (scale, pad_x, pad_y): original (x, y) = ((x' - pad_x) / scale, (y' - pad_y) / scale);
             (1.0, 0, 0) for a mosaic, which has no single original

An index is an int, or `(int, use_mosaic)` from a sampler that switches mosaic per epoch
(the sampler runs in the main process, so this works with persistent workers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import torch
from torch.utils.data import Dataset, default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

from surgtui.config.schema import SYNTHETIC_SOURCE, AugmentConfig, DataConfig, Experiment
from surgtui.data import formats
from surgtui.data.cache import TRAIN_SPLIT, VAL_SPLIT, cache_root, synthetic_dataset
from surgtui.data.layouts import Layout, open_layout, training_layout, training_splits
from surgtui.data.problems import Problems
from surgtui.engine.transforms import (
    PAD_VALUE,
    letterbox,
    letterbox_canvas,
    letterbox_geometry,
    load_resized,
    mosaic4,
    train_transforms,
)
from surgtui.errors import UserError


class DetectionDataset(Dataset):
    """Images and boxes of one split; augmented when `augment` is given (training).

    `rect`: letterbox onto the rectangular canvas (validation; training samples that are
    not mosaics) instead of S×S. With `augment.mosaic` > 0 a training sample is a 4-image
    mosaic with that probability (`uses_mosaic`).
    """

    def __init__(
        self,
        records: list[formats.ImageRecord],
        img_size: int,
        augment: AugmentConfig | None = None,
        rect: bool = False,
    ) -> None:
        self.records = records
        self.img_size = img_size
        self.rect = rect
        self._mosaic_canvas: tuple[int, int] | None = None
        self.augment = augment if augment is not None and augment.enabled else None
        self.transforms = train_transforms(self.augment) if self.augment is not None else None
        self.mosaic_transforms = train_transforms(self.augment, affine=False) if self.uses_mosaic else None

    @property
    def mosaic_canvas(self) -> tuple[int, int]:
        """(W, H) of a mosaic: S×S, or with `rect` the most common rect canvas of the split.

        A 16:9 data set gets 16:9 mosaics: the frames the model sees in deployment, at 60 % of the
        square's pixels (a square mosaic step cost 2.3x a rect one on CPU).
        """
        if self._mosaic_canvas is None:
            sizes = Counter(
                letterbox_canvas(r.width, r.height, self.img_size, self.rect) for r in self.records
            )
            self._mosaic_canvas = sizes.most_common(1)[0][0] if sizes else (self.img_size, self.img_size)
        return self._mosaic_canvas

    @property
    def uses_mosaic(self) -> bool:
        """True when training samples may be mosaics (augmenting with `augment.mosaic` > 0)."""
        return self.augment is not None and self.augment.mosaic > 0

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int | tuple[int, bool]) -> tuple[torch.Tensor, dict]:
        """Item `index`, or `(index, use_mosaic)`: False never mosaics; True and a plain int mosaic
        with probability `augment.mosaic` when augmenting."""
        i, allow = (int(index[0]), bool(index[1])) if isinstance(index, (tuple, list)) else (int(index), True)
        if allow and self.uses_mosaic and torch.rand(()).item() < self.augment.mosaic:
            return self._mosaic(i)
        r = self.records[i]
        canvas, scale, pad_x, pad_y, orig_size = letterbox(r.path, self.img_size, self.rect)
        _check_size(r, orig_size)
        boxes = tv_tensors.BoundingBoxes(
            torch.from_numpy(r.boxes * scale) + torch.tensor([pad_x, pad_y] * 2),
            format="XYXY",
            canvas_size=(canvas.height, canvas.width),
        )
        target = {"boxes": boxes, "labels": torch.from_numpy(r.labels)}
        if self.transforms is not None:
            image, target = self.transforms(canvas, target)
        else:
            image = v2.functional.to_image(canvas)
        return _item(image, target, r, orig_size, (scale, pad_x, pad_y))

    def _mosaic(self, i: int) -> tuple[torch.Tensor, dict]:
        """Record i and 3 random others (torch's generator: per-epoch seeding applies) as one mosaic."""
        s, aug = self.img_size, self.augment
        picks = [i, *torch.randint(len(self.records), (3,)).tolist()]
        images, boxes = [], []
        for j in picks:
            r = self.records[j]
            image, scale, orig_size = load_resized(r.path, s)
            _check_size(r, orig_size)
            images.append(image)
            boxes.append(torch.from_numpy(r.boxes) * scale)
        w, h = self.mosaic_canvas
        canvas, xyxy = mosaic4(images, boxes, s, aug.scale, aug.translate, (w, h))
        target = {
            "boxes": tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=(h, w)),
            "labels": torch.cat([torch.from_numpy(self.records[j].labels) for j in picks]),
        }
        image, target = self.mosaic_transforms(canvas, target)
        return _item(image, target, self.records[i], (h, w), (1.0, 0, 0))

    def coco_gt(self) -> dict:
        """COCO ground truth of this split in letterboxed pixels, for pycocotools.

        Each image's width/height is its canvas (S×S, or the rect one), as in the validation items.
        """
        images, annotations = [], []
        s = self.img_size
        for r in self.records:
            scale, _, _, pad_x, pad_y = letterbox_geometry(r.width, r.height, s, rect=self.rect)
            width, height = letterbox_canvas(r.width, r.height, s, self.rect)
            images.append({"id": r.id, "file_name": r.path.name, "width": width, "height": height})
            for (x1, y1, x2, y2), label in zip(r.boxes.tolist(), r.labels.tolist()):
                annotations.append(
                    formats.coco_annotation(
                        len(annotations) + 1,
                        r.id,
                        label,
                        x1 * scale + pad_x,
                        y1 * scale + pad_y,
                        (x2 - x1) * scale,
                        (y2 - y1) * scale,
                    )
                )
        return formats.coco_dict(images, annotations)


def _check_size(r: formats.ImageRecord, orig_size: tuple[int, int]) -> None:
    if orig_size != (r.height, r.width):
        raise UserError(
            f"{r.path}: image is {orig_size[1]}x{orig_size[0]} but its annotations say {r.width}x{r.height}"
        )


def _item(
    image: torch.Tensor,
    target: dict,
    r: formats.ImageRecord,
    orig_size: tuple[int, int],
    geometry: tuple[float, int, int],
) -> tuple[torch.Tensor, dict]:
    return image.as_subclass(torch.Tensor).float().div_(255), {
        "boxes": target["boxes"].as_subclass(torch.Tensor).float(),
        "labels": target["labels"],
        "image_id": r.id,
        "file": str(r.path),
        "orig_size": orig_size,
        "letterbox": geometry,
    }


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """Stack images into B×3×H×W; keep each image's target dict (box counts differ).

    Images of different sizes (rect canvases) are padded to the batch's largest H and W
    at the bottom and right with the letterbox grey, so boxes keep their coordinates.
    """
    images, targets = zip(*batch)
    h = max(im.shape[-2] for im in images)
    w = max(im.shape[-1] for im in images)
    grey = (
        torch.tensor(PAD_VALUE, dtype=torch.float32) / 255
    ).item()  # the same float32 as a 114 pixel / 255
    padded = [
        im
        if im.shape[-2:] == (h, w)
        else torch.nn.functional.pad(im, (0, w - im.shape[-1], 0, h - im.shape[-2]), value=grey)
        for im in images
    ]
    return default_collate(padded), list(targets)  # stacks straight into shared memory inside a worker


def resolve_source(data: DataConfig) -> Layout:
    """The layout `data` points to (the synthetic set's for "synthetic"); UserError if unusable for training."""
    source = formats.source_path(data.source)
    if source is None:
        return open_layout(synthetic_dataset(data.synthetic, cache_root(data.cache_dir)), "coco")
    return training_layout(data, source)


def build_datasets(
    exp: Experiment, log: Callable[[str], None] | None = None
) -> tuple[DetectionDataset, DetectionDataset]:
    """(train, val) datasets for `exp`: train augmented when `data.augment.enabled` (mosaics when also
    `data.augment.mosaic` > 0), val never; both letterboxed rect when `data.rect`.

    `log` hears which layout and splits were read, and why.
    """
    layout = resolve_source(exp.data)
    synthetic = exp.data.source == SYNTHETIC_SOURCE
    if synthetic:
        train, val = layout.split(TRAIN_SPLIT), layout.split(VAL_SPLIT)
    else:
        train, val = training_splits(layout, exp.data)
    augment = exp.data.augment if exp.data.augment.enabled else None
    size, rect = exp.model.img_size, exp.data.rect
    notes = Problems()
    train_ds = DetectionDataset(layout.read(train, notes=notes), size, augment, rect)
    val_ds = DetectionDataset(layout.read(val, notes=notes), size, rect=rect)
    if log is not None and not synthetic:
        log(f"data: {layout.describe()}")
        log(
            f"data: train = {train.where()} ({len(train_ds)} images), val = {val.where()} ({len(val_ds)} images)"
        )
        for line in notes.lines():
            log(f"data: {line}")
    return train_ds, val_ds
