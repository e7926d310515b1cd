"""Exported models (`surgtui export-model`) without torch: formats, file names, the sidecar's name, the checks.

export-model writes `best.onnx` / `best.torchscript` beside the weights (or --out), each with a JSON
sidecar `<file>.json` (classes, input, letterbox, thresholds); predict accepts such a file. The CLI
checks what it can here before it starts the engine; the engine modules check again when started by hand.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

from surgtui.errors import UserError

EXPORT_SUFFIXES: dict[str, str] = {"onnx": ".onnx", "torchscript": ".torchscript"}
EXPORT_FORMATS: tuple[str, ...] = tuple(EXPORT_SUFFIXES)
TORCHSCRIPT_SUFFIXES: tuple[str, ...] = (".torchscript", ".pt", ".pth")  # what --out may end with
ONNX_PACKAGES: tuple[str, ...] = ("onnx", "onnxruntime")
EXPORT_EXTRA = "pip install 'surgtui[export]'"


def sidecar_path(path: Path) -> Path:
    """`best.onnx` -> `best.onnx.json`: the description export-model writes beside the file."""
    return path.with_name(path.name + ".json")


def default_export_path(weights: Path, fmt: str) -> Path:
    """Beside the weights: `weights/best.pt` -> `weights/best.onnx` / `weights/best.torchscript`."""
    return weights.with_suffix(EXPORT_SUFFIXES[fmt])


def exported_format(path: Path) -> str | None:
    """The format of a file export-model writes ("onnx", "torchscript"); None for a checkpoint or anything else.

    By its suffix; a `.pt` is TorchScript when its archive holds compiled code (`<name>/code/`),
    which torch.save's checkpoints never do.
    """
    suffix = path.suffix.lower()
    if suffix == EXPORT_SUFFIXES["onnx"]:
        return "onnx"
    if suffix == EXPORT_SUFFIXES["torchscript"]:
        return "torchscript"
    if suffix in TORCHSCRIPT_SUFFIXES and path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                if any(name.split("/")[1:2] == ["code"] for name in archive.namelist()):
                    return "torchscript"
        except (OSError, zipfile.BadZipFile):
            pass
    return None


def check_exported_file(path: Path) -> Path:
    """An exported model needs its sidecar (classes, input size, letterbox) to be used."""
    side = sidecar_path(path)
    if not side.is_file():
        raise UserError(
            f"{side}: no such file; predict reads an exported model's classes and input from this sidecar, "
            f"which `surgtui export-model` writes beside {path.name} (copy it along, or export again)"
        )
    return path


def missing_onnx_packages() -> list[str]:
    missing = []
    for name in ONNX_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a module set to None in sys.modules: hidden
            found = False
        if not found:
            missing.append(name)
    return missing


def check_onnx_packages(what: str) -> None:
    """ONNX export and ONNX models need the optional packages; `what` names the command's use of them."""
    if missing := missing_onnx_packages():
        raise UserError(f"{what} needs {' and '.join(missing)} (not installed): {EXPORT_EXTRA}")


def check_export_args(
    fmt: str, out: Path | None, img_size: int | None, conf: float | None, iou: float | None
) -> None:
    """export-model's options, before the weights are looked at."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"--format {fmt!r}: expected {' or '.join(EXPORT_FORMATS)}")
    if img_size is not None and (img_size % 32 or not 64 <= img_size <= 2048):
        raise UserError(f"--img-size {img_size}: expected a multiple of 32 in 64..2048 (as model.img_size)")
    if conf is not None and not (0.0 <= conf <= 1.0):
        raise UserError(f"--conf {conf:g}: expected a score threshold in 0..1")
    if iou is not None and not (0.0 < iou <= 1.0):
        raise UserError(f"--iou {iou:g}: expected an NMS IoU threshold in (0, 1]")
    if out is not None:
        allowed = (EXPORT_SUFFIXES["onnx"],) if fmt == "onnx" else TORCHSCRIPT_SUFFIXES
        if out.suffix.lower() not in allowed:
            raise UserError(
                f"--out {out}: expected a file name ending in {' or '.join(allowed)} for --format {fmt} "
                "(predict recognises exported models by it)"
            )
        if out.is_dir():
            raise UserError(f"--out {out}: is a directory; expected a file name")
        if out.parent.exists() and not out.parent.is_dir():
            raise UserError(f"--out {out}: {out.parent} is not a directory")
