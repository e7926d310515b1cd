"""The synthetic generator: deterministic, plausible counts and sizes, tight boxes, fast, exact file layouts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import surgtui
from surgtui.data import layouts
from surgtui.data.synth import DRIVER, NEEDLE, frame_rng, render_background, render_frame, video_frames
from surgtui.data.video import count_frames, decode_frames


def test_same_seed_same_frames_and_boxes() -> None:
    a = list(video_frames(7, "train_v1", 3, 3, 160, 90))
    b = list(video_frames(7, "train_v1", 3, 3, 160, 90))
    c = list(video_frames(8, "train_v1", 3, 3, 160, 90))
    for (ia, ba), (ib, bb) in zip(a, b):
        assert np.array_equal(ia, ib) and ba == bb
    assert not np.array_equal(a[0][0], c[0][0])


def test_counts_sizes_and_boxes_inside_the_frame() -> None:
    width, height = 320, 180
    counts, needle_sides = {NEEDLE: [], DRIVER: []}, []
    for video in range(12):
        for image, boxes in video_frames(1, "s", video, 4, width, height):
            assert image.shape == (height, width, 3) and image.dtype == np.uint8
            for cls in counts:
                counts[cls].append(sum(b.cls == cls for b in boxes))
            for b in boxes:
                assert (
                    b.w > 0
                    and b.h > 0
                    and b.x >= 0
                    and b.y >= 0
                    and b.x + b.w <= width
                    and b.y + b.h <= height
                )
                if b.cls == NEEDLE:
                    needle_sides.append(max(b.w, b.h) / width)
    for cls in counts:
        assert set(counts[cls]) <= {0, 1, 2} and np.mean(counts[cls]) > 0.7
    assert 0.03 < float(np.median(needle_sides)) < 0.09  # needle box ≈ 4–9 % of the frame width


def test_boxes_are_tight_around_drawn_pixels() -> None:
    # Every box edge row/column holds pixels that differ from the bare background.
    width, height = 320, 180
    background = render_background(frame_rng(2, "t", 0), width, height)
    for frame in range(6):
        image, boxes = render_frame(background, frame_rng(2, "t", 0, frame))
        changed = np.abs(image.astype(int) - background.astype(int)).sum(2) > 0
        for b in boxes:
            region = changed[b.y : b.y + b.h, b.x : b.x + b.w]
            assert region[0].any() and region[-1].any() and region[:, 0].any() and region[:, -1].any()


def test_render_speed() -> None:
    for (width, height), budget in (((320, 180), 0.02), ((1280, 720), 0.1)):
        background = render_background(frame_rng(0, "speed", 0), width, height)
        start = time.perf_counter()
        for frame in range(5):
            render_frame(background, frame_rng(0, "speed", 0, frame))
        per_frame = (time.perf_counter() - start) / 5
        assert per_frame < budget * 2, f"{width}x{height}: {per_frame * 1000:.0f} ms/frame"  # x2: shared CPUs


def test_cli_writes_the_simsurgskill_layout(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    r = surgtui(
        "data",
        "synth",
        "--out",
        str(out),
        "--videos",
        "2",
        "--frames",
        "3",
        "--size",
        "160x96",
        "--splits",
        "train_v1,test",
        "--seed",
        "4",
    )
    assert r.returncode == 0, r.stderr
    videos = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4"))
    assert videos == [
        "test/videos/fps1/caseid_000003_fps1.mp4",
        "test/videos/fps1/caseid_000004_fps1.mp4",
        "train_v1/videos/fps1/caseid_000001_fps1.mp4",
        "train_v1/videos/fps1/caseid_000002_fps1.mp4",
    ]
    for video in out.rglob("*.mp4"):
        assert count_frames(video) == 3 and len(list(decode_frames(video))) == 3
    doc = json.loads((out / "train_v1/annotations/bounding_box_gt/caseid_000001_fps1.json").read_text())
    assert list(doc) == [str(i) for i in range(len(doc))]
    keys = {"obj_class", "label_type", "coordinate", "orientation", "frame_id", "objects", "case_id", "fps"}
    assert all(set(e) == keys and e["case_id"] == 1 and e["fps"] == 1 for e in doc.values())
    assert any(e["objects"] for e in doc.values())
    for entry in (e for e in doc.values() if e["objects"]):
        assert isinstance(entry["coordinate"], str) and set(json.loads(entry["coordinate"])) == {
            "h",
            "w",
            "x",
            "y",
        }
        assert entry["obj_class"] in ("needle", "needle driver")
    assert {e["frame_id"] for e in doc.values()} == {1.0, 2.0, 3.0}
    assert not [p for p in out.rglob(".*")]  # no scratch left behind


@pytest.mark.parametrize("layout", ["coco", "yolo"])
def test_cli_writes_image_layouts(tmp_path: Path, layout: str) -> None:
    r = surgtui(
        "data",
        "synth",
        "--out",
        str(tmp_path),
        "--layout",
        layout,
        "--videos",
        "1",
        "--frames",
        "2",
        "--size",
        "96x64",
        "--splits",
        "train,val",
    )
    assert r.returncode == 0, r.stderr
    found = layouts.open_layout(tmp_path)
    assert found.format == layout and list(found.splits) == ["train", "val"]
    assert len(found.read(found.split("val"))) == 2


def test_cli_refuses_bad_options_and_existing_output(tmp_path: Path) -> None:
    for args, needle in (
        (["--size", "12"], "--size"),
        (["--size", "161x96"], "even"),
        (["--layout", "voc"], "--layout"),
        (["--splits", "a,,b"], "--splits"),
    ):
        r = surgtui("data", "synth", "--out", str(tmp_path / "x"), "--frames", "1", *args)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    args = (
        "data",
        "synth",
        "--out",
        str(tmp_path / "y"),
        "--videos",
        "1",
        "--frames",
        "1",
        "--size",
        "64x64",
    )
    assert surgtui(*args).returncode == 0
    r = surgtui(*args)
    assert r.returncode == 2 and "already exists" in r.stderr
