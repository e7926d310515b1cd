"""`surgtui predict`: a trained model on a synthetic video, a folder of images and one image, as a user runs it.

The model (tests/trained_run.py) overfits 8 synthetic frames whose boxes the generator
knows; a video of the same frames (`surgtui data synth --layout simsurgskill`), the frames
themselves, and the frames at 320×180 (so the letterbox is undone at scale 0.5) must give
detections on those boxes. The exact mapping back to original pixels is checked in process
with a model that predicts fixed boxes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import one_line_error, surgtui
from surgtui.data.synth import video_frames
from surgtui.data.video import decode_frames
from trained_run import FRAMES, HEIGHT, SEED, WIDTH, TrainedRun, trained_run  # noqa: F401

pytest.importorskip("torch")


def generator_boxes(scale: float = 1.0) -> list[list[tuple[str, np.ndarray]]]:
    """Per training frame: (class, x1 y1 x2 y2) of the generator's boxes, times `scale`."""
    return [
        [(b.cls, np.array([b.x, b.y, b.x + b.w, b.y + b.h], float) * scale) for b in boxes]
        for _, boxes in video_frames(SEED, "train", 0, FRAMES, WIDTH, HEIGHT)
    ]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matched_fraction(doc: dict, truth: list[list[tuple[str, np.ndarray]]], key: str, keys: list) -> float:
    """Share of generator boxes with a same-class detection at IoU > 0.5 in the image keys[i] names."""
    hits = total = 0
    for k, boxes in zip(keys, truth):
        dets = [(a["category"], np.array(a["bbox"], float)) for a in doc["annotations"] if a[key] == k]
        for cls, box in boxes:
            total += 1
            hits += any(c == cls and iou(box, np.r_[d[:2], d[:2] + d[2:]]) > 0.5 for c, d in dets)
    assert total >= len(keys)
    return hits / total


def check_document(doc: dict, n_images: int, width: int, height: int) -> None:
    assert [c["name"] for c in doc["categories"]] == ["needle", "needle_driver"]
    assert [im["id"] for im in doc["images"]] == list(range(1, n_images + 1))
    assert all((im["width"], im["height"]) == (width, height) for im in doc["images"])
    ids = {im["id"] for im in doc["images"]}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        assert a["image_id"] in ids and 0.25 <= a["score"] <= 1
        assert a["category"] == ["needle", "needle_driver"][a["category_id"] - 1]
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width + 1e-6 and y + h <= height + 1e-6


@pytest.fixture(scope="module")
def synth_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("video")
    r = surgtui(
        "data",
        "synth",
        "--out",
        str(out / "raw"),
        "--layout",
        "simsurgskill",
        "--splits",
        "train",
        "--videos",
        "1",
        "--frames",
        str(FRAMES),
        "--size",
        f"{WIDTH}x{HEIGHT}",
        "--seed",
        str(SEED),
    )
    assert r.returncode == 0, r.stderr
    return next((out / "raw" / "train" / "videos" / "fps1").glob("*.mp4"))


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory: pytest.TempPathFactory, trained_run: TrainedRun) -> Path:  # noqa: F811
    """The 8 training JPEGs, the same frames at twice their size as PNG (letterboxed at scale 0.5), a text file."""
    folder = tmp_path_factory.mktemp("frames")
    for path in sorted((trained_run.data / "images" / "train").glob("*.jpg")):
        shutil.copy(path, folder / path.name)
        with Image.open(path) as im:  # nearest: an overfit model is fragile to resampling blur
            im.resize((2 * WIDTH, 2 * HEIGHT), Image.NEAREST).save(folder / f"{path.stem}_x2.png")
    (folder / "notes.txt").write_text("not an image: skipped")
    return folder


@pytest.mark.slow
def test_predict_video(trained_run: TrainedRun, synth_video: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "pred"
    r = surgtui("predict", str(trained_run.run_dir), str(synth_video), "--out", str(out), "--batch", "3")
    assert r.returncode == 0, r.stderr
    assert (
        f"{FRAMES} frames" in r.stdout and "predictions.json" in r.stdout
    )  # the plain summary (no terminal)
    doc = json.loads((out / "predictions.json").read_text())
    check_document(doc, FRAMES, WIDTH, HEIGHT)
    assert [im["frame"] for im in doc["images"]] == list(range(FRAMES))
    assert all(a["frame"] == a["image_id"] - 1 for a in doc["annotations"])
    assert doc["info"]["weights"].endswith("best.pt") and doc["info"]["kind"] == "video"
    assert matched_fraction(doc, generator_boxes(), "frame", list(range(FRAMES))) >= 0.8

    drawn = out / synth_video.name
    frames = list(decode_frames(drawn))
    source = list(decode_frames(synth_video))
    assert len(frames) == FRAMES and frames[0].shape == (HEIGHT, WIDTH, 3)
    assert all(np.abs(a.astype(int) - b).mean() > 1 for a, b in zip(frames, source))  # boxes were drawn


@pytest.mark.slow
def test_predict_folder(trained_run: TrainedRun, frames_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "pred"
    run_id = trained_run.run_dir.name
    r = surgtui(
        "predict", run_id[:12], str(frames_folder), "--out", str(out), "--runs-dir", str(trained_run.runs_dir)
    )
    assert r.returncode == 0, r.stderr
    assert f"{2 * FRAMES} images" in r.stdout
    doc = json.loads((out / "predictions.json").read_text())
    names = sorted(p.name for p in frames_folder.iterdir() if p.suffix != ".txt")
    assert [im["file_name"] for im in doc["images"]] == names
    assert [im["id"] for im in doc["images"]] == list(range(1, 2 * FRAMES + 1))
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]}
    assert {sizes[n] for n in names if n.endswith(".jpg")} == {(WIDTH, HEIGHT)}
    assert {sizes[n] for n in names if n.endswith(".png")} == {(2 * WIDTH, 2 * HEIGHT)}
    for a in doc["annotations"]:  # boxes in the original image's pixels
        x, y, w, h = a["bbox"]
        width, height = sizes[a["file_name"]]
        assert a["image_id"] == names.index(a["file_name"]) + 1
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width + 1e-6 and y + h <= height + 1e-6
    small, big = [n for n in names if n.endswith(".jpg")], [n for n in names if n.endswith(".png")]
    assert matched_fraction(doc, generator_boxes(), "file_name", small) >= 0.8
    assert matched_fraction(doc, generator_boxes(scale=2.0), "file_name", big) >= 0.5  # the letterbox undone
    for name in names:  # the drawn copies: same names, same size, boxes on them
        with Image.open(out / name) as drawn, Image.open(frames_folder / name) as src:
            assert drawn.size == src.size
            assert np.abs(np.asarray(drawn, int) - np.asarray(src.convert("RGB"))).mean() > 1
    assert not (out / "notes.txt").exists()


@pytest.mark.slow
def test_predict_one_image_without_drawing(trained_run: TrainedRun, tmp_path: Path) -> None:  # noqa: F811
    image = sorted((trained_run.data / "images" / "train").glob("*.jpg"))[0]
    out = tmp_path / "pred"
    r = surgtui(
        "predict",
        "latest",
        str(image),
        "--out",
        str(out),
        "--no-images",
        "--conf",
        "0.5",
        "--runs-dir",
        str(trained_run.runs_dir),
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["predictions.json"]
    doc = json.loads((out / "predictions.json").read_text())
    check_document(doc, 1, WIDTH, HEIGHT)
    assert doc["images"][0]["file_name"] == image.name and doc["info"]["conf"] == 0.5
    assert all(a["score"] >= 0.5 and a["file_name"] == image.name for a in doc["annotations"])
    assert matched_fraction(doc, generator_boxes()[:1], "file_name", [image.name]) >= 0.5


# ---------------------------------------------------------------- bad input: one line, exit 2


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "frame.png"
    Image.new("RGB", (64, 36), (120, 60, 60)).save(path)
    return path


def test_bad_source_fails_before_the_engine_starts(tmp_path: Path, image: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not checked: the source is wrong first")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    cases = {
        str(tmp_path / "missing.mp4"): "no such file or directory",
        str(tmp_path / "notes.txt"): "unsupported file type '.txt'",
        str(tmp_path / "empty"): "no images in this folder",
    }
    for source, needle in cases.items():
        r = surgtui("predict", str(weights), source, "--out", str(tmp_path / "out"), timeout=60)
        line = one_line_error(r)
        assert needle in line and source in line
    line = one_line_error(
        surgtui("predict", str(tmp_path / "nope.pt"), str(image), "--out", str(tmp_path / "o"))
    )
    assert "no such weights file" in line
    line = one_line_error(
        surgtui(
            "predict",
            "nosuchrun",
            str(image),
            "--out",
            str(tmp_path / "o"),
            "--runs-dir",
            str(tmp_path / "runs"),
        )
    )
    assert "no runs yet" in line
    line = one_line_error(
        surgtui("predict", str(weights), str(image), "--out", str(tmp_path / "o"), "--conf", "1.5")
    )
    assert "--conf" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_not_a_checkpoint_is_a_user_error(tmp_path: Path, image: Path) -> None:
    import torch

    garbage, state_dict = tmp_path / "garbage.pt", tmp_path / "resnet.pt"
    garbage.write_bytes(b"\x80\x02 this is no checkpoint")
    torch.save({"conv1.weight": torch.zeros(1)}, state_dict)
    for weights in (garbage, state_dict):
        line = one_line_error(surgtui("predict", str(weights), str(image), "--out", str(tmp_path / "o")))
        assert f"{weights}: not a surgtui checkpoint" in line


@pytest.mark.slow
def test_unreadable_image_or_video_is_a_user_error(trained_run: TrainedRun, tmp_path: Path) -> None:  # noqa: F811
    bad_image, bad_video = tmp_path / "broken.jpg", tmp_path / "broken.mp4"
    bad_image.write_bytes(b"\xff\xd8 not really a jpeg")
    bad_video.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    for source, needle in ((bad_image, "cannot read this image"), (bad_video, "cannot open this video")):
        line = one_line_error(
            surgtui("predict", str(trained_run.run_dir), str(source), "--out", str(tmp_path / "o"))
        )
        assert needle in line and str(source) in line


# ---------------------------------------------------------------- in process: coordinates and drawing


def test_boxes_map_back_to_original_pixels() -> None:
    import torch

    from surgtui.config.schema import Experiment
    from surgtui.data.draw import draw_detections
    from surgtui.engine.predictor import Predictor
    from surgtui.engine.sources import Item

    class Fixed(torch.nn.Module):
        """Decodes to three boxes in letterboxed pixels of a 160 canvas."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

        def decode(self, outputs: torch.Tensor) -> torch.Tensor:
            boxes = torch.tensor(
                [
                    [10.0, 45, 50, 85, 0.9, 0.2, 0.8],  # needle_driver, inside the picture
                    [100, 20, 140, 60, 0.8, 0.85, 0.1],  # needle, reaching into the top padding
                    [0, 0, 20, 20, 0.9, 0.9, 0.1],
                ]
            )  # wholly in the padding: dropped
            return boxes.expand(len(outputs), -1, -1)

    # A 320×180 image in a 160 canvas: scale 0.5, pad_y (160 - 90) // 2 = 35.
    item = Item(0, "a.png", 320, 180, np.zeros((160, 160, 3), np.uint8), 0.5, 0, 35)
    predictor = Predictor(Fixed(), Experiment(), torch.device("cpu"), conf=0.25, iou=0.45)
    (det,) = predictor([item])
    np.testing.assert_allclose(
        det.numpy(), [[20, 20, 100, 100, 0.72, 1], [200, 0, 280, 50, 0.68, 0]], rtol=1e-5
    )
    drawn = draw_detections(Image.new("RGB", (320, 180)), det)
    assert drawn.getpixel((20, 60)) == (255, 220, 0) and drawn.getpixel((200, 25)) == (60, 255, 60)
