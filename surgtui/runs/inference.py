"""The arguments of `predict` and `eval`, checked without torch.

The CLI checks them before it starts the engine (one line, exit 2); the engine modules check
them again when started by hand. A RUN argument resolves to the run's best weights.
"""

from __future__ import annotations

import math
from pathlib import Path

from surgtui.config.device import DEVICE_CHOICES, parse_device
from surgtui.config.schema import SYNTHETIC_SOURCE
from surgtui.data.media import source_kind
from surgtui.errors import UserError, one_line
from surgtui.runs.layout import BEST_WEIGHTS, LAST_WEIGHTS, RUN_JSON, WEIGHTS_DIR
from surgtui.runs.store import resolve_run

WEIGHT_SUFFIXES: tuple[str, ...] = (".pt", ".pth")
WEIGHT_NAMES: tuple[str, ...] = (BEST_WEIGHTS, LAST_WEIGHTS)  # a run's weights, in order of preference


def resolve_weights(ref: str, runs_dir: Path | None = None) -> Path:
    """A weights file, or a run (id, prefix, path, `latest`) -> its weights/best.pt, else weights/last.pt."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if path.suffix.lower() in WEIGHT_SUFFIXES:
        raise UserError(f"{ref}: no such weights file")
    if path.is_dir() and not (path / RUN_JSON).is_file():
        if not any((path / WEIGHTS_DIR / n).is_file() for n in WEIGHT_NAMES):
            raise UserError(
                f"{ref}: not a run directory (no {RUN_JSON}, no weights/best.pt) and not a weights file"
            )
        run_dir = path
    else:
        run_dir = resolve_run(ref, runs_dir)
    for name in WEIGHT_NAMES:
        if (run_dir / WEIGHTS_DIR / name).is_file():
            return run_dir / WEIGHTS_DIR / name
    raise UserError(
        f"run {run_dir.name}: no weights yet (neither weights/best.pt nor weights/last.pt in {run_dir})"
    )


def check_device(device: str) -> str:
    try:
        parse_device(device)
    except ValueError:
        raise UserError(f"--device {device!r}: expected {DEVICE_CHOICES}") from None
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
    _check_decodes(source, kind)
    return kind


def _check_decodes(source: Path, kind: str) -> None:
    """A single image or video that does not open fails here, before torch loads (the engine checks too)."""
    if kind == "image":
        from surgtui.data.formats import image_problem

        if (why := image_problem(source)) is not None:
            raise UserError(f"{source}: cannot read this image ({why})")
    elif kind == "video":
        from surgtui.data.video import DECODE_ERRORS, video_size

        try:
            video_size(source)
        except DECODE_ERRORS as exc:
            raise UserError(f"{source}: cannot open this video ({one_line(exc)})") from None


def is_checkpoint_file(path: Path) -> bool:
    """Whether `path` has torch.save's format (a zip archive): checked before the engine starts."""
    import zipfile

    return zipfile.is_zipfile(path)


def check_weights_file(path: Path) -> Path:
    if not is_checkpoint_file(path):
        raise UserError(f"{path}: not a surgtui checkpoint (not a file torch.save writes)")
    return path


def check_eval_args(data: str | None, batch: int | None, device: str, split: str | None = None) -> None:
    """What can be checked before the engine (and torch) starts: the options, the data set, the split."""
    if batch is not None and batch < 1:
        raise UserError(f"--batch {batch}: expected at least 1")
    check_device(device)
    if data is None:
        return
    if data == SYNTHETIC_SOURCE:
        if split is not None:
            from surgtui.data.cache import check_synthetic_split

            check_synthetic_split(split)
        return
    from surgtui.data.formats import source_path
    from surgtui.data.layouts import open_layout

    try:
        source = source_path(data)
    except UserError:
        raise UserError(
            f"{data}: no such data set; expected a COCO, YOLO or prepared SimSurgSkill folder, a data.yaml, "
            f"or {SYNTHETIC_SOURCE!r}"
        ) from None
    assert source is not None
    layout = open_layout(source, "auto", key="--data format")
    if layout.format == "simsurgskill":
        raise UserError(
            f"{layout.root}: raw SimSurgSkill videos; run `surgtui data prepare {layout.root} --out DIR` "
            "and evaluate on DIR"
        )
    if split is not None:
        layout.split(split, "--split")
