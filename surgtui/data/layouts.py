"""Which layout a data source holds, where its splits are, and reading them: the one place layouts are chosen.

`data.format = "auto"` takes the first of (docs/data.md has the table):
  1. `data.train` and `data.val` given as paths: those (COCO where `annotations` is given, else YOLO);
  2. Ultralytics YOLO: `data.source` is a .yaml file, or the folder holds `data.yaml` / `data.yml`
     (the file that names the splits is the most explicit statement of the set there is);
  3. COCO split files: `annotations/[instances_]<split>.json`, `<split>/_annotations.coco.json`;
  4. raw SimSurgSkill: `<split>/annotations/bounding_box_gt/` (to be prepared first).
`coco` or `yolo` reads that layout whatever else is in the folder; `simsurgskill` is a prepared set (COCO).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from surgtui.config.schema import DataConfig, SplitPaths
from surgtui.data import coco, yolo
from surgtui.data.classes import ClassMap
from surgtui.data.formats import RAW_ANNOTATIONS, ImageRecord, source_path
from surgtui.data.problems import Problems
from surgtui.data.simsurgskill import raw_split_names
from surgtui.errors import UserError

FORMATS = ("auto", "coco", "yolo", "simsurgskill")
# A split asked for by one name is found under another a tool uses for it (Roboflow's `valid`).
SYNONYMS = {"val": ("valid", "validation"), "train": ("training",), "test": ("testing",)}


@dataclass(frozen=True)
class Split:
    """One split: a COCO file, YOLO image paths, or a raw SimSurgSkill split folder."""

    name: str
    coco: coco.CocoSplit | None = None
    yolo: yolo.YoloSplit | None = None
    raw: Path | None = None

    def missing(self) -> str | None:
        """The first path the split names that is not there, described; None when all are."""
        paths: list[tuple[str, Path]] = []
        if self.coco is not None:
            paths.append(("annotations", self.coco.annotations))
        if self.yolo is not None:
            paths += [("images", p) for p in self.yolo.images]
            if self.yolo.labels is not None:
                paths.append(("labels", self.yolo.labels))
        origin = self.yolo.origin if self.yolo is not None and self.yolo.origin else f"split {self.name!r}"
        return next(
            (f"{origin}: {what}: {p}: no such folder or file" for what, p in paths if not p.exists()), None
        )

    def where(self) -> str:
        if self.coco is not None:
            return str(self.coco.annotations)
        if self.yolo is not None:
            return ", ".join(str(p) for p in self.yolo.images)
        return str(self.raw)


@dataclass(frozen=True)
class Layout:
    root: Path
    format: str  # coco | yolo | simsurgskill | mixed (explicit paths of both kinds)
    kind: str  # what a user calls it: "Ultralytics data.yaml", "Roboflow COCO export", ...
    why: str  # why this layout was read, for the run's log and `data check`
    splits: dict[str, Split]
    names: tuple[str, ...] | None = None  # YOLO class names by class id (None: our label order)
    classes: ClassMap = field(default_factory=ClassMap)

    def describe(self) -> str:
        return f"{self.kind} ({self.format}) in {self.root}: {self.why}"

    def split(self, wanted: str, key: str = "split") -> Split:
        """The split called `wanted` (or a name tools use for it: valid, train2017); UserError naming `key`."""
        name = match_split(wanted, list(self.splits))
        if name is None:
            raise UserError(
                f"{self.root}: split {wanted!r} not found ({key}); splits here: {', '.join(self.splits) or 'none'}"
            )
        return self.splits[name]

    def read(
        self, split: Split, problems: Problems | None = None, notes: Problems | None = None
    ) -> list[ImageRecord]:
        """The split's records; clipped or skipped boxes go to `problems`, dropped classes to `notes`."""
        if split.coco is not None:
            return coco.read_coco(split.coco, self.classes, problems, notes)
        if split.yolo is not None:
            return yolo.read_yolo(split.yolo, self.names, self.classes, problems, notes)
        raise UserError(
            f"{self.root}: raw SimSurgSkill videos; run `surgtui data prepare {self.root} --out DIR` first"
        )


def match_split(wanted: str, names: list[str]) -> str | None:
    """`wanted` itself, else the one name that is it in another case, a synonym, or with a year (train2017)."""
    if wanted in names:
        return wanted
    tries = (
        lambda n: n.lower() == wanted.lower(),
        lambda n: n.lower() in SYNONYMS.get(wanted.lower(), ()),
        lambda n: re.fullmatch(re.escape(wanted.lower()) + r"\d{4}", n.lower()) is not None,
    )
    for test in tries:
        hits = [n for n in names if test(n)]
        if len(hits) == 1:
            return hits[0]
    return None


def _coco_layout(root: Path, splits: dict[str, coco.CocoSplit], why: str, classes: ClassMap) -> Layout:
    files = [s.annotations for s in splits.values()]
    if any(f.name == coco.ROBOFLOW_FILE for f in files):
        kind = f"Roboflow COCO export (<split>/{coco.ROBOFLOW_FILE})"
    elif any(f.name.startswith(coco.INSTANCES_PREFIX) for f in files):
        kind = "COCO (annotations/instances_<split>.json)"
    else:
        kind = "COCO (annotations/<split>.json)"
    return Layout(root, "coco", kind, why, {n: Split(n, coco=s) for n, s in splits.items()}, classes=classes)


def _yolo_layout(root: Path, yaml_path: Path, why: str, classes: ClassMap) -> Layout:
    splits = yolo.read_splits(yaml_path)
    return Layout(
        root,
        "yolo",
        f"Ultralytics YOLO ({yaml_path.name})",
        why,
        {n: Split(n, yolo=s) for n, s in splits.items()},
        yolo.read_names(yaml_path),
        classes,
    )


def _raw_splits(root: Path) -> dict[str, Split]:
    return {name: Split(name, raw=root / name) for name in raw_split_names(root)}


def _explicit(
    root: Path, yaml_path: Path | None, paths: Mapping[str, SplitPaths], classes: ClassMap
) -> Layout:
    splits = {}
    for name, given in paths.items():
        if given.annotations:
            images = root / given.images[0]
            splits[name] = Split(name, coco=coco.CocoSplit(root / given.annotations, (images,)))
        else:
            labels = root / given.labels if given.labels else None
            images = tuple(root / p for p in given.images)
            splits[name] = Split(name, yolo=yolo.YoloSplit(images, labels, f"data.{name}"))
    kinds = {"coco" if s.coco else "yolo" for s in splits.values()}
    fmt = kinds.pop() if len(kinds) == 1 else "mixed"
    names = yolo.read_names(yaml_path) if yaml_path and fmt != "coco" else None
    why = "data.train and data.val give the paths" + (
        f"; YOLO class ids named by {yaml_path.name}" if names else ""
    )
    return Layout(root, fmt, "explicit split paths", why, splits, names, classes)


def _found_here(root: Path, yaml_path: Path | None) -> dict[str, str]:
    """Each layout present in `root`: format → how it shows."""
    found = {}
    if yaml_path is not None:
        found["yolo"] = yaml_path.name
    cocos = coco.find_splits(root) if root.is_dir() else {}
    if cocos:
        found["coco"] = ", ".join(str(s.annotations.relative_to(root)) for s in cocos.values())
    if root.is_dir() and _raw_splits(root):
        found["simsurgskill"] = f"<split>/{RAW_ANNOTATIONS}/"
    return found


def open_layout(
    source: Path,
    fmt: str = "auto",
    classes_map: Mapping[str, str] | None = None,
    paths: Mapping[str, SplitPaths] | None = None,
    key: str = "data.format",
) -> Layout:
    """The layout at `source` (a folder, or a data.yaml), read as `fmt`; UserError naming what was looked for.

    `paths`: explicit splits by name (data.train, data.val), relative to the folder.
    """
    if not source.exists():
        raise UserError(f"{source}: no such directory")
    if source.is_file() and source.suffix.lower() not in (".yaml", ".yml"):
        raise UserError(f"{source}: expected a data set folder or an Ultralytics data.yaml")
    classes = ClassMap.of(classes_map)
    yaml_path = source if source.is_file() else yolo.find_yaml(source)
    root = source.parent if source.is_file() else source
    if paths:
        layout = _explicit(root, yaml_path, paths, classes)
        wanted = "coco" if fmt == "simsurgskill" else fmt
        if wanted not in ("auto", layout.format):
            raise UserError(
                f"{key} = {fmt!r} but data.train / data.val give {layout.format} paths "
                '(COCO with annotations, YOLO without); set it to "auto" or match them'
            )
        return layout
    found = _found_here(root, yaml_path)

    def others(taken: str) -> str:
        return "".join(
            f"; also here: {f} ({how}), read with {key} = {f!r}" for f, how in found.items() if f != taken
        )

    if fmt == "auto":
        for candidate in ("yolo", "coco", "simsurgskill"):  # the order in the module docstring
            if candidate in found:
                first = "" if candidate == "yolo" else ", no data.yaml"
                why = f"{key} = 'auto': {found[candidate]} found{first}{others(candidate)}"
                return _open(root, candidate, yaml_path, classes, why)
        raise UserError(
            f"{source}: not a data set; looked for data.yaml (yolo), annotations/[instances_]<split>.json or "
            f"<split>/{coco.ROBOFLOW_FILE} (coco), <split>/{RAW_ANNOTATIONS}/ (simsurgskill)"
        )
    want = "coco" if fmt == "simsurgskill" and "coco" in found else fmt
    if want not in found:
        looked = {
            "yolo": "data.yaml or data.yml",
            "coco": f"annotations/[instances_]<split>.json or <split>/{coco.ROBOFLOW_FILE}",
            "simsurgskill": f"a prepared set (COCO files) or <split>/{RAW_ANNOTATIONS}/",
        }[want]
        here = ", ".join(f"{f} ({how})" for f, how in found.items()) or "no known layout"
        raise UserError(f'{key} = {fmt!r} but {root} has no {looked}; it holds {here}; or set {key} = "auto"')
    return _open(root, want, yaml_path, classes, f"{key} = {fmt!r}" + others(want))


def _open(root: Path, fmt: str, yaml_path: Path | None, classes: ClassMap, why: str) -> Layout:
    if fmt == "yolo":
        assert yaml_path is not None
        return _yolo_layout(root, yaml_path, why, classes)
    if fmt == "coco":
        return _coco_layout(root, coco.find_splits(root), why, classes)
    return Layout(root, "simsurgskill", "raw SimSurgSkill", why, _raw_splits(root), classes=classes)


def layout_of(data: DataConfig, source: Path) -> Layout:
    """The layout an experiment's `[data]` points at (`source` is data.source as a path)."""
    paths = (
        {"train": data.train, "val": data.val} if data.train is not None and data.val is not None else None
    )
    return open_layout(source, data.format, data.classes_map, paths)


def training_splits(layout: Layout, data: DataConfig) -> tuple[Split, Split]:
    """(train, val) of an experiment: the explicit paths, else data.train_split / data.val_split; UserError
    when a path either names is missing."""
    if data.train is not None:
        train, val = layout.splits["train"], layout.splits["val"]
    else:
        train, val = (
            layout.split(data.train_split, "data.train_split"),
            layout.split(data.val_split, "data.val_split"),
        )
    for split in (train, val):
        if (why := split.missing()) is not None:
            raise UserError(why)
    return train, val


def training_layout(data: DataConfig, source: Path) -> Layout:
    """The layout to train from; a raw SimSurgSkill set is refused with the command that prepares it."""
    layout = layout_of(data, source)
    if layout.format == "simsurgskill":
        raise UserError(
            f"data.source = {data.source!r}: raw SimSurgSkill videos; run "
            f"`surgtui data prepare {layout.root} --out DIR` and point data.source at DIR"
        )
    return layout


def check_training_source(data: DataConfig) -> None:
    """What can be checked of `[data]` without reading images: the layout and both splits are there."""
    source = source_path(data.source)
    if source is not None:
        training_splits(training_layout(data, source), data)


def read_split(
    source: Path, split: str, fmt: str = "auto", problems: Problems | None = None
) -> list[ImageRecord]:
    """The records of one split of the data set at `source` (read as `fmt`)."""
    layout = open_layout(source, fmt)
    return layout.read(layout.split(split), problems)
