"""`surgtui predict` and `surgtui eval` on the CLI side: check the arguments, then start the engine module.

No torch here (the CLI never loads it): what can be checked without it (the weights file
exists, the run has weights, the source exists and has a known kind, the options are in
range) fails here with one line and exit 2; the engine process
(`python -m surgtui.engine.predict` / `surgtui.engine.eval_main`) checks the rest (a file
that is not a surgtui checkpoint, an image or video that does not decode) the same way.
The engine modules reuse these helpers, so they can also be started by hand.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

from surgtui.errors import UserError

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv")
WEIGHT_SUFFIXES: tuple[str, ...] = (".pt", ".pth")
WEIGHT_NAMES: tuple[str, ...] = ("best.pt", "last.pt")  # a run's weights, in order of preference
SYNTHETIC = "synthetic"
_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_weights(ref: str, runs_dir: Path | None = None) -> Path:
    """A weights file, or a run (id, prefix, path, `latest`) -> its weights/best.pt, else weights/last.pt."""
    from surgtui.runs.layout import RUN_JSON
    from surgtui.runs.store import resolve_run

    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if path.suffix.lower() in WEIGHT_SUFFIXES:
        raise UserError(f"{ref}: no such weights file")
    if path.is_dir() and not (path / RUN_JSON).is_file():
        if not any((path / "weights" / n).is_file() for n in WEIGHT_NAMES):
            raise UserError(
                f"{ref}: not a run directory (no {RUN_JSON}, no weights/best.pt) and not a weights file"
            )
        run_dir = path
    else:
        run_dir = resolve_run(ref, runs_dir)
    for name in WEIGHT_NAMES:
        if (run_dir / "weights" / name).is_file():
            return run_dir / "weights" / name
    raise UserError(
        f"run {run_dir.name}: no weights yet (neither weights/best.pt nor weights/last.pt in {run_dir})"
    )


def source_kind(source: Path) -> str:
    """`image`, `video` or `folder`; UserError (one line) for a missing, unreadable or unsupported source."""
    if not source.exists():
        raise UserError(f"{source}: no such file or directory")
    if source.is_dir():
        if not os.access(source, os.R_OK | os.X_OK):
            raise UserError(f"{source}: cannot read this directory (permission denied)")
        if not folder_images(source):
            raise UserError(
                f"{source}: no images in this folder (expected {', '.join(IMAGE_SUFFIXES)}; "
                "give a video as its own SOURCE)"
            )
        return "folder"
    suffix = source.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        kind = "image"
    elif suffix in VIDEO_SUFFIXES:
        kind = "video"
    else:
        raise UserError(
            f"{source}: unsupported file type {suffix or '(no extension)'!r}; expected an image "
            f"({', '.join(IMAGE_SUFFIXES)}), a video ({', '.join(VIDEO_SUFFIXES)}) or a folder of images"
        )
    if not os.access(source, os.R_OK):
        raise UserError(f"{source}: cannot read this file (permission denied)")
    if source.stat().st_size == 0:
        raise UserError(f"{source}: empty file")
    return kind


def folder_images(folder: Path) -> list[Path]:
    """The images directly inside `folder` (not its subfolders), sorted by name; hidden files skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def check_device(device: str) -> str:
    if not _DEVICE_RE.fullmatch(device):
        raise UserError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    return device


def check_predict_args(source: Path, out: Path, conf: float, iou: float, batch: int, device: str) -> str:
    """Everything about `predict`'s arguments that needs no torch; returns the source kind."""
    if not (0.0 <= conf <= 1.0) or math.isnan(conf):
        raise UserError(f"--conf {conf:g}: expected a score threshold in 0..1")
    if not (0.0 < iou <= 1.0):
        raise UserError(f"--iou {iou:g}: expected an NMS IoU threshold in (0, 1]")
    if batch < 1:
        raise UserError(f"--batch {batch}: expected at least 1")
    check_device(device)
    kind = source_kind(source)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    folder = source if kind == "folder" else source.parent
    if out.exists() and out.resolve() == folder.resolve():
        raise UserError(f"--out {out}: is where the source images are; drawn images would overwrite them")
    return kind


def check_eval_args(data: str | None, batch: int | None, device: str) -> None:
    if batch is not None and batch < 1:
        raise UserError(f"--batch {batch}: expected at least 1")
    check_device(device)
    if data is not None and data != SYNTHETIC and not Path(data).expanduser().is_dir():
        raise UserError(
            f"{data}: no such data set directory; expected a COCO, YOLO or prepared SimSurgSkill "
            f"directory, or {SYNTHETIC!r}"
        )


def run_engine(module: str, args: list[str]) -> int:
    """Run `python -m surgtui.engine.<module> ARGS` in the foreground, output inherited; its exit code."""
    return subprocess.call([sys.executable, "-m", f"surgtui.engine.{module}", *args])


def predict_command(
    weights: str,
    source: Path,
    out: Path,
    conf: float,
    iou: float,
    device: str,
    batch: int,
    no_images: bool,
    runs_dir: Path | None,
) -> int:
    check_predict_args(source, out, conf, iou, batch, device)
    path = resolve_weights(weights, runs_dir)
    args = [
        str(path),
        str(source),
        "--out",
        str(out),
        "--conf",
        repr(conf),
        "--iou",
        repr(iou),
        "--device",
        device,
        "--batch",
        str(batch),
    ]
    return run_engine("predict", args + (["--no-images"] if no_images else []))


def eval_command(
    weights: str,
    data: str | None,
    split: str | None,
    json_: bool,
    device: str,
    batch: int | None,
    workers: int | None,
    runs_dir: Path | None,
) -> int:
    check_eval_args(data, batch, device)
    path = resolve_weights(weights, runs_dir)
    args = [str(path)] + ([data] if data is not None else []) + ["--device", device]
    args += (["--split", split] if split else []) + (["--json"] if json_ else [])
    args += (["--batch", str(batch)] if batch else []) + (
        ["--workers", str(workers)] if workers is not None else []
    )
    return run_engine("eval_main", args)
