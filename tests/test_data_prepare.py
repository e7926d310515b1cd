"""SimSurgSkill → COCO: exact round trip, malformed-entry report, resume, atomic COCO files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from conftest import surgtui
from surgtui.data import formats
from surgtui.data.classes import class_index
from surgtui.data.prepare import prepare
from surgtui.data.synth import video_frames
from surgtui.data.writers import plan_videos, write_synthetic
from surgtui.errors import UserError

SIZE = (192, 108)
SEED = 11


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_synthetic(root, "simsurgskill", plan_videos(["train_v1", "test"], 2, 3), *SIZE, SEED)
    return root


def test_round_trip_boxes_equal_the_generators(raw: Path, tmp_path: Path) -> None:
    report = prepare(raw, tmp_path)
    assert report.problems.total() == 0
    for video in plan_videos(["train_v1", "test"], 2, 3):
        doc = json.loads((tmp_path / "annotations" / f"{video.split}.json").read_text())
        by_name = {img["file_name"]: img for img in doc["images"]}
        for frame_id, (image, boxes) in enumerate(
            video_frames(SEED, video.split, video.index, 3, *SIZE), start=1
        ):
            img = by_name[formats.frame_file_name(video.case_id, frame_id)]
            got = sorted(
                (a["category_id"], *a["bbox"]) for a in doc["annotations"] if a["image_id"] == img["id"]
            )
            want = sorted((class_index(b.cls) + 1, b.x, b.y, b.w, b.h) for b in boxes)
            assert got == want, (video, frame_id)
            # Frame i of the video is frame_id i + 1: the JPEG matches this very frame, not a neighbour.
            jpeg = np.asarray(Image.open(tmp_path / "images" / video.split / img["file_name"]), dtype=float)
            assert np.abs(jpeg - image).mean() < 6
    coco = COCO(str(tmp_path / "annotations" / "train_v1.json"))
    assert len(coco.getImgIds()) == 6 and coco.getCatIds() == [1, 2]


def _write_json(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)


def _entry(frame_id: float = 1.0, cls: str = "needle", coordinate: object = None, **extra: object) -> dict:
    coordinate = coordinate if coordinate is not None else json.dumps({"h": 10, "w": 12, "x": 20, "y": 30})
    return {
        "obj_class": cls,
        "label_type": "box",
        "coordinate": coordinate,
        "orientation": "free",
        "frame_id": frame_id,
        "objects": True,
        "case_id": 1,
        "fps": 1,
        **extra,
    }


@pytest.fixture
def malformed(raw: Path, tmp_path: Path) -> Path:
    root = tmp_path / "bad"
    shutil.copytree(raw / "train_v1", root / "train_v1")
    ann = root / "train_v1" / formats.RAW_ANNOTATIONS
    box = lambda x, y, w, h: json.dumps({"h": h, "w": w, "x": x, "y": y})  # noqa: E731
    entries = {
        "0": _entry(),
        "1": _entry(coordinate="{h: 10"),
        "2": _entry(coordinate='{"h": 10}'),
        "3": _entry(cls="scissors"),
        "4": _entry(frame_id=99.0),
        "5": {k: v for k, v in _entry().items() if k != "coordinate"},
        "6": _entry(frame_id=1.5),
        "7": _entry(frame_id=2.0, coordinate=box(-10, -6, 20, 16)),
        "8": _entry(coordinate=box(5000, 10, 20, 20)),
        "9": _entry(coordinate=box(10, 10, 0, 5)),
        "10": _entry(frame_id=2.0, cls="needle_driver", coordinate=box(100, 50, 80, 40)),
        "11": {"frame_id": 3.0, "objects": False, "obj_class": "", "coordinate": ""},
        "12": "not an entry",
    }
    _write_json(ann / "caseid_000001_fps1.json", entries)
    _write_json(ann / "caseid_000002_fps1.json", "{broken")
    _write_json(ann / "caseid_000099_fps1.json", {"0": _entry()})
    _write_json(ann / "notes.json", {})
    return root


def test_malformed_entries_are_counted_named_and_the_rest_kept(malformed: Path, tmp_path: Path) -> None:
    report = prepare(malformed, tmp_path / "out")
    assert dict(report.problems.counts) == {
        "bad_coordinate": 2,
        "unknown_class": 1,
        "frame_beyond_video": 1,
        "missing_key": 1,
        "bad_frame_id": 1,
        "outside_frame": 1,
        "empty_box": 1,
        "bad_entry": 1,
        "bad_file": 2,
        "missing_video": 1,
    }
    messages = report.problems.examples
    assert 'caseid_000001_fps1.json: entry "1": coordinate: not valid JSON' in messages["bad_coordinate"]
    assert (
        "caseid_000001_fps1.json: entry \"3\": obj_class: 'scissors' unknown; allowed: needle, needle driver "
        "(or needle_driver)" in messages["unknown_class"]
    )
    assert (
        'caseid_000001_fps1.json: entry "4": frame_id 99 beyond the video\'s 3 frames'
        in messages["frame_beyond_video"]
    )
    assert "caseid_000001_fps1.json: entry \"5\": missing key 'coordinate'" in messages["missing_key"]
    assert any(m.startswith("notes.json: name is not") for m in messages["bad_file"])
    assert any(m.startswith("caseid_000002_fps1.json: not valid JSON") for m in messages["bad_file"])
    assert dict(report.notes.counts) == {"clipped": 1, "empty_frame": 1}
    doc = json.loads((tmp_path / "out" / "annotations" / "train_v1.json").read_text())
    assert [(img["file_name"], img["frame_id"]) for img in doc["images"]] == [
        ("caseid_000001_frame_00001.jpg", 1),
        ("caseid_000001_frame_00002.jpg", 2),
        ("caseid_000001_frame_00003.jpg", 3),
    ]
    assert sorted((a["image_id"], a["category_id"], a["bbox"]) for a in doc["annotations"]) == [
        (1, 1, [20.0, 30.0, 12.0, 10.0]),
        (2, 1, [0.0, 0.0, 10.0, 10.0]),  # clipped from x=-10 y=-6 w=20 h=16
        (2, 2, [100.0, 50.0, 80.0, 40.0]),
    ]
    assert report.splits["train_v1"].images == 3


def test_rerun_resumes_and_a_crash_leaves_no_coco_file(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def crash_after_first_video(done: int, total: int, what: str) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(raw, out, ["train_v1"], crash_after_first_video)
    assert not (out / "annotations").exists() and len(list((out / "images" / "train_v1").glob("*.jpg"))) == 3
    first = prepare(raw, out, ["train_v1"])
    assert (first.splits["train_v1"].videos, first.splits["train_v1"].resumed) == (2, 1)
    jpeg, coco = (
        out / "images" / "train_v1" / "caseid_000002_frame_00001.jpg",
        out / "annotations" / "train_v1.json",
    )
    stamp, text = jpeg.stat().st_mtime_ns, coco.read_text()
    again = prepare(raw, out, ["train_v1"])
    assert (
        again.splits["train_v1"].resumed == 2
        and jpeg.stat().st_mtime_ns == stamp
        and coco.read_text() == text
    )
    jpeg.unlink()  # a missing frame makes its video run again
    assert prepare(raw, out, ["train_v1"]).splits["train_v1"].resumed == 1 and jpeg.is_file()


def test_bad_inputs_are_one_line_user_errors(raw: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="split 'train_v9' not found; found: test, train_v1"):
        prepare(raw, tmp_path, ["train_v9"])
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    (tmp_path / "coco" / "images").mkdir()
    (tmp_path / "coco" / "annotations" / "x.json").write_text("{}")
    with pytest.raises(UserError, match="not a raw SimSurgSkill directory"):
        prepare(tmp_path / "coco", tmp_path / "out")


def test_cli_prepare_prints_summary_and_report(malformed: Path, tmp_path: Path) -> None:
    r = surgtui("data", "prepare", str(malformed), "--out", str(tmp_path / "out"), "--splits", "train_v1")
    assert r.returncode == 0, r.stderr
    assert "train_v1: 1 videos (0 already prepared), 3 images, boxes: needle 2, needle_driver 1" in r.stdout
    assert 'caseid_000001_fps1.json: entry "1": coordinate: not valid JSON' in r.stdout
    assert "\x1b[" not in r.stdout  # no progress bar when not on a terminal
    r = surgtui("data", "prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "no such directory" in r.stderr
