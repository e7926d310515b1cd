"""`surgtui predict`: a trained model on a synthetic video, a folder of images and one image, as a user runs it.

The model (tests/trained_run.py) overfits 8 synthetic frames whose boxes the generator
knows; a video of the same frames (`surgtui data synth --layout simsurgskill`), the frames
themselves, and the frames at 320×180 (so the letterbox is undone at scale 0.5) must give
detections on those boxes. The exact mapping back to original pixels is checked in process
with a model that predicts fixed boxes. The video sampled (--every, --fps) must give the full
run's detections on the frames it keeps; --save-txt's YOLO lines the boxes of predictions.json;
a nested folder (--recursive) and a glob the nested images under distinct names.
"""

from __future__ import annotations

import json
import shutil
import subprocess
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


@pytest.fixture(scope="module")
def video_prediction(
    trained_run: TrainedRun,  # noqa: F811
    synth_video: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    """The whole video predicted, with YOLO labels and scores: (DIR, the finished command)."""
    out = tmp_path_factory.mktemp("video-pred") / "pred"
    r = surgtui(
        "predict",
        str(trained_run.run_dir),
        str(synth_video),
        "--out",
        str(out),
        "--batch",
        "3",
        "--save-txt",
        "--save-conf",
    )
    assert r.returncode == 0, r.stderr
    return out, r


@pytest.mark.slow
def test_predict_video(video_prediction: tuple[Path, subprocess.CompletedProcess], synth_video: Path) -> None:
    out, r = video_prediction
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


# ---------------------------------------------------------------- a video sampled, YOLO labels


def detections(doc: dict, image_id: int) -> list[tuple[str, list[float], float]]:
    return [(a["category"], a["bbox"], a["score"]) for a in doc["annotations"] if a["image_id"] == image_id]


def assert_same_detections(sampled: dict, full: dict) -> None:
    """Each frame `sampled` kept has the full run's detections (other batches: float noise only)."""
    for im in sampled["images"]:
        got, want = detections(sampled, im["id"]), detections(full, im["frame"] + 1)
        assert [c for c, _, _ in got] == [c for c, _, _ in want], im
        np.testing.assert_allclose([b for _, b, _ in got], [b for _, b, _ in want], atol=0.02)
        np.testing.assert_allclose([s for _, _, s in got], [s for _, _, s in want], atol=1e-4)


def yolo_rows(doc: dict, image: dict, scores: bool) -> list[list[float]]:
    """What --save-txt must write for `image`: class cx cy w h [score], 0..1 of the image."""
    w_img, h_img = image["width"], image["height"]
    rows = []
    for a in (a for a in doc["annotations"] if a["image_id"] == image["id"]):
        x, y, w, h = a["bbox"]
        row = [a["category_id"] - 1, (x + w / 2) / w_img, (y + h / 2) / h_img, w / w_img, h / h_img]
        rows.append(row + [a["score"]] * scores)
    return rows


def read_label_file(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_save_txt_lines_are_the_predictions(
    video_prediction: tuple[Path, subprocess.CompletedProcess], synth_video: Path
) -> None:
    out, r = video_prediction
    doc = json.loads((out / "predictions.json").read_text())
    names = [f"{synth_video.stem}_{frame:06d}.txt" for frame in range(FRAMES)]
    assert sorted(p.name for p in (out / "labels").iterdir()) == names
    assert f"{FRAMES} label files in labels/" in r.stdout
    for name, image in zip(names, doc["images"]):
        rows = read_label_file(out / "labels" / name)
        assert all(len(row) == 6 for row in rows)  # --save-conf: the score last
        np.testing.assert_allclose(rows, yolo_rows(doc, image, scores=True), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_every_nth_frame(
    trained_run: TrainedRun,  # noqa: F811
    synth_video: Path,
    video_prediction: tuple[Path, subprocess.CompletedProcess],
    tmp_path: Path,
) -> None:
    out = tmp_path / "pred"
    args = ("--out", str(out), "--batch", "3", "--every", "3", "--save-txt")
    r = surgtui("predict", str(trained_run.run_dir), str(synth_video), *args)
    assert r.returncode == 0, r.stderr
    assert "3 frames" in r.stdout
    doc = json.loads((out / "predictions.json").read_text())
    full = json.loads((video_prediction[0] / "predictions.json").read_text())
    assert [(im["id"], im["frame"], im["time"]) for im in doc["images"]] == [
        (1, 0, 0.0),
        (4, 3, 3.0),
        (7, 6, 6.0),
    ]
    assert doc["info"]["every"] == 3 and doc["info"]["fps"] == 1.0  # the video's own rate
    assert_same_detections(doc, full)
    for image in doc["images"]:  # named by the true frame; without --save-conf five columns
        rows = read_label_file(out / "labels" / f"{synth_video.stem}_{image['frame']:06d}.txt")
        np.testing.assert_allclose(rows, yolo_rows(doc, image, scores=False), rtol=0, atol=1e-6)
    assert len(list((out / "labels").iterdir())) == 3
    assert len(list(decode_frames(out / synth_video.name))) == 3  # the drawn video: the kept frames


@pytest.mark.slow
def test_fps_keeps_the_first_frame_of_each_step(
    trained_run: TrainedRun,  # noqa: F811
    synth_video: Path,
    video_prediction: tuple[Path, subprocess.CompletedProcess],
    tmp_path: Path,
) -> None:
    """A 1 fps video at 0.4 fps: steps at 0, 2.5, 5, 7.5 s keep the frames at 0, 3 and 5 s.

    The engine module's main in process (no torch import to wait for), with the arguments the CLI passes.
    """
    from surgtui.engine.predict import main
    from surgtui.runs.inference import PredictOptions

    out = tmp_path / "pred"
    args = ["--out", str(out), "--batch", "3", "--no-images", *PredictOptions(fps=0.4).engine_args()]
    assert main([str(trained_run.run_dir), str(synth_video), *args]) == 0
    doc = json.loads((out / "predictions.json").read_text())
    assert [(im["frame"], im["time"]) for im in doc["images"]] == [(0, 0.0), (3, 3.0), (5, 5.0)]
    assert doc["info"]["sample_fps"] == 0.4 and sorted(p.name for p in out.iterdir()) == ["predictions.json"]
    assert_same_detections(doc, json.loads((video_prediction[0] / "predictions.json").read_text()))


def test_sampled_frames_and_their_count(synth_video: Path) -> None:
    """The progress bar's total (sampled_count) is the number of frames sampled_frames keeps."""
    from surgtui.engine.sources import open_video, sampled_count, sampled_frames, video_info

    rate, total = video_info(synth_video)
    assert (rate, total) == (1, FRAMES)
    cases = {(2, None): [0, 2, 4, 6], (3, None): [0, 3, 6], (None, 0.4): [0, 3, 5], (None, 0.3): [0, 4, 7]}
    cases |= {
        (None, 1.0): list(range(FRAMES)),
        (None, 30.0): list(range(FRAMES)),
        (None, None): list(range(8)),
    }
    for (every, fps), want in cases.items():
        container, stream = open_video(synth_video)
        with container:
            kept = [i for i, _ in sampled_frames(container.decode(stream), rate, every, fps)]
        assert kept == want and sampled_count(total, rate, every, fps) == len(want), (every, fps)


# ---------------------------------------------------------------- nested folders and globs


@pytest.fixture(scope="module")
def nested_folder(
    tmp_path_factory: pytest.TempPathFactory,
    trained_run: TrainedRun,  # noqa: F811
    synth_video: Path,
) -> Path:
    """left/ and right/ hold different frames under one name; top.jpg; a PNG; a hidden folder; a video."""
    root = tmp_path_factory.mktemp("nested")
    frames = sorted((trained_run.data / "images" / "train").glob("*.jpg"))
    for sub, frame in (("left", frames[0]), ("right", frames[1]), (".hidden", frames[2])):
        (root / sub).mkdir()
        shutil.copy(frame, root / sub / frames[0].name)
    shutil.copy(frames[2], root / "top.jpg")
    Image.new("RGB", (WIDTH, HEIGHT), (128, 128, 128)).save(root / "blank.png")
    (root / "clips").mkdir()
    shutil.copy(synth_video, root / "clips" / synth_video.name)  # videos stay out of folder mode
    return root


@pytest.mark.slow
def test_predict_recursive_folder(trained_run: TrainedRun, nested_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    out, name = tmp_path / "pred", sorted((trained_run.data / "images" / "train").glob("*.jpg"))[0].name
    r = surgtui(
        "predict",
        str(trained_run.run_dir),
        str(nested_folder),
        "--out",
        str(out),
        "--recursive",
        "--save-txt",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "predictions.json").read_text())
    names = ["blank.png", f"left/{name}", f"right/{name}", "top.jpg"]
    assert [im["file_name"] for im in doc["images"]] == names and doc["info"]["recursive"] is True
    truth = generator_boxes()
    for i, sub in ((0, "left"), (1, "right")):  # same name, each its own frame's boxes
        assert matched_fraction(doc, truth[i : i + 1], "file_name", [f"{sub}/{name}"]) >= 0.5
    with Image.open(out / "left" / name) as left, Image.open(out / "right" / name) as right:
        assert np.abs(np.asarray(left, int) - np.asarray(right)).mean() > 1  # two drawings, none overwritten
    labels = sorted(str(p.relative_to(out / "labels")) for p in (out / "labels").rglob("*.txt"))
    assert labels == ["blank.txt", f"left/{Path(name).stem}.txt", f"right/{Path(name).stem}.txt", "top.txt"]
    for image in doc["images"]:
        rows = read_label_file((out / "labels" / image["file_name"]).with_suffix(".txt"))
        np.testing.assert_allclose(rows, yolo_rows(doc, image, scores=False), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_predict_glob(trained_run: TrainedRun, nested_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    """In process (the CLI passes the pattern on as it came): names relative to the folder before the wildcard."""
    from surgtui.engine.predict import predict
    from surgtui.runs.inference import PredictOptions

    name = sorted((trained_run.data / "images" / "train").glob("*.jpg"))[0].name
    pattern, out = Path(nested_folder, "**", "*.jpg"), tmp_path / "pred"
    opts = PredictOptions(save_txt=True)  # at conf 0.99 (its best score is about 0.93) nothing is found
    doc = predict(
        str(trained_run.run_dir), pattern, out, conf=0.99, images=False, progress=False, options=opts
    )
    assert [im["file_name"] for im in doc["images"]] == [f"left/{name}", f"right/{name}", "top.jpg"]
    assert doc["info"]["kind"] == "glob" and doc["info"]["source"] == str(pattern)
    assert doc["annotations"] == []  # each image still gets its label file, empty (a stale one is replaced)
    stem = Path(name).stem
    labels = {f"left/{stem}.txt", f"right/{stem}.txt", "top.txt"}
    assert {
        str(p.relative_to(out / "labels")): p.read_text() for p in (out / "labels").rglob("*.txt")
    } == dict.fromkeys(labels, "")


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


def test_bad_sampling_or_search_fails_before_the_engine_starts(tmp_path: Path, image: Path) -> None:
    from surgtui.errors import UserError
    from surgtui.runs.inference import PredictOptions, check_predict_args

    weights, video = tmp_path / "w.pt", tmp_path / "clip.mp4"
    weights.write_bytes(b"not checked: the options are wrong first")
    video.write_bytes(b"not decoded: the options are wrong first")
    line = one_line_error(
        surgtui(
            "predict", str(weights), str(video), "--out", str(tmp_path / "o"), "--every", "2", "--fps", "5"
        )
    )
    assert "--every and --fps" in line
    pattern = str(tmp_path / "**" / "*.tiff")
    line = one_line_error(surgtui("predict", str(weights), pattern, "--out", str(tmp_path / "o")))
    assert f"{pattern}: no images match this pattern" in line

    nested = tmp_path / "nested"
    (nested / "sub").mkdir(parents=True)
    shutil.copy(image, nested / "sub" / "a.png")
    shutil.copy(image, nested / "sub" / "a.jpg")
    cases = [
        (video, PredictOptions(every=0), "--every 0: expected at least 1"),
        (video, PredictOptions(fps=-1.0), "--fps -1: expected frames per second above 0"),
        (image, PredictOptions(fps=2.0), f"--fps: samples a video's frames, and {image} is an image"),
        (
            nested,
            PredictOptions(every=2, recursive=True),
            f"--every: samples a video's frames, and {nested} is a folder",
        ),
        (
            video,
            PredictOptions(recursive=True),
            f"--recursive: searches a folder's subfolders, and {video} is a video",
        ),
        (image, PredictOptions(save_conf=True), "--save-conf: appends the score to --save-txt's label lines"),
        (
            nested,
            PredictOptions(),
            "no images in this folder (expected .jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp; "
            "2 in its subfolders: add --recursive)",
        ),
        (nested, PredictOptions(recursive=True, save_txt=True), "would share labels/sub/a.txt"),
    ]
    for source, opts, needle in cases:
        with pytest.raises(UserError) as err:
            check_predict_args(source, tmp_path / "o", 0.25, 0.45, 8, "cpu", opts)
        assert needle in str(err.value), (str(err.value), needle)
    (nested / "sub" / "a.jpg").unlink()
    (nested / "out").mkdir()
    with pytest.raises(UserError, match="is inside .*--recursive would read its drawn images"):
        check_predict_args(nested, nested / "out", 0.25, 0.45, 8, "cpu", PredictOptions(recursive=True))
    assert (
        check_predict_args(nested, tmp_path / "o", 0.25, 0.45, 8, "cpu", PredictOptions(recursive=True))
        == "folder"
    )
    assert not (tmp_path / "o").exists()


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
