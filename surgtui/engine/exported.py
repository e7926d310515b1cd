"""An exported model (export-model's ONNX or TorchScript file and its JSON sidecar), read and run.

What predict and export-model's parity check share: the sidecar's fields (`ExportSpec`), the device
a file runs on, and `ExportedModel`, which runs either format (onnxruntime, torch.jit) on a batch of
letterboxed 0..1 RGB images. The graph inside is surgtui/engine/export.py's `DecodedDetector`.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from surgtui.config.schema import CLASS_NAMES
from surgtui.engine.runtime import resolve_device
from surgtui.errors import UserError, one_line
from surgtui.runs.exports import check_exported_file, check_onnx_packages, sidecar_path

INPUT_NAME = "images"
OUTPUT_NAMES: tuple[str, ...] = ("boxes", "scores", "classes")
NMS_OUTPUT_NAMES: tuple[str, ...] = ("boxes", "scores", "classes", "num_dets")


@dataclass(frozen=True)
class ExportSpec:
    """The sidecar's fields predict uses (export.py's `sidecar` writes them all)."""

    format: str  # onnx | torchscript
    img_size: int  # the letterbox's long side
    rect: bool  # rect letterbox (data.rect) or square
    canvas: tuple[int, int] | None  # (height, width) a fixed-shape file takes; None with --dynamic
    half: bool
    nms: bool  # NMS inside: outputs padded to max_det with num_dets
    conf: float
    iou: float
    max_det: int
    device: str  # the device a TorchScript file was traced on (it runs only there)
    weights: str
    epoch: int | None
    variant: str
    backbone: str

    @property
    def batch(self) -> int | None:
        """The batch size a fixed-shape file takes (1); None when any."""
        return None if self.canvas is None else 1


def read_sidecar(path: Path) -> ExportSpec:
    """The sidecar of the exported file `path`; UserError naming it when it is missing or not one."""
    side = sidecar_path(check_exported_file(path))
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{side}: cannot read this sidecar ({one_line(exc)})") from None
    return spec_of(doc, side)


def spec_of(doc: dict[str, Any], side: Path) -> ExportSpec:
    """A sidecar's fields; UserError naming the file `side` when they are not a sidecar's."""
    try:
        shape = doc["input"]["shape"]
        spec = ExportSpec(
            format=doc["format"],
            img_size=int(doc["img_size"]),
            rect=doc["letterbox"]["mode"] == "rect",
            canvas=None if doc["dynamic"] else (int(shape[2]), int(shape[3])),
            half=bool(doc["half"]),
            nms=bool(doc["nms"]),
            conf=float(doc["conf"]),
            iou=float(doc["iou"]),
            max_det=int(doc["max_det"]),
            device=str(doc["device"]),
            weights=str(doc["weights"]),
            epoch=doc.get("epoch"),
            variant=str(doc.get("variant", "")),
            backbone=str(doc.get("backbone", "")),
        )
        classes = list(doc["classes"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise UserError(f"{side}: not an export-model sidecar ({one_line(exc)})") from None
    if classes != list(CLASS_NAMES):
        raise UserError(f"{side}: classes {classes}; this surgtui predicts {list(CLASS_NAMES)}")
    if spec.format not in ("onnx", "torchscript"):
        raise UserError(f"{side}: format {spec.format!r}; expected onnx or torchscript")
    return spec


def import_onnxruntime(what: str) -> Any:
    """onnxruntime, or a UserError naming the extra; `what` says what needed it."""
    check_onnx_packages(what)
    import onnxruntime

    return onnxruntime


def exported_device(path: Path, spec: ExportSpec, device: str) -> torch.device:
    """Where `path` runs for `--device device`: ONNX on CPU or onnxruntime's CUDA provider, TorchScript
    where it was traced (a trace keeps its device); float16 only on CUDA. UserError when it cannot."""
    if spec.format == "onnx":
        dev = resolve_device(device, "--device")
        providers = import_onnxruntime("an ONNX model").get_available_providers()
        if dev.type == "cuda" and "CUDAExecutionProvider" not in providers:
            if device != "auto":
                raise UserError(
                    f"--device {device}: this onnxruntime has no CUDA provider "
                    "(install onnxruntime-gpu), or use --device cpu"
                )
            dev = torch.device("cpu")
    else:
        traced = torch.device(spec.device).type
        dev = resolve_device(traced if device == "auto" else device, "--device")
        if dev.type != traced:
            raise UserError(
                f"--device {device}: {path.name} was traced on {traced} and TorchScript runs it only there; "
                f"use --device {traced}, or an ONNX export"
            )
    if spec.half and dev.type != "cuda":
        raise UserError(f"{path.name}: exported with --half (float16), which runs on CUDA only, not on {dev}")
    return dev


class ExportedModel:
    """An exported file on its runtime: `[B, 3, H, W]` float 0..1 RGB in, its outputs as tensors out."""

    def __init__(self, model: Path | bytes, spec: ExportSpec, device: torch.device) -> None:
        self.spec = spec
        if spec.format == "onnx":
            ort = import_onnxruntime("an ONNX model")
            providers: list[Any] = ["CPUExecutionProvider"]
            if device.type == "cuda":
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
            options = ort.SessionOptions()
            options.log_severity_level = 3  # errors only: its notes on unused initialisers are noise here
            # Its threads otherwise spin between runs, taking the cores from torch's letterboxing and drawing.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            source = model if isinstance(model, bytes) else str(model)
            self.session = ort.InferenceSession(source, sess_options=options, providers=providers)
            self.device = torch.device("cpu")  # onnxruntime takes numpy arrays
            self.runtime = f"onnxruntime {ort.__version__} ({self.session.get_providers()[0]})"
        else:
            source = io.BytesIO(model) if isinstance(model, bytes) else str(model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
                self.module = torch.jit.load(source, map_location=device)
            self.device = device
            self.runtime = f"torch.jit {torch.__version__.split('+')[0]}"

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.spec.format == "onnx":
            outputs = self.session.run(None, {INPUT_NAME: x.detach().cpu().numpy()})
            return tuple(torch.from_numpy(o) for o in outputs)
        # Without the profiling executor's optimisation: its first runs compile for seconds, to gain little here.
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return tuple(self.module(x.to(self.device)))


def open_exported(path: Path, device: str) -> ExportedModel:
    """`path` (with its sidecar) ready to run for `--device device`; UserError when it cannot be."""
    spec = read_sidecar(path)
    dev = exported_device(path, spec, device)
    try:
        return ExportedModel(path, spec, dev)
    except UserError:
        raise
    except Exception as exc:  # a damaged file: onnxruntime's and torch.jit's own errors
        raise UserError(f"{path}: cannot load this {spec.format} model ({one_line(exc)})") from None
