"""COCO detection files as tools write them: where the split files are, where their images are, reading them.

Split files, by the name the split gets:
  annotations/<split>.json               this project's prepare and synth
  annotations/instances_<split>.json     COCO itself (<split> may be `train2017`), Ultralytics' COCO copies
  <split>/_annotations.coco.json         Roboflow exports (images beside the file)
An image's file is `file_name` under the first of `images/<split>/`, `<split>/`, `images/`, the data set's
folder and the annotation file's folder that holds the split's first image (absolute names are used as they are).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from surgtui.data.classes import ClassMap
from surgtui.data.formats import ImageRecord, clipped_xyxy, load_coco, make_record
from surgtui.data.problems import Problems
from surgtui.errors import UserError

ROBOFLOW_FILE = "_annotations.coco.json"
INSTANCES_PREFIX = "instances_"
OTHER_TASKS = ("captions_", "person_keypoints_", "panoptic_", "stuff_")  # COCO files that hold no boxes


@dataclass(frozen=True)
class CocoSplit:
    annotations: Path
    image_dirs: tuple[Path, ...]  # candidates for the folder `file_name` is relative to, in order


def find_splits(root: Path) -> dict[str, CocoSplit]:
    """The COCO splits in `root` by name; `<split>.json` wins over `instances_<split>.json` of the same name."""
    found: dict[str, CocoSplit] = {}
    ann_dir = root / "annotations"
    files = sorted(ann_dir.glob("*.json")) if ann_dir.is_dir() else []
    for path in sorted(files, key=lambda p: p.name.startswith(INSTANCES_PREFIX)):
        if path.name.startswith(OTHER_TASKS):
            continue
        name = path.stem.removeprefix(INSTANCES_PREFIX)
        found.setdefault(
            name, CocoSplit(path, (root / "images" / name, root / name, root / "images", root, ann_dir))
        )
    for path in sorted(root.glob(f"*/{ROBOFLOW_FILE}")):
        found.setdefault(path.parent.name, CocoSplit(path, (path.parent,)))
    return found


def _image_dir(split: CocoSplit, first_file: str | None) -> Path:
    """The candidate folder that holds the split's first image (the first candidate if none does)."""
    if first_file is not None:
        for folder in split.image_dirs:
            if (folder / first_file).is_file():
                return folder
    return split.image_dirs[0]


def read_coco(
    split: CocoSplit, classes: ClassMap, problems: Problems | None = None, notes: Problems | None = None
) -> list[ImageRecord]:
    """Records of one COCO file, sorted by file name; boxes of dropped classes are counted in `notes`."""
    path = split.annotations
    doc = load_coco(path)
    images = sorted(doc["images"], key=lambda img: str(img.get("file_name", "")))
    for img in images:
        if not isinstance(img.get("file_name"), str) or not all(k in img for k in ("id", "width", "height")):
            raise UserError(f"{path}: image {img.get('id')!r}: expected id, file_name, width and height")
    sizes = {img["id"]: (img["width"], img["height"]) for img in images}
    names = {cat.get("id"): str(cat.get("name", "")) for cat in doc["categories"]}
    labels: dict[object, int | None] = {}
    boxes: dict[object, list[tuple[float, ...]]] = {i: [] for i in sizes}
    classes_of: dict[object, list[int]] = {i: [] for i in sizes}
    for ann in doc["annotations"]:
        cat, image_id = ann.get("category_id"), ann.get("image_id")
        if image_id not in sizes or cat not in names:
            raise UserError(f"{path}: annotation {ann.get('id')} names an unknown image_id or category_id")
        if cat not in labels:  # only categories in use must be ours: exports list unused parent categories
            labels[cat] = classes.label(names[cat], f"{path}: category {cat}")
        if labels[cat] is None:
            if notes is not None:
                notes.add("dropped_class", f"{path}: a {names[cat]!r} box (the class map drops it)")
            continue
        box = clipped_xyxy(
            tuple(ann["bbox"]), *sizes[image_id], f"{path.name}: annotation {ann.get('id')}", problems
        )
        if box is not None:
            boxes[image_id].append(box)
            classes_of[image_id].append(labels[cat])
    folder = _image_dir(split, images[0]["file_name"] if images else None)
    return [
        make_record(
            img["id"],
            folder / img["file_name"],
            img["width"],
            img["height"],
            boxes[img["id"]],
            classes_of[img["id"]],
        )
        for img in images
    ]
