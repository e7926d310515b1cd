"""Reading the raw SimSurgSkill annotation files (one JSON per fps1 video).

Policy (docs/data.md): an entry that cannot become a box is dropped and counted under
a problem kind with a message naming file and key; a box partly outside the frame is
clipped to it and counted as a note; a frame enters the data set when at least one
entry names it (an entry with `"objects": false` marks a frame with no objects).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from surgtui.data import formats
from surgtui.data.classes import class_index
from surgtui.data.problems import Problems

REQUIRED_KEYS = ("obj_class", "coordinate", "frame_id")
RAW_CLASS_SPELLINGS = "needle, needle driver (or needle_driver)"
_CASE_RE = re.compile(r"caseid_(\d+)_fps1\.json")

# Problem kinds: entries (or whole files) that do not make it into the prepared set.
PROBLEM_KINDS: dict[str, str] = {
    "bad_file": "annotation file unreadable, not a JSON object, or not named caseid_NNNNNN_fps1.json",
    "missing_video": "no fps1 video next to the annotation file",
    "unreadable_video": "video (or some frames of it) cannot be decoded",
    "bad_entry": "an entry that is not a JSON object",
    "missing_key": f"an entry lacks one of {', '.join(REQUIRED_KEYS)}",
    "bad_frame_id": "frame_id is not a whole number >= 1",
    "unknown_class": f"obj_class is not one of {RAW_CLASS_SPELLINGS}",
    "bad_coordinate": 'coordinate is not valid JSON or lacks numeric "h", "w", "x", "y"',
    "empty_box": "w or h is zero or negative",
    "frame_beyond_video": "frame_id is larger than the number of frames in the video",
    "outside_frame": "the box lies entirely outside the frame",
}
# Note kinds: kept, but worth knowing.
NOTE_KINDS: dict[str, str] = {
    "clipped": "box partly outside the frame, clipped to it",
    "empty_frame": 'frame marked "objects": false (kept, with no boxes)',
    "unannotated_frames": "video frames that no entry names (not part of the data set)",
}


@dataclass(frozen=True)
class RawEntry:
    key: str
    frame_id: int
    label: int | None  # None: an `objects: false` marker
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


@dataclass(frozen=True)
class FrameBox:
    """A validated box, clipped to the frame: top-left corner and size in pixels."""

    label: int
    x: float
    y: float
    w: float
    h: float


def case_id_of(path: Path) -> int | None:
    match = _CASE_RE.fullmatch(path.name)
    return int(match.group(1)) if match else None


def raw_split_names(root: Path) -> list[str]:
    """The raw splits in `root` (folders holding annotations/bounding_box_gt/), sorted."""
    return sorted(d.name for d in root.iterdir() if (d / formats.RAW_ANNOTATIONS).is_dir())


def raw_annotation_files(root: Path, split: str) -> list[Path]:
    return sorted((root / split / formats.RAW_ANNOTATIONS).glob("*.json"))


def video_for(annotation: Path) -> Path:
    """<split>/annotations/bounding_box_gt/X.json → <split>/videos/fps1/X.mp4."""
    return annotation.parents[2] / formats.RAW_VIDEOS / f"{annotation.stem}.mp4"


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _entry_sort_key(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)


def parse_annotation_file(path: Path, problems: Problems) -> list[RawEntry] | None:
    """Entries of one annotation file that parse; others are counted in `problems`. None if the file is unusable."""
    if case_id_of(path) is None:
        problems.add("bad_file", f"{path.name}: name is not caseid_NNNNNN_fps1.json")
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problems.add("bad_file", f"{path.name}: not valid JSON ({e})")
        return None
    if not isinstance(doc, dict):
        problems.add("bad_file", f"{path.name}: top level is not a JSON object keyed by entry index")
        return None
    entries = []
    for key in sorted(doc, key=_entry_sort_key):
        entry = _parse_entry(doc[key], f'{path.name}: entry "{key}"', problems)
        if entry is not None:
            entries.append(RawEntry(key, *entry))
    return entries


def _parse_entry(raw: object, where: str, problems: Problems) -> tuple | None:
    if not isinstance(raw, dict):
        problems.add("bad_entry", f"{where}: not a JSON object")
        return None
    if "frame_id" not in raw:
        problems.add("missing_key", f"{where}: missing key 'frame_id'")
        return None
    frame_id = raw["frame_id"]
    if not (_is_number(frame_id) and frame_id >= 1 and float(frame_id).is_integer()):
        problems.add("bad_frame_id", f"{where}: frame_id: expected a whole number >= 1, got {frame_id!r}")
        return None
    if raw.get("objects") is False:
        return (int(frame_id), None)
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        problems.add("missing_key", f"{where}: missing key {missing[0]!r}")
        return None
    label = class_index(str(raw["obj_class"]))
    if label is None:
        problems.add(
            "unknown_class",
            f"{where}: obj_class: {raw['obj_class']!r} unknown; allowed: {RAW_CLASS_SPELLINGS}",
        )
        return None
    coordinate = raw["coordinate"]
    if isinstance(coordinate, str):  # the challenge stores it as JSON text inside the JSON
        try:
            coordinate = json.loads(coordinate)
        except json.JSONDecodeError:
            problems.add("bad_coordinate", f"{where}: coordinate: not valid JSON")
            return None
    if not isinstance(coordinate, dict) or not all(_is_number(coordinate.get(k)) for k in "hwxy"):
        problems.add(
            "bad_coordinate",
            f'{where}: coordinate: expected numbers "h", "w", "x", "y", got {raw["coordinate"]!r}',
        )
        return None
    x, y, w, h = (float(coordinate[k]) for k in "xywh")
    if w <= 0 or h <= 0:
        problems.add("empty_box", f"{where}: coordinate: w and h must be > 0, got w={w:g} h={h:g}")
        return None
    return (int(frame_id), label, x, y, w, h)


def frames_in_video(
    path: Path,
    entries: list[RawEntry],
    frame_count: int,
    width: int,
    height: int,
    problems: Problems,
    notes: Problems,
) -> dict[int, list[FrameBox]]:
    """frame_id → clipped boxes, for the frames of a `frame_count`-frame width×height video that entries name."""
    frames: dict[int, list[FrameBox]] = {}
    for e in entries:
        where = f'{path.name}: entry "{e.key}"'
        if e.frame_id > frame_count:
            problems.add(
                "frame_beyond_video",
                f"{where}: frame_id {e.frame_id} beyond the video's {frame_count} frames",
            )
            continue
        boxes = frames.setdefault(e.frame_id, [])
        if e.label is None:
            notes.add("empty_frame", f"{where}: frame {e.frame_id} has no objects")
            continue
        x1, y1 = max(0.0, e.x), max(0.0, e.y)
        x2, y2 = min(float(width), e.x + e.w), min(float(height), e.y + e.h)
        if x2 <= x1 or y2 <= y1:
            problems.add(
                "outside_frame",
                f"{where}: box x={e.x:g} y={e.y:g} w={e.w:g} h={e.h:g} "
                f"lies outside the {width}x{height} frame",
            )
            continue
        if (x1, y1, x2, y2) != (e.x, e.y, e.x + e.w, e.y + e.h):
            notes.add(
                "clipped",
                f"{where}: box x={e.x:g} y={e.y:g} w={e.w:g} h={e.h:g} clipped to the {width}x{height} frame",
            )
        boxes.append(FrameBox(e.label, x1, y1, x2 - x1, y2 - y1))
    unnamed = frame_count - len(frames)
    if unnamed > 0:
        notes.add(
            "unannotated_frames", f"{path.name}: {unnamed} of {frame_count} frames have no entry", unnamed
        )
    return frames
