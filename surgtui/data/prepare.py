"""Raw SimSurgSkill (fps1 MP4 + JSON) → COCO: images/<split>/*.jpg + annotations/<split>.json.

Frame i of a video (0-based, decode order) is SimSurgSkill's frame_id i + 1 and becomes
images/<split>/caseid_NNNNNN_frame_KKKKK.jpg with KKKKK = frame_id. Each finished video
leaves a small record under <out>/.prepare/<split>/; a re-run skips videos whose record
matches the annotation file and whose JPEGs all exist. The split's COCO file is written
last, atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from surgtui.config.schema import CLASS_NAMES
from surgtui.data import formats, simsurgskill, video
from surgtui.data.media import save_jpeg
from surgtui.data.problems import Problems
from surgtui.errors import UserError
from surgtui.fileio import write_text_atomic

Progress = Callable[[int, int, str], None]  # (videos done, videos total, what is being done)
RECORD_VERSION = 1
PREPARE_RECORDS = ".prepare"  # per-video resume records under the output folder


@dataclass
class SplitSummary:
    videos: int = 0
    resumed: int = 0
    images: int = 0
    boxes: Counter = field(default_factory=Counter)  # class name → count


@dataclass
class PrepareReport:
    """What `prepare` wrote, what it dropped (`problems`) and what it kept but changed (`notes`)."""

    splits: dict[str, SplitSummary] = field(default_factory=dict)
    problems: Problems = field(default_factory=Problems)
    notes: Problems = field(default_factory=Problems)

    def summary_lines(self) -> list[str]:
        lines = []
        for name, s in self.splits.items():
            boxes = ", ".join(f"{c} {s.boxes[c]}" for c in CLASS_NAMES)
            lines.append(
                f"{name}: {s.videos} videos ({s.resumed} already prepared), {s.images} images, boxes: {boxes}"
            )
        if self.problems.total():
            lines += [
                f"dropped ({self.problems.total()}):",
                *(f"  {x}" for x in self.problems.lines(simsurgskill.PROBLEM_KINDS)),
            ]
        if self.notes.total():
            lines += ["notes:", *(f"  {x}" for x in self.notes.lines(simsurgskill.NOTE_KINDS))]
        return lines

    def to_dict(self) -> dict:
        return {
            "splits": {
                k: {"videos": s.videos, "resumed": s.resumed, "images": s.images, "boxes": dict(s.boxes)}
                for k, s in self.splits.items()
            },
            "problems": self.problems.to_dict(),
            "notes": self.notes.to_dict(),
        }


@dataclass
class _Video:
    case_id: int
    width: int
    height: int
    frames: dict[int, list[simsurgskill.FrameBox]]


def prepare(
    raw_dir: Path, out_dir: Path, splits: list[str] | None = None, progress: Progress | None = None
) -> PrepareReport:
    """Prepare `splits` (default: every split found) of the raw data set in `raw_dir` into `out_dir`."""
    if not raw_dir.is_dir():
        raise UserError(f"{raw_dir}: no such directory")
    found = simsurgskill.raw_split_names(raw_dir)
    if not found:
        raise UserError(
            f"{raw_dir}: not a raw SimSurgSkill directory; expected <split>/{formats.RAW_ANNOTATIONS}/"
        )
    for split in splits or []:
        if split not in found:
            raise UserError(
                f"{raw_dir / split / formats.RAW_ANNOTATIONS}: split {split!r} not found; found: {', '.join(found)}"
            )
    jobs = [
        (split, path)
        for split in splits or found
        for path in simsurgskill.raw_annotation_files(raw_dir, split)
    ]
    report = PrepareReport(splits={split: SplitSummary() for split in splits or found})
    prepared: dict[str, list[_Video]] = {split: [] for split in report.splits}
    for done, (split, path) in enumerate(jobs):
        if progress:
            progress(done, len(jobs), f"{split}/{path.name}")
        result = _prepare_video(path, out_dir, split, report)
        if result is not None:
            prepared[split].append(result)
    if progress:
        progress(len(jobs), len(jobs), "writing COCO files")
    for split, videos in prepared.items():
        _write_coco(out_dir, split, videos, report.splits[split])
    return report


def _record_path(out_dir: Path, split: str, annotation: Path) -> Path:
    return out_dir / PREPARE_RECORDS / split / f"{annotation.stem}.json"


def _prepare_video(annotation: Path, out_dir: Path, split: str, report: PrepareReport) -> _Video | None:
    entries = simsurgskill.parse_annotation_file(annotation, report.problems)
    if entries is None:
        return None
    video_path = simsurgskill.video_for(annotation)
    if not video_path.is_file():
        report.problems.add(
            "missing_video", f"{annotation.name}: no video {video_path.name}; {len(entries)} entries dropped"
        )
        return None
    case_id = simsurgskill.case_id_of(annotation)
    image_dir = out_dir / "images" / split
    digest = hashlib.sha256(annotation.read_bytes() + str(video_path.stat().st_size).encode()).hexdigest()
    record_path = _record_path(out_dir, split, annotation)
    record = _read_record(record_path, digest)
    summary = report.splits[split]
    summary.videos += 1
    if record is not None and all(
        (image_dir / formats.frame_file_name(case_id, f)).is_file() for f in record["written"]
    ):
        summary.resumed += 1
        width, height, frame_count = record["width"], record["height"], record["frame_count"]
        frames = simsurgskill.frames_in_video(
            annotation, entries, frame_count, width, height, report.problems, report.notes
        )
        return _Video(case_id, width, height, {f: frames[f] for f in record["written"]})
    try:
        width, height = video.video_size(video_path)
        frame_count = video.count_frames(video_path)
        frames = simsurgskill.frames_in_video(
            annotation, entries, frame_count, width, height, report.problems, report.notes
        )
        image_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for frame_id, image in enumerate(video.decode_frames(video_path), start=1):
            if frame_id in frames:
                save_jpeg(image_dir / formats.frame_file_name(case_id, frame_id), image)
                written.append(frame_id)
    except video.DECODE_ERRORS as e:
        report.problems.add(
            "unreadable_video", f"{video_path.name}: cannot decode ({e}); {len(entries)} entries dropped"
        )
        return None
    lost = sorted(set(frames) - set(written))
    if lost:
        boxes = sum(len(frames[f]) for f in lost)
        report.problems.add(
            "unreadable_video",
            f"{video_path.name}: frames {lost[0]}..{lost[-1]} did not decode; {boxes} boxes dropped",
            boxes,
        )
    record = {
        "version": RECORD_VERSION,
        "digest": digest,
        "width": width,
        "height": height,
        "frame_count": frame_count,
        "written": written,
    }
    write_text_atomic(record_path, json.dumps(record), parents=True)
    return _Video(case_id, width, height, {f: frames[f] for f in written})


def _read_record(path: Path, digest: str) -> dict | None:
    """The record of an earlier run for this exact annotation file, if any."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    ok = (
        isinstance(record, dict)
        and record.get("version") == RECORD_VERSION
        and record.get("digest") == digest
    )
    return record if ok else None


def _write_coco(out_dir: Path, split: str, videos: list[_Video], summary: SplitSummary) -> None:
    images, annotations = [], []
    for v in sorted(videos, key=lambda v: v.case_id):
        for frame_id in sorted(v.frames):
            image_id = len(images) + 1
            images.append(
                {
                    "id": image_id,
                    "file_name": formats.frame_file_name(v.case_id, frame_id),
                    "width": v.width,
                    "height": v.height,
                    "case_id": v.case_id,
                    "frame_id": frame_id,
                }
            )
            for b in v.frames[frame_id]:
                annotations.append(
                    formats.coco_annotation(len(annotations) + 1, image_id, b.label, b.x, b.y, b.w, b.h)
                )
                summary.boxes[CLASS_NAMES[b.label]] += 1
    summary.images = len(images)
    (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        out_dir / "annotations" / f"{split}.json",
        json.dumps(formats.coco_dict(images, annotations)),
        parents=True,
    )
