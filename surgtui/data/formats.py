"""The one record type every layout reads into, and the file-format primitives COCO and YOLO share.

Which layout a folder holds and how its splits are found: `surgtui.data.layouts` (docs/data.md).
Loaders clip boxes to the image and skip boxes left with no area; `surgtui data check` reports both.
No torch here: the engine's datasets build on these records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surgtui.config.schema import CLASS_NAMES, SYNTHETIC_SOURCE
from surgtui.data.problems import Problems
from surgtui.errors import UserError, one_line

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


def clipped_xyxy(
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


def make_record(image_id: int, path: Path, width: int, height: int, boxes: list, labels: list) -> ImageRecord:
    return ImageRecord(
        image_id,
        path,
        int(width),
        int(height),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(labels, np.int64),
    )


def source_path(source: str) -> Path | None:
    """The folder (or Ultralytics data.yaml) `data.source` names; None for "synthetic"; UserError otherwise.

    Checked before a run directory is made, and again by the engine.
    """
    if source == SYNTHETIC_SOURCE:
        return None
    path = Path(source).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() in (".yaml", ".yml")):
        return path
    what = "a file, not a directory (nor a data.yaml)" if path.exists() else "no such directory"
    raise UserError(
        f'data.source = {source!r}: {what}; expected "synthetic", a data set folder or a data.yaml'
    )


def image_size_problem(path: Path) -> tuple[int, int] | str:
    """(width, height) from the image's header, or why it cannot be opened."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for empty, foreign or broken files
        return one_line(exc)


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


def yolo_line(label: int, x: float, y: float, w: float, h: float, width: int, height: int) -> str:
    """One YOLO label line for a pixel box (x, y top-left); shortest exact floats, so boxes read back exactly."""
    return f"{label} {(x + w / 2) / width!r} {(y + h / 2) / height!r} {w / width!r} {h / height!r}"


def yolo_yaml_text(splits: list[str]) -> str:
    lines = [
        *(f"{s}: images/{s}" for s in splits),
        "names:",
        *(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES)),
    ]
    return "\n".join(lines) + "\n"
