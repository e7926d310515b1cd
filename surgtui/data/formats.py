"""Data-set layouts on disk: detection, file names, and reading COCO / YOLO splits into one record type.

Layouts (docs/data.md has the details):
  coco          images/<split>/*.jpg + annotations/<split>.json (bbox = [x, y, w, h] pixels)
  yolo          data.yaml with `names` + images/<split>/*.jpg + labels/<split>/*.txt (class cx cy w h, 0..1)
  simsurgskill  raw challenge layout <split>/videos/fps1/*.mp4 + <split>/annotations/bounding_box_gt/*.json

Loaders clip boxes to the image and skip boxes left with no area; `surgtui data check` reports both.
No torch here: the engine's datasets build on these records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from surgtui.config.schema import CLASS_NAMES
from surgtui.data.media import is_image
from surgtui.data.problems import Problems
from surgtui.errors import UserError, one_line

Format = Literal["coco", "yolo", "simsurgskill"]
# COCO category id = label index + 1 (COCO reserves 0).
CATEGORIES: list[dict] = [
    {"id": i + 1, "name": name, "supercategory": "instrument"} for i, name in enumerate(CLASS_NAMES)
]
RAW_ANNOTATIONS = Path("annotations", "bounding_box_gt")
RAW_VIDEOS = Path("videos", "fps1")
EPS = 1e-3  # pixels: normalized YOLO coordinates do not round-trip exactly


@dataclass(frozen=True)
class ImageRecord:
    """One image and its boxes in original pixels."""

    id: int
    path: Path
    width: int
    height: int
    boxes: np.ndarray  # float32 [N, 4] x1 y1 x2 y2
    labels: np.ndarray  # int64 [N], index into CLASS_NAMES


def class_index(name: str) -> int | None:
    """CLASS_NAMES index for a class as spelled in any supported file ('needle driver' too); None if unknown."""
    key = name.strip().lower().replace(" ", "_")
    return CLASS_NAMES.index(key) if key in CLASS_NAMES else None


def case_stem(case_id: int) -> str:
    return f"caseid_{case_id:06d}"


def video_file_name(case_id: int) -> str:
    return f"{case_stem(case_id)}_fps1.mp4"


def annotation_file_name(case_id: int) -> str:
    return f"{case_stem(case_id)}_fps1.json"


def frame_file_name(case_id: int, frame_id: int) -> str:
    """JPEG name of a prepared frame; `frame_id` is SimSurgSkill's 1-based frame number."""
    return f"{case_stem(case_id)}_frame_{frame_id:05d}.jpg"


def coco_dict(images: list[dict], annotations: list[dict]) -> dict:
    """A COCO detection document with this project's two categories."""
    return {
        "info": {"description": "surgtui"},
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }


def coco_annotation(ann_id: int, image_id: int, label: int, x: float, y: float, w: float, h: float) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": label + 1,
        "bbox": [x, y, w, h],
        "area": w * h,
        "iscrowd": 0,
    }


# ---------------------------------------------------------------- detection


def detect_format(root: Path) -> Format:
    """Which layout `root` holds; UserError naming the directory and what was looked for if none."""
    if not root.is_dir():
        raise UserError(f"{root}: no such directory")
    if (
        (root / "annotations").is_dir()
        and (root / "images").is_dir()
        and any((root / "annotations").glob("*.json"))
    ):
        return "coco"
    if _yolo_yaml(root) is not None:
        return "yolo"
    if any((d / RAW_ANNOTATIONS).is_dir() for d in root.iterdir() if d.is_dir()):
        return "simsurgskill"
    raise UserError(
        f"{root}: not a data set; expected annotations/*.json + images/ (coco), data.yaml + images/ + labels/ "
        f"(yolo) or <split>/{RAW_ANNOTATIONS}/ (simsurgskill)"
    )


def list_splits(root: Path, fmt: Format) -> list[str]:
    """Split names present in `root`, sorted."""
    if fmt == "coco":
        return sorted(p.stem for p in (root / "annotations").glob("*.json"))
    if fmt == "yolo":
        return (
            sorted(d.name for d in (root / "images").iterdir() if d.is_dir())
            if (root / "images").is_dir()
            else []
        )
    return sorted(d.name for d in root.iterdir() if (d / RAW_ANNOTATIONS).is_dir())


def read_split(root: Path, fmt: Format, split: str, problems: Problems | None = None) -> list[ImageRecord]:
    """Records of one split of a COCO or YOLO data set, sorted by file name; clipped or dropped boxes go to `problems`."""
    if fmt == "simsurgskill":
        raise UserError(f"{root}: raw SimSurgSkill videos; run `surgtui data prepare {root} --out DIR` first")
    if split not in list_splits(root, fmt):
        where = root / "annotations" / f"{split}.json" if fmt == "coco" else root / "images" / split
        raise UserError(
            f"{where}: split {split!r} not found; splits here: {', '.join(list_splits(root, fmt)) or 'none'}"
        )
    return read_coco(root, split, problems) if fmt == "coco" else read_yolo(root, split, problems)


# ---------------------------------------------------------------- COCO


def load_json(path: Path) -> object:
    """Parsed JSON, or UserError naming the file and the parse error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None


def load_coco(path: Path) -> dict:
    """A COCO document with its required keys checked; UserError naming file and key otherwise."""
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise UserError(f"{path}: key {key!r} missing or not a list")
    return doc


def coco_category_labels(path: Path, doc: dict) -> dict[int, int]:
    """COCO category id → CLASS_NAMES index; UserError on a category this project has no class for."""
    labels = {}
    for cat in doc["categories"]:
        label = class_index(str(cat.get("name", "")))
        if label is None:
            raise UserError(
                f"{path}: category {cat.get('name')!r} unknown; allowed: {', '.join(CLASS_NAMES)}"
            )
        labels[cat["id"]] = label
    return labels


def _clipped_xyxy(
    box: tuple[float, float, float, float], width: int, height: int, where: str, problems: Problems | None
) -> tuple[float, ...] | None:
    """x1 y1 x2 y2 of an [x, y, w, h] box clipped to the image; None (and a problem) if nothing is left."""
    x, y, w, h = box
    x1, y1, x2, y2 = max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)
    if x2 <= x1 or y2 <= y1:
        if problems is not None:
            problems.add(
                "empty_box",
                f"{where}: box [{x:g}, {y:g}, {w:g}, {h:g}] has no area inside the "
                f"{width}x{height} image; skipped",
            )
        return None
    if problems is not None and (x < -EPS or y < -EPS or x + w > width + EPS or y + h > height + EPS):
        problems.add(
            "box_outside",
            f"{where}: box [{x:g}, {y:g}, {w:g}, {h:g}] reaches outside the {width}x{height} image; clipped",
        )
    return (x1, y1, x2, y2)


def read_coco(root: Path, split: str, problems: Problems | None = None) -> list[ImageRecord]:
    """Records of annotations/<split>.json; image files live in images/<split>/."""
    path = root / "annotations" / f"{split}.json"
    doc = load_coco(path)
    labels = coco_category_labels(path, doc)
    boxes: dict[int, list[tuple[float, ...]]] = {img["id"]: [] for img in doc["images"]}
    classes: dict[int, list[int]] = {img["id"]: [] for img in doc["images"]}
    sizes = {img["id"]: (img["width"], img["height"]) for img in doc["images"]}
    for ann in doc["annotations"]:
        if ann.get("image_id") not in sizes or ann.get("category_id") not in labels:
            raise UserError(f"{path}: annotation {ann.get('id')} names an unknown image_id or category_id")
        where = f"{path.name}: annotation {ann.get('id')}"
        box = _clipped_xyxy(tuple(ann["bbox"]), *sizes[ann["image_id"]], where, problems)
        if box is not None:
            boxes[ann["image_id"]].append(box)
            classes[ann["image_id"]].append(labels[ann["category_id"]])
    images = sorted(doc["images"], key=lambda img: img["file_name"])
    return [
        _record(
            img["id"],
            root / "images" / split / img["file_name"],
            img["width"],
            img["height"],
            boxes[img["id"]],
            classes[img["id"]],
        )
        for img in images
    ]


def _record(image_id: int, path: Path, width: int, height: int, boxes: list, labels: list) -> ImageRecord:
    return ImageRecord(
        image_id,
        path,
        int(width),
        int(height),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(labels, np.int64),
    )


# ---------------------------------------------------------------- YOLO


def source_dir(source: str) -> Path | None:
    """The directory `data.source` names (None for "synthetic"); a UserError when it is not a directory.

    Checked before a run directory is made, and again by the engine.
    """
    if source == "synthetic":
        return None
    root = Path(source).expanduser()
    if root.is_dir():
        return root
    what = "a file, not a directory" if root.exists() else "no such directory"
    raise UserError(f'data.source = {source!r}: {what}; expected "synthetic" or a data set directory')


def image_problem(path: Path) -> str | None:
    """Why the image at `path` cannot be decoded whole (empty, not an image, truncated), or None."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft(
                "RGB", (max(1, im.width // 8), max(1, im.height // 8))
            )  # JPEG: decode at 1/8, still to the end
            im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        return one_line(exc)
    return None


def _yolo_yaml(root: Path) -> Path | None:
    return next((p for p in (root / "data.yaml", root / "data.yml") if p.is_file()), None)


def yolo_labels(root: Path) -> list[int]:
    """CLASS_NAMES index of each YOLO class id, from data.yaml `names` (a list or an {id: name} map)."""
    import yaml  # only YOLO sets need it

    path = _yolo_yaml(root)
    if path is None:
        raise UserError(f"{root}: no data.yaml")
    try:
        names = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("names")
    except (yaml.YAMLError, AttributeError) as e:
        raise UserError(f"{path}: not a YAML mapping ({str(e).splitlines()[0]})") from None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise UserError(f"{path}: key 'names' missing; expected a list such as [needle, needle_driver]")
    labels = [class_index(str(n)) for n in names]
    if None in labels:
        bad = names[labels.index(None)]
        raise UserError(f"{path}: names: class {bad!r} unknown; allowed: {', '.join(CLASS_NAMES)}")
    return labels  # type: ignore[return-value]


def read_yolo(root: Path, split: str, problems: Problems | None = None) -> list[ImageRecord]:
    """Records of images/<split>/ with labels/<split>/<stem>.txt (a missing label file means no boxes)."""
    from PIL import Image  # header read only, for the pixel size

    labels_of = yolo_labels(root)
    images = sorted(p for p in (root / "images" / split).iterdir() if is_image(p))
    records = []
    for image_id, image_path in enumerate(images, start=1):
        try:
            with Image.open(image_path) as im:
                width, height = im.size
        except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for empty, foreign or broken files
            if problems is None:
                raise UserError(f"{image_path}: not a readable image ({one_line(exc)})") from None
            problems.add("unreadable_image", f"{image_path}: not a readable image ({one_line(exc)})")
            continue
        boxes, classes = [], []
        label_path = root / "labels" / split / f"{image_path.stem}.txt"
        lines = label_path.read_text(encoding="utf-8").splitlines() if label_path.is_file() else []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                cls, cx, cy, w, h = line.split()
                label, cx, cy, w, h = labels_of[int(cls)], float(cx), float(cy), float(w), float(h)
                if int(cls) < 0:
                    raise IndexError(cls)
            except (ValueError, IndexError):
                raise UserError(
                    f"{label_path}:{n}: expected 'class cx cy w h' with class 0..{len(labels_of) - 1}"
                ) from None
            pixels = ((cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height)
            box = _clipped_xyxy(pixels, width, height, f"{label_path.name}:{n}", problems)
            if box is not None:
                boxes.append(box)
                classes.append(label)
        records.append(_record(image_id, image_path, width, height, boxes, classes))
    return records


def yolo_line(label: int, x: float, y: float, w: float, h: float, width: int, height: int) -> str:
    """One YOLO label line for a pixel box (x, y top-left)."""
    return (
        f"{label} {(x + w / 2) / width:.10f} {(y + h / 2) / height:.10f} {w / width:.10f} {h / height:.10f}"
    )


def yolo_yaml_text(splits: list[str]) -> str:
    lines = [
        *(f"{s}: images/{s}" for s in splits),
        "names:",
        *(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES)),
    ]
    return "\n".join(lines) + "\n"
