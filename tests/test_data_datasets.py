"""Engine datasets: letterbox, augmentation moving boxes, COCO = YOLO, synthetic cache, coco_gt, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from torchvision import tv_tensors

from surgtui.config.schema import AugmentConfig, Experiment
from surgtui.data import layouts
from surgtui.data.cache import synthetic_dataset
from surgtui.data.writers import plan_videos, write_synthetic
from surgtui.engine.datasets import DetectionDataset, build_datasets, collate
from surgtui.engine.transforms import HSVJitter, letterbox, train_transforms
from surgtui.errors import UserError
from surgtui.fileio import staging_dir

S = 160


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same frames written as COCO and as YOLO (and the raw layout) at 16:9."""
    root = tmp_path_factory.mktemp("sets")
    for layout in ("coco", "yolo", "simsurgskill"):
        write_synthetic(root / layout, layout, plan_videos(["train", "val"], 1, 3), 320, 180, 21)
    return root


def _experiment(source: str, **data: object) -> Experiment:
    exp = Experiment()
    exp.model.img_size = S
    exp.data.source = source
    for key, value in data.items():
        setattr(exp.data, key, value)
    return exp


def test_coco_and_yolo_loaders_give_the_same_tensors(sets: Path) -> None:
    for split in ("train", "val"):
        coco = DetectionDataset(layouts.read_split(sets / "coco", split, "coco"), S)
        yolo = DetectionDataset(layouts.read_split(sets / "yolo", split, "yolo"), S)
        assert len(coco) == len(yolo) == 3
        for (ic, tc), (iy, ty) in zip(coco, yolo):
            assert torch.equal(ic, iy) and torch.equal(tc["labels"], ty["labels"])
            torch.testing.assert_close(tc["boxes"], ty["boxes"], atol=1e-3, rtol=0)  # YOLO stores 0..1 floats
            assert (tc["image_id"], tc["orig_size"], tc["letterbox"]) == (
                ty["image_id"],
                ty["orig_size"],
                ty["letterbox"],
            )


def test_letterbox_keeps_16_9_and_maps_boxes(sets: Path) -> None:
    record = layouts.read_split(sets / "coco", "val", "coco")[0]
    canvas, scale, pad_x, pad_y, orig = letterbox(record.path, S)
    pixels = np.asarray(canvas)
    assert orig == (180, 320) and scale == S / 320 and (pad_x, pad_y) == (0, 35)
    assert (pixels[:pad_y] == 114).all() and (pixels[pad_y + 90 :] == 114).all()  # 160x90 picture, grey bands
    image, target = DetectionDataset([record], S)[0]
    assert image.shape == (3, S, S) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    want = torch.from_numpy(record.boxes) * scale + torch.tensor([pad_x, pad_y, pad_x, pad_y])
    assert torch.allclose(target["boxes"], want) and target["labels"].dtype == torch.int64
    assert target["letterbox"] == (scale, pad_x, pad_y) and target["file"] == str(record.path)


def test_flip_mirrors_boxes_with_the_image(sets: Path) -> None:
    records = layouts.read_split(sets / "coco", "train", "coco")
    plain = DetectionDataset(records, S)
    flip = DetectionDataset(
        records, S, AugmentConfig(hflip=1.0, hsv_h=0, hsv_s=0, hsv_v=0, scale=0, translate=0, mosaic=0)
    )  # single images: a mosaic mixes four
    for (ip, tp), (if_, tf) in zip(plain, flip):
        assert torch.equal(if_, ip.flip(-1))
        b = tp["boxes"]
        mirrored = torch.stack([S - b[:, 2], b[:, 1], S - b[:, 0], b[:, 3]], 1)
        kept = ((b[:, 2:] - b[:, :2]) >= 2).all(1)  # SanitizeBoundingBoxes drops boxes under 2 px
        assert torch.allclose(tf["boxes"], mirrored[kept]) and torch.equal(tf["labels"], tp["labels"][kept])


def test_scale_translate_keeps_boxes_on_their_pixels() -> None:
    # A white square on grey: after random scale/translate the box still frames the white pixels.
    canvas = np.full((S, S, 3), 114, np.uint8)
    canvas[40:80, 60:100] = 255
    from PIL import Image

    transform = train_transforms(
        AugmentConfig(hflip=0.5, hsv_h=0, hsv_s=0, hsv_v=0, scale=0.3, translate=0.1)
    )
    torch.manual_seed(0)
    for _ in range(5):
        boxes = tv_tensors.BoundingBoxes(
            torch.tensor([[60.0, 40.0, 100.0, 80.0]]), format="XYXY", canvas_size=(S, S)
        )
        image, target = transform(Image.fromarray(canvas), {"boxes": boxes, "labels": torch.tensor([0])})
        white = (image[0] > 200).nonzero()
        x1, y1, x2, y2 = target["boxes"][0].tolist()
        assert abs(white[:, 1].min() - x1) <= 1.5 and abs(white[:, 1].max() + 1 - x2) <= 1.5
        assert abs(white[:, 0].min() - y1) <= 1.5 and abs(white[:, 0].max() + 1 - y2) <= 1.5


def test_hsv_jitter_keeps_grey_and_shape() -> None:
    torch.manual_seed(1)
    grey = tv_tensors.Image(torch.full((3, 8, 8), 100, dtype=torch.uint8))
    out = HSVJitter(0.5, 0.9, 0.0)(grey)
    assert out.dtype == torch.uint8 and isinstance(out, tv_tensors.Image) and (out - 100).abs().max() <= 1
    colour = tv_tensors.Image(
        torch.tensor([200, 50, 50], dtype=torch.uint8).view(3, 1, 1).expand(3, 4, 4).clone()
    )
    assert not torch.equal(HSVJitter(0.2, 0.0, 0.0)(colour), colour)


def test_augmented_training_items_stay_valid(sets: Path) -> None:
    exp = _experiment(str(sets / "coco"), train_split="train", val_split="val")
    train, val = build_datasets(exp)
    assert train.transforms is not None and val.transforms is None
    torch.manual_seed(3)
    images, targets = collate([train[i] for i in range(len(train))])
    # Mosaics (the default) take the split's rect canvas: wide frames give wide mosaics.
    w, h = train.mosaic_canvas
    assert w == S and h < S and h % 32 == 0
    assert images.shape == (3, 3, h, w)
    for t in targets:
        b = t["boxes"]
        assert b.dtype == torch.float32 and len(b) == len(t["labels"])
        assert ((b[:, 2:] - b[:, :2]) >= 2).all() and (b >= 0).all()
        assert (b[:, 0::2] <= w).all() and (b[:, 1::2] <= h).all()


def test_coco_gt_matches_val_items_and_loads(sets: Path) -> None:
    _, val = build_datasets(_experiment(str(sets / "yolo"), train_split="train", val_split="val"))
    gt = val.coco_gt()
    coco = COCO()
    coco.dataset = json.loads(json.dumps(gt))
    coco.createIndex()
    assert [c["name"] for c in gt["categories"]] == ["needle", "needle_driver"]
    for image, target in val:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=target["image_id"]))
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]).reshape(-1, 4)
        assert torch.allclose(xyxy.float(), target["boxes"], atol=1e-4)
        assert [a["category_id"] - 1 for a in anns] == target["labels"].tolist()
        info = coco.imgs[target["image_id"]]
        assert (
            (info["width"], info["height"]) == (S, 96) == (image.shape[2], image.shape[1])
        )  # rect: 90 px → 96


def test_build_datasets_follows_rect_and_mosaic_settings(sets: Path) -> None:
    exp = _experiment(str(sets / "coco"), train_split="train", val_split="val")
    train, val = build_datasets(exp)
    assert train.uses_mosaic and not val.uses_mosaic and val[0][0].shape == (3, 96, S)
    mosaic, single = train[0], train[(0, False)]
    assert mosaic[1]["letterbox"] == (1.0, 0, 0) and single[1]["letterbox"] != (1.0, 0, 0)
    assert mosaic[0].shape == single[0].shape == (3, 96, S)  # a rect mosaic, then a rect frame
    exp.data.rect = False
    train, val = build_datasets(exp)
    assert val[0][0].shape == train[(0, False)][0].shape == train[0][0].shape == (3, S, S)
    assert val.coco_gt()["images"][0]["height"] == S
    exp.data.augment.mosaic = 0.0
    assert not build_datasets(exp)[0].uses_mosaic
    exp.data.augment.mosaic, exp.data.augment.enabled = 1.0, False
    train, _ = build_datasets(exp)
    assert not train.uses_mosaic and train.transforms is None


def test_synthetic_source_is_generated_once_and_reused(tmp_path: Path) -> None:
    exp = _experiment("synthetic", cache_dir=str(tmp_path))
    exp.data.synthetic.train, exp.data.synthetic.val = 10, 3
    exp.data.synthetic.width, exp.data.synthetic.height = 128, 72
    train, val = build_datasets(exp)
    assert (len(train), len(val)) == (10, 3)
    [cached] = (tmp_path / "synthetic").iterdir()
    stamp = (cached / "annotations" / "train.json").stat().st_mtime_ns
    assert synthetic_dataset(exp.data.synthetic, tmp_path) == cached
    assert (cached / "annotations" / "train.json").stat().st_mtime_ns == stamp
    assert not [p for p in (tmp_path / "synthetic").iterdir() if p.name.startswith(".")]
    exp.data.synthetic.seed = 1
    assert synthetic_dataset(exp.data.synthetic, tmp_path) != cached


def test_racing_generators_keep_one_finished_copy(tmp_path: Path) -> None:
    final = tmp_path / "set"
    with staging_dir(final) as first:
        (first / "who").write_text("first")
        with staging_dir(final) as second:  # another process finishes while this one is still writing
            (second / "who").write_text("second")
    assert (final / "who").read_text() == "second" and [p.name for p in tmp_path.iterdir()] == ["set"]


def test_sources_that_cannot_be_used_are_user_errors(sets: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data prepare"):
        build_datasets(_experiment(str(sets / "simsurgskill")))
    with pytest.raises(UserError, match="no such directory"):
        build_datasets(_experiment(str(tmp_path / "nowhere")))
    with pytest.raises(
        UserError, match=r"split 'train_v1' not found \(data.train_split\); splits here: train, val"
    ):
        build_datasets(_experiment(str(sets / "coco"), train_split="train_v1"))
    with pytest.raises(
        UserError, match=r"data.format = 'yolo' but .* has no data.yaml or data.yml; it holds coco"
    ):
        build_datasets(_experiment(str(sets / "coco"), format="yolo", train_split="train", val_split="val"))
    train, _ = build_datasets(
        _experiment(str(sets / "coco"), format="simsurgskill", train_split="train", val_split="val")
    )
    assert len(train) == 3


def test_training_reads_every_image_kind_predict_accepts(sets: Path, tmp_path: Path) -> None:
    """A YOLO split holding .webp and .tif frames trains on them, with their boxes (predict takes them too)."""
    import shutil

    from PIL import Image

    root = tmp_path / "yolo"
    shutil.copytree(sets / "yolo", root)
    jpegs = sorted((root / "images" / "train").glob("*.jpg"))
    for jpeg, suffix in zip(jpegs, (".webp", ".tif")):
        with Image.open(jpeg) as im:
            im.save(jpeg.with_suffix(suffix))
        jpeg.unlink()
    records = layouts.read_split(root, "train", "yolo")
    originals = layouts.read_split(sets / "yolo", "train", "yolo")
    assert sorted(r.path.suffix for r in records) == sorted([".webp", ".tif", ".jpg"])
    assert [len(r.boxes) for r in records] == [len(r.boxes) for r in originals]
