"""`surgtui data check`: counts, box sizes and problems of a data set in any supported layout, and a preview grid."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from surgtui.config.schema import CLASS_NAMES
from surgtui.data import formats, simsurgskill, video
from surgtui.data.layouts import Layout, open_layout
from surgtui.data.problems import Problems
from surgtui.errors import UserError
from surgtui.fileio import atomic_write

SIZE_BUCKETS = ("small", "medium", "large")  # COCO: area < 32², < 96², larger


def size_bucket(area: float) -> str:
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


@dataclass
class SplitStats:
    images: int = 0
    images_without_boxes: int = 0
    boxes: Counter = field(default_factory=Counter)  # class name → count
    sizes: dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in CLASS_NAMES})

    def add_image(self, boxes_xywh: list[tuple[int, float, float]]) -> None:
        """Count one image given (label, w, h) of each of its boxes."""
        self.images += 1
        self.images_without_boxes += not boxes_xywh
        for label, w, h in boxes_xywh:
            self.boxes[CLASS_NAMES[label]] += 1
            self.sizes[CLASS_NAMES[label]][size_bucket(w * h)] += 1


@dataclass
class CheckReport:
    root: Path
    format: str
    kind: str = ""
    why: str = ""
    splits: dict[str, SplitStats] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # split → its files
    problems: Problems = field(default_factory=Problems)
    notes: Problems = field(default_factory=Problems)

    def lines(self) -> list[str]:
        out = [
            f"{self.root}: {self.kind or self.format} ({self.format}), splits: {', '.join(self.splits) or 'none'}",
            f"  read as: {self.why}" if self.why else "",
        ]
        out = [x for x in out if x]
        for name, s in self.splits.items():
            out.append(
                f"{name}: {s.images} images ({s.images_without_boxes} without boxes) from {self.where[name]}"
            )
            for c in CLASS_NAMES:
                sizes = " ".join(f"{b} {s.sizes[c][b]}" for b in SIZE_BUCKETS)
                out.append(f"  {c}: {s.boxes[c]} boxes ({sizes})")
        out.append(f"problems: {self.problems.total() or 'none'}")
        out += [f"  {x}" for x in self.problems.lines()]
        if self.notes.total():
            out += ["notes:", *(f"  {x}" for x in self.notes.lines())]
        return out

    def to_dict(self) -> dict:
        splits = {
            k: {
                "images": s.images,
                "images_without_boxes": s.images_without_boxes,
                "boxes": dict(s.boxes),
                "sizes": {c: dict(v) for c, v in s.sizes.items()},
            }
            for k, s in self.splits.items()
        }
        return {
            "root": str(self.root),
            "format": self.format,
            "layout": self.kind,
            "why": self.why,
            "files": self.where,
            "splits": splits,
            "problems": self.problems.to_dict(),
            "notes": self.notes.to_dict(),
        }


def check(root: Path, fmt: str = "auto", classes_map: Mapping[str, str] | None = None) -> CheckReport:
    """Inspect the data set in `root` (a folder or a data.yaml) read as `fmt`; UserError (one line naming the
    file) if it cannot be read at all."""
    layout = open_layout(root, fmt, classes_map, key="--format")
    report = CheckReport(root, layout.format, layout.kind, layout.why)
    for name, split in layout.splits.items():
        stats = report.splits.setdefault(name, SplitStats())
        report.where[name] = split.where()
        if split.raw is not None:
            _check_raw_split(layout.root, name, stats, report)
            continue
        if (missing := split.missing()) is not None:
            report.problems.add("missing_split", missing)
            continue
        records = layout.read(split, report.problems, report.notes)
        for r in records:
            if not r.path.is_file():
                report.problems.add("missing_image", f"{r.path}: image file missing")
            elif (why := formats.image_problem(r.path)) is not None:  # training would fail on it
                report.problems.add("unreadable_image", f"{r.path}: not a readable image ({why})")
            stats.add_image(
                [(int(lab), x2 - x1, y2 - y1) for lab, (x1, y1, x2, y2) in zip(r.labels, r.boxes)]
            )
        if not records or not any(len(r.labels) for r in records):
            report.problems.add("empty_annotations", f"{split.where()}: split {name!r} has no boxes")
    return report


def _raw_frames(root: Path, split: str, report: CheckReport) -> Iterator[tuple[Path, int, dict]]:
    """(video, case id, frame_id → boxes) of each readable video of a raw split; problems go to `report`."""
    for path in simsurgskill.raw_annotation_files(root, split):
        entries = simsurgskill.parse_annotation_file(path, report.problems)
        if entries is None:
            continue
        video_path = simsurgskill.video_for(path)
        if not video_path.is_file():
            report.problems.add("missing_video", f"{path.name}: no video {video_path.name}")
            continue
        try:
            width, height = video.video_size(video_path)
            frame_count = video.count_frames(video_path)
        except video.DECODE_ERRORS as e:
            report.problems.add("unreadable_video", f"{video_path.name}: cannot read ({e})")
            continue
        frames = simsurgskill.frames_in_video(
            path, entries, frame_count, width, height, report.problems, report.notes
        )
        yield video_path, simsurgskill.case_id_of(path), frames


def _check_raw_split(root: Path, split: str, stats: SplitStats, report: CheckReport) -> None:
    for _, _, frames in _raw_frames(root, split, report):
        for boxes in frames.values():
            stats.add_image([(b.label, b.w, b.h) for b in boxes])
    if not stats.boxes:
        report.problems.add("empty_annotations", f"{root / split}: split has no boxes")


# ---------------------------------------------------------------- preview


def _preview_items(
    layout: Layout, n: int
) -> list[tuple[np.ndarray, list[tuple[int, float, float, float, float]], str]]:
    """Up to `n` (image, [(label, x1, y1, x2, y2)], title) spread evenly over the data set."""
    from PIL import Image

    if layout.format == "simsurgskill":
        throwaway = CheckReport(layout.root, layout.format)
        frames = [
            (v, fid, boxes)
            for split in layout.splits
            for v, _, fr in _raw_frames(layout.root, split, throwaway)
            for fid, boxes in sorted(fr.items())
        ]
        picks = [frames[i] for i in _spread(len(frames), n)]
        items = []
        for v, fid, boxes in picks:
            image = next(img for i, img in enumerate(video.decode_frames(v), start=1) if i == fid)
            items.append(
                (image, [(b.label, b.x, b.y, b.x + b.w, b.y + b.h) for b in boxes], f"{v.stem} #{fid}")
            )
        return items
    records = [r for split in layout.splits.values() for r in layout.read(split)]
    picks = [records[i] for i in _spread(len(records), n)]
    return [
        (
            np.asarray(Image.open(r.path).convert("RGB")),
            [(int(lab), *box) for lab, box in zip(r.labels, r.boxes)],
            r.path.name,
        )
        for r in picks
        if r.path.is_file() and formats.image_problem(r.path) is None
    ]


def _spread(total: int, n: int) -> list[int]:
    return sorted({round(i * (total - 1) / max(n - 1, 1)) for i in range(min(n, total))}) if total else []


def preview(
    root: Path,
    out_png: Path,
    n: int = 8,
    tile_width: int = 480,
    fmt: str = "auto",
    classes_map: Mapping[str, str] | None = None,
) -> Path:
    """Draw `n` frames with labelled boxes into one PNG grid at `out_png`; return its path."""
    from PIL import Image

    from surgtui.data.draw import draw_boxes, draw_caption

    items = _preview_items(open_layout(root, fmt, classes_map, key="--format"), n)
    if not items:
        raise UserError(f"{root}: no images to preview")
    cols = math.ceil(math.sqrt(len(items)))
    tiles = []
    for image, boxes, title in items:
        tile = Image.fromarray(image)
        scale = tile_width / tile.width
        tile = tile.resize((tile_width, round(tile.height * scale)), Image.BILINEAR)
        draw_boxes(
            tile,
            (
                (x1 * scale, y1 * scale, x2 * scale, y2 * scale, label, None)
                for label, x1, y1, x2, y2 in boxes
            ),
        )
        draw_caption(tile, title)
        tiles.append(tile)
    tile_height = max(t.height for t in tiles)
    grid = Image.new("RGB", (cols * tile_width, math.ceil(len(tiles) / cols) * tile_height))
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % cols) * tile_width, (i // cols) * tile_height))
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_png, binary=True, durable=False) as fh:  # a preview: remade by the next check
        grid.save(fh, format="PNG")
    return out_png
