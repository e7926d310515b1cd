"""Data as users have it: every layout other tools write, read with the same boxes and trained from.

Each layout is built on disk the way its tool writes it (tiny frames), from one synthetic COCO set whose
boxes are the reference.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import one_line_error, surgtui
from surgtui.config.load import deep_merge, experiment_to_toml, resolve_data
from surgtui.data import layouts
from surgtui.data.cache import cache_root
from surgtui.data.check import check
from surgtui.data.convert import convert
from surgtui.data.formats import ImageRecord
from surgtui.data.problems import Problems
from surgtui.data.writers import plan_videos, write_synthetic
from surgtui.errors import ConfigError, UserError
from surgtui.runs.events import read_events

W, H = 128, 72
SPLITS = ("train", "val")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: 3 train and 2 val frames in this project's COCO layout."""
    root = tmp_path_factory.mktemp("base")
    write_synthetic(root, "coco", plan_videos(["train"], 1, 3) + plan_videos(["val"], 1, 2), W, H, 4)
    return root


def _doc(base: Path, split: str) -> dict:
    return json.loads((base / "annotations" / f"{split}.json").read_text())


def _copy_images(base: Path, split: str, dest: Path) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for img in _doc(base, split)["images"]:
        shutil.copy(base / "images" / split / img["file_name"], dest / img["file_name"])
        names.append(img["file_name"])
    return names


def _write_labels(base: Path, split: str, dest: Path, only: list[str] | None = None) -> None:
    """YOLO label files as Ultralytics writes them: `class cx cy w h`, 6 decimals."""
    doc = _doc(base, split)
    dest.mkdir(parents=True, exist_ok=True)
    for img in doc["images"]:
        if only is not None and img["file_name"] not in only:
            continue
        lines = [
            f"{a['category_id'] - 1} {(a['bbox'][0] + a['bbox'][2] / 2) / W:.6f} "
            f"{(a['bbox'][1] + a['bbox'][3] / 2) / H:.6f} {a['bbox'][2] / W:.6f} {a['bbox'][3] / H:.6f}"
            for a in doc["annotations"]
            if a["image_id"] == img["id"]
        ]
        (dest / f"{Path(img['file_name']).stem}.txt").write_text("\n".join(lines) + "\n")


def _coco_as(base: Path, split: str, path: Path, categories: list[dict] | None = None) -> None:
    doc = _doc(base, split)
    if categories is not None:
        doc["categories"] = categories
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


# Each builder writes one layout under `root` and returns (data.source, extra [data] keys).
def coco_instances(base: Path, root: Path) -> tuple[Path, dict]:  # Ultralytics' copy of COCO
    for s in SPLITS:
        _coco_as(base, s, root / "annotations" / f"instances_{s}.json")
        _copy_images(base, s, root / "images" / s)
    return root, {}


def coco_2017(base: Path, root: Path) -> tuple[Path, dict]:  # COCO as downloaded
    for s in SPLITS:
        _coco_as(base, s, root / "annotations" / f"instances_{s}2017.json")
        _copy_images(base, s, root / f"{s}2017")
        (root / "annotations" / f"captions_{s}2017.json").write_text('{"annotations": []}')
    return root, {}


def roboflow_coco(base: Path, root: Path) -> tuple[Path, dict]:
    categories = [
        {"id": 0, "name": "instruments-x1yz", "supercategory": "none"},  # Roboflow's unused parent
        {"id": 1, "name": "Needle", "supercategory": "instruments-x1yz"},
        {"id": 2, "name": "Needle Driver", "supercategory": "instruments-x1yz"},
    ]
    for s, folder in zip(SPLITS, ("train", "valid")):
        _coco_as(base, s, root / folder / "_annotations.coco.json", categories)
        _copy_images(base, s, root / folder)
    return root, {}


def ultralytics_yaml(base: Path, root: Path) -> tuple[Path, dict]:
    """data.yaml elsewhere, naming the set by `path` relative to itself; data.source is the yaml."""
    for s in SPLITS:
        _copy_images(base, s, root / "surg" / "images" / s)
        _write_labels(base, s, root / "surg" / "labels" / s)
    yaml = root / "cfg" / "surg.yaml"
    yaml.parent.mkdir()
    yaml.write_text(
        "path: ../surg\ntrain: images/train\nval: images/val\nnames:\n  0: needle\n  1: needle_driver\n"
    )
    return yaml, {}


def yaml_lists(base: Path, root: Path) -> tuple[Path, dict]:
    """train as a list of two folders, val as a .txt list of images."""
    names = _copy_images(base, "train", root / "images" / "a")
    for name in names[1:]:
        (root / "images" / "b").mkdir(exist_ok=True)
        (root / "images" / "a" / name).rename(root / "images" / "b" / name)
    _write_labels(base, "train", root / "labels" / "a", names[:1])
    _write_labels(base, "train", root / "labels" / "b", names[1:])
    val = _copy_images(base, "val", root / "images" / "v")
    _write_labels(base, "val", root / "labels" / "v")
    (root / "val.txt").write_text("".join(f"./images/v/{n}\n" for n in val))
    (root / "data.yaml").write_text(
        "train: [images/a, images/b]\nval: val.txt\nnames: [Needle, Needle-Driver]\n"
    )
    return root, {}


def roboflow_yolo(base: Path, root: Path) -> tuple[Path, dict]:
    for s, folder in zip(SPLITS, ("train", "valid")):
        _copy_images(base, s, root / folder / "images")
        _write_labels(base, s, root / folder / "labels")
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 2\n"
        "names: ['needle', 'needle driver']\n\nroboflow:\n  workspace: lab\n  version: 3\n"
        "  license: CC BY 4.0\n  url: https://universe.roboflow.com/lab/needles/dataset/3\nlicense: CC BY 4.0\n"
    )
    return root, {}


def explicit_coco(base: Path, root: Path) -> tuple[Path, dict]:
    """An odd layout no detector knows: given by path in the experiment."""
    paths = {}
    for s in SPLITS:
        _coco_as(base, s, root / "gt" / f"{s}-boxes.json")
        _copy_images(base, s, root / "frames" / s)
        paths[s] = {"annotations": f"gt/{s}-boxes.json", "images": f"frames/{s}"}
    return root, paths


def explicit_yolo(base: Path, root: Path) -> tuple[Path, dict]:
    paths = {}
    for s in SPLITS:
        _copy_images(base, s, root / "pics" / s)
        _write_labels(base, s, root / "txt" / s)
        paths[s] = {"images": [f"pics/{s}"], "labels": f"txt/{s}"}
    return root, paths


LAYOUTS: dict[str, tuple[Callable[[Path, Path], tuple[Path, dict]], str]] = {
    "coco_instances": (coco_instances, "COCO (annotations/instances_<split>.json)"),
    "coco_2017": (coco_2017, "COCO (annotations/instances_<split>.json)"),
    "roboflow_coco": (roboflow_coco, "Roboflow COCO export"),
    "ultralytics_yaml": (ultralytics_yaml, "Ultralytics YOLO (surg.yaml)"),
    "yaml_lists": (yaml_lists, "Ultralytics YOLO (data.yaml)"),
    "roboflow_yolo": (roboflow_yolo, "Ultralytics YOLO (data.yaml)"),
    "explicit_coco": (explicit_coco, "explicit split paths"),
    "explicit_yolo": (explicit_yolo, "explicit split paths"),
}


def _by_name(records: list[ImageRecord]) -> dict[str, ImageRecord]:
    return {r.path.name: r for r in records}


def assert_same_boxes(got: list[ImageRecord], want: list[ImageRecord], atol: float) -> None:
    got_, want_ = _by_name(got), _by_name(want)
    assert sorted(got_) == sorted(want_)
    for name, w in want_.items():
        g = got_[name]
        assert (g.width, g.height) == (w.width, w.height) and g.path.is_file()
        order_g, order_w = np.lexsort(g.boxes.T), np.lexsort(w.boxes.T)
        np.testing.assert_allclose(g.boxes[order_g], w.boxes[order_w], atol=atol, rtol=0)
        assert g.labels[order_g].tolist() == w.labels[order_w].tolist()


def _experiment(source: Path, tmp: Path, data: dict[str, Any] | None = None) -> Path:
    """A run directory training Nano at 64 px for one step (3 frames, batch 4) on `source`."""
    base = {
        "name": "layout",
        "variant": "YOLOv5-Nano",
        "model": {"pretrained": False, "img_size": 64, "neck_width": 16, "autoanchor": False},
        "data": {"source": str(source), "augment": {"mosaic": 0.0}, **(data or {})},
        "train": {"epochs": 1, "batch_size": 4, "workers": 0, "seed": 1},
    }
    exp, _ = resolve_data(deep_merge(base, {}), "test")
    run_dir = tmp / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(experiment_to_toml(exp))
    return run_dir


def _train(run_dir: Path) -> list[dict]:
    from surgtui.engine import train as engine

    assert engine.run(run_dir) == 0, [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "log"]
    return list(read_events(run_dir / "events.jsonl"))


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_each_layout_reads_the_same_boxes_and_trains(name: str, base: Path, tmp_path: Path) -> None:
    build, kind = LAYOUTS[name]
    source, paths = build(base, tmp_path / "data")
    before = _files(tmp_path / "data")
    exp, _ = resolve_data({"data": {"source": str(source), **paths}}, "test")
    layout = layouts.layout_of(exp.data, source)
    assert layout.kind.startswith(kind)
    train, val = layouts.training_splits(layout, exp.data)
    atol = 0 if layout.format == "coco" else 1e-3  # YOLO files keep 6 decimals
    for split, want in zip((train, val), SPLITS):
        assert_same_boxes(layout.read(split), layouts.read_split(base, want), atol)

    events = _train(_experiment(source, tmp_path, paths))
    logs = [e["message"] for e in events if e["type"] == "log"]
    assert any(m.startswith("data: ") and kind in m for m in logs), logs
    assert any("train = " in m and "(3 images)" in m and "(2 images)" in m for m in logs), logs
    assert sum(e["type"] == "step" for e in events) == 1 and events[-1]["status"] == "finished"
    assert _files(tmp_path / "data") == before  # nothing written next to the user's data


@pytest.fixture(scope="module")
def mixed(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the issue: Ultralytics' layout with COCO files beside it."""
    root = tmp_path_factory.mktemp("mixed")
    for s in SPLITS:
        _copy_images(base, s, root / "images" / s)
        _write_labels(base, s, root / "labels" / s)
        _coco_as(base, s, root / "annotations" / f"instances_{s}.json")
    (root / "data.yaml").write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames: [needle, needle_driver]\n"
    )
    return root


@pytest.mark.slow
def test_mixed_folder_trains_as_yolo_and_as_coco_with_the_same_boxes(mixed: Path, tmp_path: Path) -> None:
    from surgtui.engine.datasets import build_datasets

    read = {}
    for fmt in ("yolo", "coco"):
        exp, _ = resolve_data(
            {"data": {"source": str(mixed), "format": fmt, "augment": {"enabled": False}}}, "t"
        )
        read[fmt] = build_datasets(exp)
        events = _train(_experiment(mixed, tmp_path / fmt, {"format": fmt}))
        said = next(e["message"] for e in events if e["type"] == "log" and e["message"].startswith("data: "))
        assert f"({fmt})" in said and f"data.format = '{fmt}'" in said, said
        assert events[-1]["status"] == "finished"
    for y, c in zip(read["yolo"], read["coco"]):
        assert_same_boxes(y.records, c.records, atol=1e-3)
    auto = layouts.open_layout(mixed)  # auto: the data.yaml first, and it says what else is there
    assert auto.format == "yolo"
    assert "also here: coco (annotations/instances_train.json, annotations/instances_val.json)" in auto.why


def test_explicit_format_that_is_absent_names_what_was_looked_for(base: Path, tmp_path: Path) -> None:
    source, _ = roboflow_yolo(base, tmp_path)
    with pytest.raises(
        UserError, match=r"data.format = 'coco' but .* has no annotations/\[instances_\]<split>\.json"
    ):
        layouts.open_layout(source, "coco")
    assert "it holds yolo (data.yaml)" in str(
        pytest.raises(UserError, layouts.open_layout, source, "coco").value
    )


def test_check_lists_a_missing_split_folder_and_skips_other_keys(base: Path, tmp_path: Path) -> None:
    """A Roboflow data.yaml names a test folder the export left out, and carries a licence."""
    source, _ = roboflow_yolo(base, tmp_path)
    report = check(source)
    assert list(report.splits) == ["train", "val", "test"]
    assert report.problems.counts == {"missing_split": 1}
    assert "data.yaml: test: images: " in report.problems.examples["missing_split"][0]
    assert report.splits["val"].images == 2


def test_explicit_paths_and_a_contrary_format_are_refused(base: Path, tmp_path: Path) -> None:
    source, paths = explicit_yolo(base, tmp_path)
    exp, _ = resolve_data({"data": {"source": str(source), "format": "coco", **paths}}, "t")
    with pytest.raises(UserError, match="data.format = 'coco' but data.train / data.val give yolo paths"):
        layouts.layout_of(exp.data, source)


def test_foreign_classes_are_an_error_unless_mapped_or_dropped(base: Path, tmp_path: Path) -> None:
    categories = [{"id": 1, "name": "Suture", "supercategory": ""}, {"id": 2, "name": "Needle Holder"}]
    for s in SPLITS:
        _coco_as(base, s, tmp_path / "annotations" / f"{s}.json", categories)
        _copy_images(base, s, tmp_path / "images" / s)
    with pytest.raises(
        UserError,
        match=r"val\.json: category \d: class '(Suture|Needle Holder)' is not one of needle, needle_driver .*classes_map",
    ):
        layouts.read_split(tmp_path, "val")
    want = layouts.read_split(base, "val")
    layout = layouts.open_layout(tmp_path, classes_map={"needle holder": "needle_driver", "SUTURE": "drop"})
    notes = Problems()
    got = layout.read(layout.split("val"), notes=notes)
    kept = [r.labels == 1 for r in want]
    assert [len(r.labels) for r in got] == [int(k.sum()) for k in kept]
    assert all((r.labels == 1).all() for r in got)
    assert notes.counts["dropped_class"] == sum(int((~k).sum()) for k in kept) > 0
    layout = layouts.open_layout(tmp_path, classes_map={"suture": "needle", "needle holder": "needle_driver"})
    assert_same_boxes(layout.read(layout.split("val")), want, atol=0)


def test_bad_data_keys_exit_2_with_one_line(base: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"data.classes_map: 'x' = 'cat': allowed values: needle, needle_driver, drop"
    ):
        resolve_data({"data": {"classes_map": {"x": "cat"}}}, "e.toml")
    with pytest.raises(ConfigError, match="data.train is given but data.val is not"):
        resolve_data({"data": {"train": "images/train"}}, "e.toml")
    with pytest.raises(ConfigError, match=r"data.train.imgs: unknown key"):
        resolve_data({"data": {"train": {"imgs": "x"}, "val": "v"}}, "e.toml")
    exp = tmp_path / "e.toml"
    exp.write_text(f'[data]\nsource = "{base}"\ntrain = "nowhere/images"\nval = "images/val"\n')
    r = surgtui("run", str(exp), "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2 and "nowhere/images: no such folder or file" in r.stderr


def test_convert_round_trips_box_for_box(base: Path, tmp_path: Path) -> None:
    r = surgtui("data", "convert", str(base), "--to", "yolo", "--out", str(tmp_path / "yolo"))
    assert r.returncode == 0, r.stderr
    assert "train: 3 images" in r.stdout
    yolo = layouts.open_layout(tmp_path / "yolo")
    assert yolo.format == "yolo" and list(yolo.splits) == list(SPLITS)
    convert(tmp_path / "yolo", "coco", tmp_path / "coco")
    for s in SPLITS:
        want = layouts.read_split(base, s)
        for got in (layouts.read_split(tmp_path / "yolo", s), layouts.read_split(tmp_path / "coco", s)):
            assert_same_boxes(got, want, atol=0)  # exact: floats written to read back as they were
    r = surgtui("data", "convert", str(base), "--to", "coco", "--out", str(tmp_path / "coco"))
    assert "already exists and is not an empty folder" in one_line_error(r)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-written output left


def test_convert_roboflow_and_raw_simsurgskill(base: Path, tmp_path: Path) -> None:
    source, _ = roboflow_coco(base, tmp_path / "rf")
    convert(source, "yolo", tmp_path / "rf-yolo", link=True)
    assert list(layouts.open_layout(tmp_path / "rf-yolo").splits) == ["train", "val"]  # Ultralytics' keys
    assert_same_boxes(
        layouts.read_split(tmp_path / "rf-yolo", "val", "yolo"), layouts.read_split(base, "val"), atol=0
    )
    write_synthetic(tmp_path / "raw", "simsurgskill", plan_videos(["train_v1"], 1, 2), W, H, 4)
    report = convert(tmp_path / "raw", "yolo", tmp_path / "raw-yolo")
    assert report.splits["train_v1"][0] == 2 and "train_v1 are not keys Ultralytics reads" in report.notes[0]
    assert len(layouts.read_split(tmp_path / "raw-yolo", "train_v1")) == 2
    convert(tmp_path / "raw", "coco", tmp_path / "raw-coco")  # preparing is converting
    assert sorted(p.name for p in (tmp_path / "raw-coco").iterdir()) == ["annotations", "images"]


def test_check_reports_the_layout_and_counts_per_split_and_class(mixed: Path) -> None:
    r = surgtui("data", "check", str(mixed), "--format", "coco", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["format"] == "coco" and report["layout"].startswith("COCO (annotations/instances_")
    assert "also here: yolo (data.yaml)" in report["why"]
    assert report["files"]["train"].endswith("instances_train.json")
    counts = check(mixed)  # auto: yolo, same counts
    assert counts.format == "yolo"
    for s in SPLITS:
        assert report["splits"][s]["images"] == counts.splits[s].images
        assert report["splits"][s]["boxes"] == dict(counts.splits[s].boxes)
    r = surgtui("data", "check", str(mixed))
    assert r.stdout.startswith(f"{mixed}: Ultralytics YOLO (data.yaml) (yolo), splits: train, val")
    assert "read as: data.format = 'auto'" not in r.stdout and "read as: --format = 'auto'" in r.stdout


def test_split_names_tools_use_are_found() -> None:
    assert layouts.match_split("val", ["train", "valid", "test"]) == "valid"
    assert layouts.match_split("train", ["train2017", "val2017"]) == "train2017"
    assert layouts.match_split("Train", ["train", "val"]) == "train"
    assert layouts.match_split("val", ["val_a", "val_b"]) is None


def test_cache_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SURGTUI_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "surgtui"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path(os.path.expanduser("~/.cache/surgtui"))
    assert cache_root("/data/cache") == Path("/data/cache")
