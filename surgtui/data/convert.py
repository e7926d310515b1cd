"""`surgtui data convert`: any layout surgtui reads, written as a plain COCO or Ultralytics YOLO set.

COCO out:  images/<split>/<file>, annotations/<split>.json (ids 1.., bbox [x, y, w, h] pixels)
YOLO out:  images/<split>/<file>, labels/<split>/<stem>.txt, data.yaml (a key per split + names); a split
           that answers to an Ultralytics key is named by it (valid → val, train2017 → train)
Boxes are written as read (clipped to the image, classes mapped), with floats that read back exactly, so
COCO → YOLO → COCO gives the same boxes. A raw SimSurgSkill set is prepared first. Everything is written in
a temporary folder renamed to `--out` at the end: an interrupted conversion leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from surgtui.data import formats
from surgtui.data.formats import ImageRecord
from surgtui.data.layouts import Layout, match_split, open_layout
from surgtui.data.yolo import SPLIT_KEYS
from surgtui.errors import UserError
from surgtui.fileio import scratch_dir, staging_dir, write_text_atomic

TARGETS = ("coco", "yolo")
Progress = Callable[[int, int], None]


@dataclass
class ConvertReport:
    source: str  # the layout read, described
    out: Path
    to: str
    splits: dict[str, tuple[int, int]] = field(default_factory=dict)  # split written → (images, boxes)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"read {self.source}",
            *(f"{name}: {n} images, {b} boxes" for name, (n, b) in self.splits.items()),
            f"wrote a {self.to} set to {self.out}",
            *(f"note: {n}" for n in self.notes),
        ]


def _unique_names(records: list[ImageRecord]) -> list[str]:
    """A file name per record, unique by stem (YOLO label files are named by stem): a clash gets its folder's name."""
    taken: set[str] = set()
    names = []
    for r in records:
        stem, n = r.path.stem, 1
        while stem.lower() in taken:
            n += 1
            stem = f"{r.path.parent.name}_{r.path.stem}" + (f"_{n}" if n > 2 else "")
        taken.add(stem.lower())
        names.append(stem + r.path.suffix)
    return names


def _place(src: Path, dst: Path, link: bool) -> None:
    if not src.is_file():
        raise UserError(f"{src}: image file missing; `surgtui data check` lists every missing image")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:  # another file system, or links not allowed: copy
            pass
    shutil.copy2(src, dst)


def _xywh(box: object) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)  # type: ignore[attr-defined]
    return x1, y1, x2 - x1, y2 - y1


def _write_split(
    tmp: Path, to: str, split: str, records: list[ImageRecord], link: bool, tick: Callable[[], None]
) -> int:
    images, annotations, boxes = [], [], 0
    for image_id, (r, name) in enumerate(zip(records, _unique_names(records)), start=1):
        _place(r.path, tmp / "images" / split / name, link)
        if to == "coco":
            images.append({"id": image_id, "file_name": name, "width": r.width, "height": r.height})
            for label, box in zip(r.labels, r.boxes):
                annotations.append(
                    formats.coco_annotation(len(annotations) + 1, image_id, int(label), *_xywh(box))
                )
        else:
            lines = [
                formats.yolo_line(int(label), *_xywh(box), r.width, r.height)
                for label, box in zip(r.labels, r.boxes)
            ]
            label_file = tmp / "labels" / split / f"{Path(name).stem}.txt"
            label_file.parent.mkdir(parents=True, exist_ok=True)
            label_file.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        boxes += len(r.labels)
        tick()
    if to == "coco":
        doc = formats.coco_dict(images, annotations)
        write_text_atomic(tmp / "annotations" / f"{split}.json", json.dumps(doc), durable=False, parents=True)
    return boxes


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: already exists and is not an empty folder; choose another")


def convert(
    source: Path,
    to: str,
    out: Path,
    fmt: str = "auto",
    classes_map: Mapping[str, str] | None = None,
    link: bool = False,
    progress: Progress | None = None,
) -> ConvertReport:
    """Write the data set at `source` (read as `fmt`) to `out` as `to` (coco or yolo)."""
    if to not in TARGETS:
        raise UserError(f"--to {to!r}: allowed: {', '.join(TARGETS)}")
    _check_out(out)
    layout = open_layout(source, fmt, classes_map, key="--format")
    if layout.format != "simsurgskill":
        return _convert(layout, to, out, link, progress)
    from surgtui.data.prepare import PREPARE_RECORDS, prepare

    if to == "coco":  # preparing is converting
        with staging_dir(out) as tmp:
            report = prepare(layout.root, tmp, None, progress)
            shutil.rmtree(tmp / PREPARE_RECORDS, ignore_errors=True)  # resume records of a finished job
        return ConvertReport(
            layout.describe(), out, to, {k: (s.images, s.boxes.total()) for k, s in report.splits.items()}
        )
    with scratch_dir(out.parent) as prepared:
        prepare(layout.root, prepared, None, progress)
        return _convert(open_layout(prepared, "coco"), to, out, link, progress, described=layout.describe())


def _convert(
    layout: Layout,
    to: str,
    out: Path,
    link: bool,
    progress: Progress | None,
    described: str = "",
) -> ConvertReport:
    report = ConvertReport(described or layout.describe(), out, to)
    records = {name: layout.read(split) for name, split in layout.splits.items()}
    total, done = sum(len(r) for r in records.values()), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    names = _yolo_names(list(records)) if to == "yolo" else {n: n for n in records}
    with staging_dir(out) as tmp:
        for name, recs in records.items():
            report.splits[names[name]] = (len(recs), _write_split(tmp, to, names[name], recs, link, tick))
        if to == "yolo":
            write_text_atomic(tmp / "data.yaml", formats.yolo_yaml_text(list(names.values())))
    others = [n for n in names.values() if n not in SPLIT_KEYS]
    if others:
        report.notes.append(
            f"data.yaml: {', '.join(others)} are not keys Ultralytics reads; list them under train/val/test there"
        )
    return report


def _yolo_names(splits: list[str]) -> dict[str, str]:
    """Each split's name in a data.yaml: the Ultralytics key it answers to (valid → val, train2017 → train)."""
    names: dict[str, str] = {}
    for split in splits:
        key = next((k for k in SPLIT_KEYS if match_split(k, [split]) == split), split)
        names[split] = key if key not in names.values() else split
    return names
