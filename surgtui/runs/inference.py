"""The arguments of `predict` and `eval`, checked without torch.

The CLI checks them before it starts the engine (one line, exit 2); the engine modules check
them again when started by hand. A RUN argument resolves to the run's best weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from surgtui.config.device import DEVICE_CHOICES, parse_device
from surgtui.config.schema import SYNTHETIC_SOURCE
from surgtui.data.media import LABELS_DIR, glob_root, label_name, relative_name, source_images, source_kind
from surgtui.errors import UserError, one_line
from surgtui.runs.exports import (
    EXPORT_SUFFIXES,
    check_exported_file,
    check_onnx_packages,
    exported_format,
)
from surgtui.runs.layout import BEST_WEIGHTS, LAST_WEIGHTS, RUN_JSON, WEIGHTS_DIR
from surgtui.runs.store import resolve_run

WEIGHT_SUFFIXES: tuple[str, ...] = (".pt", ".pth")
WEIGHT_NAMES: tuple[str, ...] = (BEST_WEIGHTS, LAST_WEIGHTS)  # a run's weights, in order of preference


def resolve_weights(ref: str, runs_dir: Path | None = None) -> Path:
    """A weights file, or a run (id, prefix, path, `latest`) -> its weights/best.pt, else weights/last.pt."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if path.suffix.lower() in (*WEIGHT_SUFFIXES, *EXPORT_SUFFIXES.values()):
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


@dataclass(frozen=True)
class PredictOptions:
    """predict's frame sampling (--every, --fps), folder search (--recursive), YOLO labels (--save-txt/-conf)."""

    every: int | None = None
    fps: float | None = None
    recursive: bool = False
    save_txt: bool = False
    save_conf: bool = False

    def engine_args(self) -> list[str]:
        """The same options for `python -m surgtui.engine.predict`."""
        args = ["--every", str(self.every)] if self.every is not None else []
        args += ["--fps", repr(self.fps)] if self.fps is not None else []
        flags = {"--recursive": self.recursive, "--save-txt": self.save_txt, "--save-conf": self.save_conf}
        return args + [flag for flag, on in flags.items() if on]

    def info(self) -> dict:
        """The options given, for predictions.json's `info`."""
        given = {"every": self.every, "sample_fps": self.fps, "recursive": self.recursive}
        given |= {"save_txt": self.save_txt, "save_conf": self.save_conf}
        return {k: v for k, v in given.items() if v not in (None, False)}


def check_predict_options(opts: PredictOptions) -> None:
    """The options alone, before the source is looked at."""
    if opts.every is not None and opts.fps is not None:
        raise UserError("--every and --fps: give one of them (both choose which frames of a video to read)")
    if opts.every is not None and opts.every < 1:
        raise UserError(f"--every {opts.every}: expected at least 1 (1 keeps every frame)")
    if opts.fps is not None and not (0 < opts.fps < math.inf):
        raise UserError(f"--fps {opts.fps:g}: expected frames per second above 0")
    if opts.save_conf and not opts.save_txt:
        raise UserError("--save-conf: appends the score to --save-txt's label lines; give --save-txt too")


def check_predict_source(source: Path, kind: str, out: Path, opts: PredictOptions) -> None:
    """The options against the source: sampling needs a video, --recursive a folder; outputs stay apart."""
    for flag, given in (("--every", opts.every is not None), ("--fps", opts.fps is not None)):
        if given and kind != "video":
            raise UserError(f"{flag}: samples a video's frames, and {source} is {_kind_phrase(kind)}")
    if opts.recursive and kind != "folder":
        why = (
            "the pattern's ** searches subfolders" if kind == "glob" else f"{source} is {_kind_phrase(kind)}"
        )
        raise UserError(f"--recursive: searches a folder's subfolders, and {why}")
    if kind not in ("folder", "glob") or not (opts.recursive or opts.save_txt or kind == "glob"):
        return  # nothing below applies: no need to list the images again
    paths, root = source_images(source, kind, opts.recursive)
    where = out.resolve()
    if opts.recursive and root.resolve() in where.parents:
        raise UserError(
            f"--out {out}: is inside {source}; --recursive would read its drawn images as sources"
        )
    if kind == "glob":  # an earlier run's drawn copies, matched again, would be drawn into DIR/DIR/...
        inside = [p for p in paths if where in p.resolve().parents]
        names = {relative_name(p, root) for p in paths} - {relative_name(p, root) for p in inside}
        if copy := next((p for p in inside if str(p.resolve().relative_to(where)) in names), None):
            raise UserError(
                f"--out {out}: holds {copy}, a drawn copy {source} matches too; choose a DIR it does not match"
            )
    if opts.save_txt:
        seen: dict[str, Path] = {}
        for path in paths:
            name = label_name(relative_name(path, root))
            if name in seen:
                raise UserError(
                    f"--save-txt: {seen[name]} and {path} would share {LABELS_DIR}/{name} (named by the stem)"
                )
            seen[name] = path


def _kind_phrase(kind: str) -> str:
    return {"image": "an image", "video": "a video", "folder": "a folder", "glob": "a glob pattern"}[kind]


def check_predict_args(
    source: Path,
    out: Path,
    conf: float,
    iou: float,
    batch: int,
    device: str,
    opts: PredictOptions = PredictOptions(),
) -> str:
    """Everything about `predict`'s arguments that needs no torch; returns the source kind."""
    if not (0.0 <= conf <= 1.0) or math.isnan(conf):
        raise UserError(f"--conf {conf:g}: expected a score threshold in 0..1")
    if not (0.0 < iou <= 1.0):
        raise UserError(f"--iou {iou:g}: expected an NMS IoU threshold in (0, 1]")
    if batch < 1:
        raise UserError(f"--batch {batch}: expected at least 1")
    check_device(device)
    check_predict_options(opts)
    kind = source_kind(source, opts.recursive)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    folder = {"folder": source, "glob": glob_root(str(source))}.get(kind, source.parent)
    if out.exists() and out.resolve() == folder.resolve():
        raise UserError(f"--out {out}: is where the source images are; drawn images would overwrite them")
    check_predict_source(source, kind, out, opts)
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


def check_model_file(path: Path) -> Path:
    """predict's model: a checkpoint, or a file export-model wrote (its sidecar beside it; for ONNX the extra)."""
    fmt = exported_format(path)
    if fmt is None:
        return check_weights_file(path)
    if fmt == "onnx":
        check_onnx_packages("an ONNX model")
    return check_exported_file(path)


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
