"""Write synthetic data sets: the raw SimSurgSkill layout (MP4 + JSON), COCO, or YOLO.

Everything is generated under a hidden scratch directory inside `out` and moved into
place at the end, annotation files last, so a crash leaves no half-written split.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surgtui.data import formats
from surgtui.data.classes import class_index
from surgtui.data.media import save_jpeg
from surgtui.data.synth import Box, video_frames
from surgtui.data.video import encode_video
from surgtui.errors import UserError
from surgtui.fileio import scratch_dir, write_text_atomic

LAYOUTS: tuple[str, ...] = ("simsurgskill", "coco", "yolo")
Progress = Callable[[int, int], None]  # (frames done, frames total)


@dataclass(frozen=True)
class SynthVideo:
    """One generated video: `index` feeds the generator, `case_id` names the files."""

    split: str
    index: int
    case_id: int
    frames: int


def plan_videos(splits: list[str], videos: int, frames: int) -> list[SynthVideo]:
    """`videos` videos of `frames` frames per split; case ids 1, 2, ... over the splits in the order given."""
    return [
        SynthVideo(split, i, n * videos + i + 1, frames)
        for n, split in enumerate(splits)
        for i in range(videos)
    ]


def plan_frames(counts: dict[str, int], frames_per_video: int) -> list[SynthVideo]:
    """Exactly counts[split] frames per split, cut into videos of at most `frames_per_video` frames."""
    plan: list[SynthVideo] = []
    for split, total in counts.items():
        for i, start in enumerate(range(0, total, frames_per_video)):
            plan.append(SynthVideo(split, i, len(plan) + 1, min(frames_per_video, total - start)))
    return plan


def _targets(layout: str, split: str) -> list[str]:
    """Paths (relative to out) that one split creates, in the order they are moved into place."""
    if layout == "simsurgskill":
        return [split]
    if layout == "coco":
        return [f"images/{split}", f"annotations/{split}.json"]
    return [f"images/{split}", f"labels/{split}"]


def write_synthetic(
    out: Path,
    layout: str,
    plan: list[SynthVideo],
    width: int,
    height: int,
    seed: int,
    progress: Progress | None = None,
) -> None:
    """Generate the videos of `plan` into `out` in `layout`."""
    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout!r} unknown; allowed: {', '.join(LAYOUTS)}")
    if layout == "simsurgskill" and (width % 2 or height % 2):
        raise UserError(
            f"--size {width}x{height}: the simsurgskill layout needs an even width and height (yuv420p)"
        )
    splits = list(dict.fromkeys(v.split for v in plan))
    for split in splits:
        for target in _targets(layout, split):
            if (out / target).exists():
                raise UserError(f"{out / target}: already exists; choose another --out or remove it")
    total, done = sum(v.frames for v in plan), 0
    with scratch_dir(out) as tmp:
        for split in splits:
            labelled: list[tuple[str, list[Box]]] = []
            for video in (v for v in plan if v.split == split):
                rendered = video_frames(seed, split, video.index, video.frames, width, height)
                if layout == "simsurgskill":
                    _write_raw_video(tmp, video, rendered)
                else:
                    labelled += _write_images(tmp, layout, video, rendered, width, height)
                done += video.frames
                if progress:
                    progress(done, total)
            if layout == "coco":
                _write_coco_json(tmp, split, labelled, width, height)
        for split in splits:
            for target in _targets(layout, split):
                (out / target).parent.mkdir(parents=True, exist_ok=True)
                os.rename(tmp / target, out / target)
    if layout == "yolo":
        splits_here = sorted(d.name for d in (out / "images").iterdir() if d.is_dir())
        write_text_atomic(out / "data.yaml", formats.yolo_yaml_text(splits_here), parents=True)


def _raw_entry(case_id: int, frame_id: int, box: Box | None) -> dict:
    """One SimSurgSkill annotation entry; a frame with no objects gets one entry with objects = false."""
    coordinate = (
        json.dumps({"h": box.h, "w": box.w, "x": box.x, "y": box.y}, separators=(",", ":")) if box else ""
    )
    return {
        "obj_class": box.cls.replace("_", " ") if box else "",
        "label_type": "box",
        "coordinate": coordinate,
        "orientation": box.orientation if box else "",
        "frame_id": float(frame_id),
        "objects": box is not None,
        "case_id": case_id,
        "fps": 1,
    }


def _write_raw_video(tmp: Path, video: SynthVideo, rendered: Iterator[tuple[np.ndarray, list[Box]]]) -> None:
    split_dir = tmp / video.split
    (split_dir / formats.RAW_VIDEOS).mkdir(parents=True, exist_ok=True)
    (split_dir / formats.RAW_ANNOTATIONS).mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []

    def images_noting_boxes() -> Iterator[np.ndarray]:
        for frame_id, (image, boxes) in enumerate(rendered, start=1):
            entries.extend(_raw_entry(video.case_id, frame_id, b) for b in boxes or [None])
            yield image

    encode_video(
        split_dir / formats.RAW_VIDEOS / formats.video_file_name(video.case_id), images_noting_boxes()
    )
    doc = {str(i): entry for i, entry in enumerate(entries)}
    write_text_atomic(
        split_dir / formats.RAW_ANNOTATIONS / formats.annotation_file_name(video.case_id),
        json.dumps(doc, indent=1),
        parents=True,
    )


def _write_images(
    tmp: Path,
    layout: str,
    video: SynthVideo,
    rendered: Iterator[tuple[np.ndarray, list[Box]]],
    width: int,
    height: int,
) -> list[tuple[str, list[Box]]]:
    """Save the JPEGs (and YOLO label files); return (file name, boxes) per frame for the COCO file."""
    image_dir, label_dir = tmp / "images" / video.split, tmp / "labels" / video.split
    image_dir.mkdir(parents=True, exist_ok=True)
    labelled = []
    for frame_id, (image, boxes) in enumerate(rendered, start=1):
        name = formats.frame_file_name(video.case_id, frame_id)
        save_jpeg(image_dir / name, image)
        labelled.append((name, boxes))
        if layout == "yolo":
            label_dir.mkdir(parents=True, exist_ok=True)
            lines = [formats.yolo_line(class_index(b.cls), b.x, b.y, b.w, b.h, width, height) for b in boxes]
            write_text_atomic(
                label_dir / f"{Path(name).stem}.txt",
                "".join(f"{line}\n" for line in lines),
                durable=False,
                parents=True,
            )
    return labelled


def _write_coco_json(
    tmp: Path, split: str, labelled: list[tuple[str, list[Box]]], width: int, height: int
) -> None:
    images, annotations = [], []
    for image_id, (name, boxes) in enumerate(labelled, start=1):
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for b in boxes:
            annotations.append(
                formats.coco_annotation(
                    len(annotations) + 1, image_id, class_index(b.cls), b.x, b.y, b.w, b.h
                )
            )
    write_text_atomic(
        tmp / "annotations" / f"{split}.json",
        json.dumps(formats.coco_dict(images, annotations)),
        parents=True,
    )
