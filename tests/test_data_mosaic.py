"""Mosaic, rectangular letterbox, padded collate and the per-epoch mosaic switch, on real image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from surgtui.config.schema import AugmentConfig
from surgtui.data import formats
from surgtui.engine.datasets import DetectionDataset, collate
from surgtui.engine.transforms import letterbox

S = 128
GREY = 114
# (width, height, background, box colour, box x1 y1 x2 y2): flat images, one flat box each, away from the borders.
IMAGES = [
    (200, 120, (20, 20, 20), (230, 30, 30), (40, 20, 120, 90)),
    (120, 200, (20, 60, 20), (30, 230, 30), (20, 50, 100, 150)),
    (160, 160, (20, 20, 70), (30, 30, 230), (30, 40, 130, 110)),
    (240, 135, (60, 40, 20), (230, 230, 30), (60, 30, 200, 100)),
]
BOX_COLOURS = torch.tensor([c for _, _, _, c, _ in IMAGES], dtype=torch.float32)
NO_COLOUR = dict(hsv_h=0.0, hsv_s=0.0, hsv_v=0.0)


def _write(
    path: Path,
    width: int,
    height: int,
    background: tuple,
    colour: tuple,
    box: tuple,
    id_: int,
    label: int = 0,
) -> formats.ImageRecord:
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = background
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = colour
    Image.fromarray(pixels).save(path)  # PNG: no compression noise
    return formats.ImageRecord(
        id=id_,
        path=path,
        width=width,
        height=height,
        boxes=np.array([box], np.float32),
        labels=np.array([label], np.int64),
    )


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[formats.ImageRecord]:
    root = tmp_path_factory.mktemp("mosaic")
    return [
        _write(root / f"{k}.png", w, h, bg, c, b, k + 1, k % 2) for k, (w, h, bg, c, b) in enumerate(IMAGES)
    ]


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> formats.ImageRecord:
    """A 640x360 frame with a white box at (100, 60)-(300, 200)."""
    return _write(
        tmp_path_factory.mktemp("wide") / "wide.png",
        640,
        360,
        (40, 40, 40),
        (255, 255, 255),
        (100, 60, 300, 200),
        7,
    )


def _colour_of(image: torch.Tensor, box: torch.Tensor, inset: int = 2) -> int | None:
    """Index into IMAGES of the box colour that fills the box's interior, None if it is not one flat box colour."""
    x1, y1, x2, y2 = box.tolist()
    region = (
        image[:, int(y1) + inset : int(np.ceil(y2)) - inset, int(x1) + inset : int(np.ceil(x2)) - inset] * 255
    )
    if region.numel() == 0:
        return None
    dist = (region.reshape(3, -1).T[:, None, :] - BOX_COLOURS[None]).abs().amax(-1)  # pixels × colours
    best = int(dist.mean(0).argmin())
    return best if dist[:, best].max() <= 3 else None


def _box_mask(image: torch.Tensor) -> torch.Tensor:
    """H×W: pixels that have (nearly) one of the box colours."""
    return ((image * 255).permute(1, 2, 0)[:, :, None, :] - BOX_COLOURS).abs().amax(-1).min(-1).values <= 12


@pytest.mark.parametrize("rect", [False, True])
def test_mosaic_boxes_frame_their_pixels(records: list[formats.ImageRecord], rect: bool) -> None:
    # No scale/translate/flip/colour: each output box must hold exactly its source box's colour, and be tight.
    ds = DetectionDataset(
        records, S, AugmentConfig(hflip=0, scale=0, translate=0, mosaic=1.0, **NO_COLOUR), rect=rect
    )
    W, H = ds.mosaic_canvas
    assert (W, H) == (S, S) or (rect and min(W, H) < S)
    checked = 0
    for seed in range(6):
        torch.manual_seed(seed)
        image, target = ds[seed % len(ds)]
        boxes = target["boxes"]
        assert (
            image.shape == (3, H, W) and target["letterbox"] == (1.0, 0, 0) and target["orig_size"] == (H, W)
        )
        assert len(boxes) == len(target["labels"]) and (boxes >= 0).all()
        assert (boxes[:, 0::2] <= W).all() and (boxes[:, 1::2] <= H).all()
        for box, label in zip(boxes, target["labels"].tolist()):
            k = _colour_of(image, box)
            if (box[2:] - box[:2]).min() > 6:  # big enough to have an interior
                assert k is not None and label == k % 2
                checked += 1
            x1, y1, x2, y2 = box.round().long().tolist()
            mask = _box_mask(image)
            # Just beyond each edge that is not the canvas border: not box colour (boxes are tight).
            for outside in (
                mask[y1 + 2 : y2 - 2, x1 - 2] if x1 >= 2 else None,
                mask[y1 + 2 : y2 - 2, x2 + 1] if x2 < W - 1 else None,
                mask[y1 - 2, x1 + 2 : x2 - 2] if y1 >= 2 else None,
                mask[y2 + 1, x1 + 2 : x2 - 2] if y2 < H - 1 else None,
            ):
                assert outside is None or not outside.any()
        # Every box-coloured pixel away from the output border is inside a box (no box lost or misplaced).
        covered = torch.zeros(H, W, dtype=torch.bool)
        for x1, y1, x2, y2 in boxes.tolist():
            covered[
                max(0, int(y1) - 1) : int(np.ceil(y2)) + 1, max(0, int(x1) - 1) : int(np.ceil(x2)) + 1
            ] = True
        stray = _box_mask(image) & ~covered
        assert not stray[3:-3, 3:-3].any()
    assert checked >= 6


def test_mosaic_mixes_images_and_follows_scale_translate_flip(records: list[formats.ImageRecord]) -> None:
    ds = DetectionDataset(
        records, S, AugmentConfig(hflip=0.5, scale=0.5, translate=0.1, mosaic=1.0, **NO_COLOUR)
    )
    sources = []
    for seed in range(8):
        torch.manual_seed(seed)
        image, target = ds[0]
        boxes = target["boxes"]
        assert image.shape == (3, S, S) and (boxes >= 0).all() and (boxes <= S).all()
        assert ((boxes[:, 2:] - boxes[:, :2]) >= 2).all()  # slivers dropped
        found = {_colour_of(image, b) for b in boxes if (b[2:] - b[:2]).min() > 6}
        assert None not in found  # after the random affine, interiors still hold their box's colour
        sources.append(len(found))
    assert max(sources) >= 3 and sum(n >= 2 for n in sources) >= 5


def test_mosaic_is_reproducible_from_the_seed(records: list[formats.ImageRecord]) -> None:
    ds = DetectionDataset(records, S, AugmentConfig())
    torch.manual_seed(11)
    first = ds[2]
    torch.manual_seed(11)
    again = ds[2]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1]["boxes"], again[1]["boxes"])
    assert first[1]["image_id"] == records[2].id and first[1]["file"] == str(records[2].path)


def test_rect_letterbox_of_16_9_is_320_by_192(wide: formats.ImageRecord) -> None:
    canvas, scale, pad_x, pad_y, orig = letterbox(wide.path, 320, rect=True)
    pixels = np.asarray(canvas)
    assert canvas.size == (320, 192) and (scale, pad_x, pad_y, orig) == (0.5, 0, 6, (360, 640))
    assert (pixels[:6] == GREY).all() and (pixels[186:] == GREY).all() and (pixels[6:186] != GREY).all()
    assert (pixels[37:105, 51:149] == 255).all()  # the white box: (100, 60)-(300, 200) → (50, 36)-(150, 106)
    assert (pixels[34, 51:149] != 255).all() and (pixels[108, 51:149] != 255).all()
    assert letterbox(wide.path, 320)[0].size == (320, 320)  # square stays the default
    image, target = DetectionDataset([wide], 320, rect=True)[0]
    assert image.shape == (3, 192, 320) and target["letterbox"] == (0.5, 0, 6)
    assert target["boxes"].tolist() == [[50.0, 36.0, 150.0, 106.0]]
    gt = DetectionDataset([wide], 320, rect=True).coco_gt()
    assert (gt["images"][0]["width"], gt["images"][0]["height"]) == (320, 192)
    assert gt["annotations"][0]["bbox"] == pytest.approx([50, 36, 100, 70])
    square = DetectionDataset([wide], 320).coco_gt()
    assert (square["images"][0]["height"], square["annotations"][0]["bbox"][1]) == (320, pytest.approx(100))


def test_collate_pads_mixed_shapes_bottom_right_with_grey(
    records: list[formats.ImageRecord], wide: formats.ImageRecord
) -> None:
    ds = DetectionDataset([wide, records[1], records[2]], S, rect=True)
    items = [ds[i] for i in range(3)]
    assert [tuple(im.shape[1:]) for im, _ in items] == [(96, 128), (128, 96), (128, 128)]
    images, targets = collate(items)
    assert images.shape == (3, 3, S, S)
    grey = items[0][0][0, 0, 0]  # a letterbox band pixel of the wide frame
    for out, (im, t), target in zip(images, items, targets):
        h, w = im.shape[1:]
        assert (
            torch.equal(out[:, :h, :w], im)
            and (out[:, h:, :] == grey).all()
            and (out[:, :, w:] == grey).all()
        )
        assert target is t and torch.equal(target["boxes"], t["boxes"])
    same = collate([items[2], items[2]])[0]
    assert same.shape == (2, 3, S, S)


def test_index_with_false_never_mosaics(
    wide: formats.ImageRecord, records: list[formats.ImageRecord]
) -> None:
    ds = DetectionDataset(
        [wide, *records],
        320,
        AugmentConfig(mosaic=1.0, hflip=0, scale=0, translate=0, **NO_COLOUR),
        rect=True,
    )
    assert ds.uses_mosaic
    torch.manual_seed(0)
    for _ in range(5):
        image, target = ds[(0, False)]
        assert image.shape == (3, 192, 320) and target["letterbox"] == (0.5, 0, 6)
        assert target["boxes"].tolist() == [[50.0, 36.0, 150.0, 106.0]]
    # mosaic=1.0: always a mosaic, on the split's rect canvas
    for item in (ds[(0, True)], ds[0]):
        assert item[1]["letterbox"] == (1.0, 0, 0) and item[0].shape == (3, 192, 320)
    square = DetectionDataset([wide, *records], 320, AugmentConfig(mosaic=1.0), rect=False)
    assert square[0][0].shape == (3, 320, 320)
    val = DetectionDataset([wide], 320, rect=True)
    assert not val.uses_mosaic and val[(0, True)][0].shape == (3, 192, 320)
    off = DetectionDataset([wide], 320, AugmentConfig(mosaic=0.0), rect=True)
    assert not off.uses_mosaic and off[0][0].shape == (3, 192, 320)


class _Switch:
    """A sampler that turns mosaic on or off per epoch from the main process, as the engine's does."""

    def __init__(self, n: int) -> None:
        self.n, self.mosaic = n, True

    def __iter__(self):
        return iter([(i, self.mosaic) for i in range(self.n)])

    def __len__(self) -> int:
        return self.n


def test_mosaic_switch_reaches_persistent_workers(wide: formats.ImageRecord) -> None:
    ds = DetectionDataset([wide, wide], 320, AugmentConfig(mosaic=1.0), rect=True)
    sampler = _Switch(len(ds))
    loader = DataLoader(
        ds, batch_size=2, sampler=sampler, collate_fn=collate, num_workers=1, persistent_workers=True
    )
    [(images, targets)] = list(loader)
    assert images.shape == (2, 3, 192, 320) and all(t["letterbox"] == (1.0, 0, 0) for t in targets)  # mosaics
    sampler.mosaic = False  # close_mosaic: the same worker now gets (i, False)
    [(images, targets)] = list(loader)
    assert images.shape == (2, 3, 192, 320) and all(t["letterbox"] == (0.5, 0, 6) for t in targets)
