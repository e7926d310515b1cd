"""`surgtui data check`: format detection, counts, problems, exit codes, the preview PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import surgtui
from surgtui.data import formats
from surgtui.data.check import check, preview, size_bucket
from surgtui.data.writers import plan_videos, write_synthetic
from surgtui.errors import UserError


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    write_synthetic(root, "coco", plan_videos(["train", "val"], 1, 3), 256, 144, 5)
    return root


def test_size_buckets_follow_coco() -> None:
    assert [size_bucket(a) for a in (31 * 31, 32 * 32, 95 * 95, 96 * 96)] == [
        "small",
        "medium",
        "medium",
        "large",
    ]


def test_clean_coco_set(coco: Path) -> None:
    report = check(coco)
    assert report.format == "coco" and list(report.splits) == ["train", "val"]
    doc = json.loads((coco / "annotations" / "train.json").read_text())
    stats = report.splits["train"]
    assert stats.images == 3 and sum(stats.boxes.values()) == len(doc["annotations"])
    assert sum(sum(c.values()) for c in stats.sizes.values()) == len(doc["annotations"])
    assert report.problems.total() == 0


def test_problems_are_found(coco: Path, tmp_path: Path) -> None:
    root = tmp_path / "broken"
    write_synthetic(root, "coco", plan_videos(["train"], 1, 2), 128, 72, 5)
    path = root / "annotations" / "train.json"
    doc = json.loads(path.read_text())
    doc["annotations"].append(formats.coco_annotation(900, 1, 0, 120, 60, 20, 20))  # reaches outside 128x72
    doc["annotations"].append(formats.coco_annotation(901, 1, 0, 500, 500, 5, 5))  # entirely outside
    path.write_text(json.dumps(doc))
    (root / "images" / "train" / doc["images"][1]["file_name"]).unlink()
    report = check(root)
    assert dict(report.problems.counts) == {"box_outside": 1, "empty_box": 1, "missing_image": 1}
    assert any("annotation 900" in m for m in report.problems.examples["box_outside"])


def test_raw_and_yolo_layouts(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "raw", "simsurgskill", plan_videos(["train_v1"], 1, 2), 128, 72, 3)
    write_synthetic(tmp_path / "yolo", "yolo", plan_videos(["train_v1"], 1, 2), 128, 72, 3)
    raw, yolo = check(tmp_path / "raw"), check(tmp_path / "yolo")
    assert (raw.format, yolo.format) == ("simsurgskill", "yolo")
    assert raw.splits["train_v1"].boxes == yolo.splits["train_v1"].boxes
    assert raw.problems.total() == yolo.problems.total() == 0


def test_unreadable_sets_raise_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such directory"):
        check(tmp_path / "missing")
    with pytest.raises(UserError, match="not a data set"):
        check(tmp_path)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations" / "train.json").write_text("{not json")
    with pytest.raises(UserError, match=r"train\.json: not valid JSON"):
        check(tmp_path)


def test_cli_check_exit_codes_json_and_preview(coco: Path, tmp_path: Path) -> None:
    png = tmp_path / "preview.png"
    r = surgtui("data", "check", str(coco), "--preview", str(png), "--preview-count", "4")
    assert r.returncode == 0, r.stderr
    assert "train: 3 images" in r.stdout and "problems: none" in r.stdout
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width == 2 * 480
    r = surgtui("data", "check", str(coco), "--json")
    assert json.loads(r.stdout)["splits"]["val"]["images"] == 3
    bad = tmp_path / "bad"
    (bad / "annotations").mkdir(parents=True)
    (bad / "images").mkdir()
    (bad / "annotations" / "train.json").write_text("[]")
    r = surgtui("data", "check", str(bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "train.json" in r.stderr


def test_preview_of_raw_videos(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "raw", "simsurgskill", plan_videos(["test"], 2, 2), 160, 90, 8)
    out = preview(tmp_path / "raw", tmp_path / "p.png", n=3)
    with Image.open(out) as im:
        assert im.size == (2 * 480, 2 * 270)
