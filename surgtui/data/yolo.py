"""Ultralytics YOLO data sets read the way Ultralytics reads them.

`data.yaml`: `path` (the data set's folder, relative to the yaml), `train`/`val`/`test` each a folder
(searched recursively), a `.txt` list of image paths (relative ones relative to the list) or a list of
those; `../x` that does not exist is read as `x` (Roboflow exports); `names` a list or an {id: name} map.
A yaml without split keys has its splits as the folders of `images/`. An image's labels are the `.txt` of
its path with the last `/images/` replaced by `/labels/` (beside the image when there is none), unless a
labels folder is given; lines are `class cx cy w h`, 0..1 of the image; no label file means no boxes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from surgtui.data.classes import ClassMap
from surgtui.data.formats import ImageRecord, clipped_xyxy, image_size_problem, make_record
from surgtui.data.media import is_image
from surgtui.data.problems import Problems
from surgtui.errors import UserError, one_line

YAML_NAMES = ("data.yaml", "data.yml")
SPLIT_KEYS = ("train", "val", "test")  # the split keys Ultralytics reads
NOT_SPLITS = ("path", "names", "nc", "download", "yaml_file", "channels", "kpt_shape", "flip_idx")


@dataclass(frozen=True)
class YoloSplit:
    images: tuple[Path, ...]  # folders and .txt lists
    labels: Path | None = None  # a labels folder; None: Ultralytics' /images/ → /labels/ rule
    origin: str = ""  # where the paths were given, for errors: "data.yaml: train"


def find_yaml(root: Path) -> Path | None:
    return next((root / n for n in YAML_NAMES if (root / n).is_file()), None)


def _load_yaml(path: Path) -> dict:
    import yaml  # only YOLO sets need it

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected a YAML mapping with names and train/val paths")
    return doc


def read_names(path: Path) -> tuple[str, ...]:
    """Class names by YOLO class id, from `names` (a list or an {id: name} map)."""
    names = _load_yaml(path).get("names")
    if isinstance(names, dict):
        try:
            names = [names[k] for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            raise UserError(f"{path}: names: expected ids 0, 1, ... as keys") from None
    if not isinstance(names, list) or not names:
        raise UserError(f"{path}: key 'names' missing; expected a list such as [needle, needle_driver]")
    return tuple(str(n) for n in names)


def _entry_path(base: Path, entry: str) -> Path:
    path = base / entry
    if not path.exists() and entry.startswith("../"):  # Roboflow writes ../train/images beside data.yaml
        path = base / entry[3:]
    return path


def read_splits(path: Path) -> dict[str, YoloSplit]:
    """The splits a data.yaml names: train/val/test (all Ultralytics reads), then any other key whose
    paths exist (`train_v1: images/train_v1`); without any, the folders of images/ beside `path`."""
    doc = _load_yaml(path)
    base = path.parent / str(doc["path"]) if doc.get("path") else path.parent
    splits = {}
    keys = [*SPLIT_KEYS, *(k for k in doc if isinstance(k, str) and k not in (*SPLIT_KEYS, *NOT_SPLITS))]
    for key in keys:
        value = doc.get(key)
        if not value:
            continue
        entries = value if isinstance(value, list) else [value]
        if not all(isinstance(e, str) and e for e in entries):
            if key not in SPLIT_KEYS:
                continue  # some other tool's setting
            raise UserError(f"{path}: {key}: expected a folder, a .txt list of images, or a list of them")
        paths = tuple(_entry_path(base, e) for e in entries)
        if key not in SPLIT_KEYS and not all(p.exists() for p in paths):
            continue  # `license: CC BY 4.0` is not a split
        splits[key] = YoloSplit(paths, None, f"{path.name}: {key}")
    if not splits and (base / "images").is_dir():
        for folder in sorted(d for d in (base / "images").iterdir() if d.is_dir()):
            splits[folder.name] = YoloSplit((folder,), None, str(folder))
    return splits


def list_images(split: YoloSplit) -> list[Path]:
    """The split's image files: folders searched recursively, .txt lists read; sorted, without repeats."""
    found: list[Path] = []
    for entry in split.images:
        if entry.is_dir():
            found += (p for p in entry.rglob("*") if is_image(p))
        elif entry.is_file() and entry.suffix.lower() == ".txt":
            lines = entry.read_text(encoding="utf-8").splitlines()
            found += (entry.parent / line.strip() for line in lines if line.strip())
        elif entry.is_file() and is_image(entry):
            found.append(entry)
        else:
            what = "no such folder or file" if not entry.exists() else "not a folder, .txt list or image"
            raise UserError(f"{split.origin}: {entry}: {what}")
    return sorted(set(found))


def label_path(image: Path, split: YoloSplit) -> Path:
    """Where `image`'s label file is."""
    if split.labels is not None:
        rel = next(
            (image.relative_to(d) for d in split.images if d.is_dir() and image.is_relative_to(d)),
            Path(image.name),
        )
        return (split.labels / rel).with_suffix(".txt")
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    text = str(image)
    text = sb.join(text.rsplit(sa, 1)) if sa in text else text
    return Path(text).with_suffix(".txt")


def read_yolo(
    split: YoloSplit,
    names: tuple[str, ...] | None,
    classes: ClassMap,
    problems: Problems | None = None,
    notes: Problems | None = None,
) -> list[ImageRecord]:
    """Records of one split; `names` None: class ids are this project's label indices."""
    from surgtui.config.schema import CLASS_NAMES

    names = names or CLASS_NAMES
    labels: dict[int, int | None] = {}
    records = []
    for image_id, image_path in enumerate(list_images(split), start=1):
        size = image_size_problem(image_path)
        if isinstance(size, str):
            if problems is None:
                raise UserError(f"{image_path}: not a readable image ({size})")
            problems.add("unreadable_image", f"{image_path}: not a readable image ({size})")
            continue
        width, height = size
        boxes, classes_of = [], []
        lpath = label_path(image_path, split)
        try:
            lines = lpath.read_text(encoding="utf-8").splitlines() if lpath.is_file() else []
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{lpath}: cannot read ({one_line(e)})") from None
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                cls, cx, cy, w, h = line.split()[:5] if len(line.split()) == 5 else ("", "", "", "", "")
                cid, cx, cy, w, h = int(cls), float(cx), float(cy), float(w), float(h)
                if not 0 <= cid < len(names):
                    raise IndexError(cid)
            except (ValueError, IndexError):
                raise UserError(
                    f"{lpath}:{n}: expected 'class cx cy w h' with class 0..{len(names) - 1}"
                ) from None
            if cid not in labels:
                labels[cid] = classes.label(names[cid], f"{lpath}:{n}: class {cid}")
            if labels[cid] is None:
                if notes is not None:
                    notes.add("dropped_class", f"{lpath}:{n}: a {names[cid]!r} box (the class map drops it)")
                continue
            pixels = ((cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height)
            box = clipped_xyxy(pixels, width, height, f"{lpath.name}:{n}", problems)
            if box is not None:
                boxes.append(box)
                classes_of.append(labels[cid])
        records.append(make_record(image_id, image_path, width, height, boxes, classes_of))
    return records
