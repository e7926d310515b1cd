"""`python -m surgtui.engine.export WEIGHTS --format onnx|torchscript`: a trained detector as one shippable file.

Started by `surgtui export-model` (surgtui/cli/export_model.py checks the arguments first). The
file holds the model *and* its decode step (`DecodedDetector`): letterboxed 0..1 RGB images
`[B, 3, H, W]` in (normalised inside), boxes in input pixels, best-class scores and classes out;
with --nms, per image the detections left after per-class NMS, padded to max_det. Beside it, a
JSON sidecar `<file>.json` says what goes in and comes out (docs/predict.md, "Export").

Before anything is written the file is run on a few real letterboxed frames (onnxruntime,
torch.jit) and compared with the PyTorch model: above the limit it is not written and the exit
code is 1. Errors in the input are one line `surgtui: error: ...` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms

from surgtui import __version__
from surgtui.config.schema import CLASS_NAMES, SYNTHETIC_SOURCE, Experiment
from surgtui.data.formats import source_path
from surgtui.data.layouts import training_layout, training_splits
from surgtui.data.synth import video_frames
from surgtui.engine.exported import INPUT_NAME, NMS_OUTPUT_NAMES, OUTPUT_NAMES, ExportedModel, spec_of
from surgtui.engine.inference import load_model, main_wrapper
from surgtui.engine.model import IMAGENET_MEAN, IMAGENET_STD, Detector
from surgtui.engine.predictor import stack_canvases, to_model_input
from surgtui.engine.runtime import resolve_device
from surgtui.engine.sources import letterbox_array
from surgtui.engine.transforms import PAD_VALUE, STRIDE, letterbox
from surgtui.errors import ExitCode, UserError, one_line
from surgtui.fileio import atomic_write, write_json_atomic
from surgtui.runs.exports import (
    EXPORT_FORMATS,
    check_export_args,
    check_onnx_packages,
    default_export_path,
    exported_format,
    sidecar_path,
)
from surgtui.runs.inference import resolve_weights

# torchvision's nms has an ONNX form (NonMaxSuppression) from opset 11; onnxruntime 1.18 runs up to 21.
OPSET = 17
PARITY_FRAMES = 4
PARITY_LIMIT, HALF_PARITY_LIMIT = 1e-4, 1e-2  # max |Δ| of scores, and of boxes / img_size


class ParityError(Exception):
    """The exported file does not compute what the PyTorch model does."""


class DecodedDetector(nn.Module):
    """What an export holds: 0..1 RGB `[B, 3, H, W]` -> boxes `[B, N, 4]` (xyxy, input pixels), scores
    `[B, N]` (objectness × best class probability, as predict scores) and classes `[B, N]`; with `nms`
    (conf, iou, max_det), `padded_nms`'s per-image detections instead."""

    def __init__(
        self, model: Detector, half: bool = False, nms: tuple[float, float, int] | None = None
    ) -> None:
        super().__init__()
        self.model, self.half, self.nms = model, half, nms

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        preds = self.model.decode(self.model(x.half() if self.half else x))  # decode works in float32
        best, classes = preds[..., 5:].max(-1)
        boxes, scores = preds[..., :4], preds[..., 4] * best
        if self.nms is None:
            return boxes, scores, classes
        return padded_nms(boxes, scores, classes, self.model.nc, *self.nms)


def padded_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    nc: int,
    conf: float,
    iou: float,
    max_det: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image: scores > conf, per-class NMS at iou, the best max_det, padded.

    Returns boxes `[B, max_det, 4]` and scores `[B, max_det]` (zeros after the detections),
    classes `[B, max_det]` (-1 after them), num_dets `[B]`; in tensor operations only, so that it
    traces and exports (one batched_nms over the batch, images and classes kept apart by the group).
    """
    b, n = scores.shape
    flat = scores.reshape(-1)
    cand = (flat > conf).nonzero().squeeze(1)
    group = torch.div(cand, n, rounding_mode="floor") * nc + classes.reshape(-1)[cand]
    # IoU does not change with a shift; coordinates >= 0 keep batched_nms's groups (offset by the
    # largest coordinate) from overlapping, so no image's box suppresses another image's.
    shifted = (boxes - boxes.amin()).reshape(-1, 4)[cand]
    keep = cand[batched_nms(shifted, flat[cand], group, iou)]
    kept = torch.full_like(flat, -1.0).scatter(0, keep, flat[keep]).view(b, n)
    kept = torch.cat((kept, kept.new_full((b, max_det), -1.0)), 1)  # at least max_det columns
    top, idx = kept.topk(max_det, 1)
    valid = top > 0
    idx = idx.clamp(max=n - 1)
    out_boxes = boxes.gather(1, idx.unsqueeze(-1).expand(-1, -1, 4)) * valid.unsqueeze(-1)
    out_classes = torch.where(valid, classes.gather(1, idx), torch.full_like(idx, -1))
    return out_boxes, top.clamp(min=0), out_classes, valid.sum(1)


@contextmanager
def traced_grids(model: Detector) -> Iterator[None]:
    """decode caches its cell grid per feature size; a trace must build it from the input's shape instead."""
    saved, model._grids = model._grids, {}
    try:
        yield
    finally:
        model._grids = saved


def to_onnx(
    module: nn.Module, example: torch.Tensor, dynamic: bool, nms: bool, meta: dict[str, Any]
) -> bytes:
    """The ONNX file (the sidecar also in its metadata, key `surgtui`), checked by onnx's checker."""
    import onnx

    names = list(NMS_OUTPUT_NAMES if nms else OUTPUT_NAMES)
    axes = None
    if dynamic:
        axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
        axes |= {
            name: {0: "batch"} if nms or name == "num_dets" else {0: "batch", 1: "anchors"} for name in names
        }
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes; the legacy exporter's deprecation
        # The TorchScript-based exporter: it needs no onnxscript, and torchvision registers nms for it.
        torch.onnx.export(
            module,
            (example,),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes=axes,
        )
    proto = onnx.load_model_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "surgtui", json.dumps(meta)
    return proto.SerializeToString()


def to_torchscript(module: nn.Module, example: torch.Tensor, meta: dict[str, Any]) -> bytes:
    """The traced module (the sidecar also inside, as the extra file `surgtui.json`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes; torch.jit's deprecation
        traced = torch.jit.trace(module, (example,), check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={"surgtui.json": json.dumps(meta)})
    return buf.getvalue()


def parity_frames(exp: Experiment, size: int, n: int = PARITY_FRAMES) -> tuple[list[np.ndarray], str]:
    """Up to `n` letterboxed frames to check an export on, and what they are: the checkpoint's own
    validation images when its data source is here, else synthetic frames of its [data.synthetic] size."""
    rect = exp.data.rect
    if exp.data.source != SYNTHETIC_SOURCE:
        try:
            source = source_path(exp.data.source)
            assert source is not None
            layout = training_layout(exp.data, source)
            _, val = training_splits(layout, exp.data)
            paths = [r.path for r in layout.read(val)[:n]]
            frames = [np.asarray(letterbox(p, size, rect)[0]) for p in paths]
            if frames:
                return frames, f"{len(frames)} images of {val.where()}"
        except (UserError, OSError, ValueError):
            pass  # moved, or another machine's path: synthetic frames check the graph as well
    syn = exp.data.synthetic
    frames = [
        letterbox_array(f, size, rect)[0]
        for f, _ in video_frames(syn.seed, "val", 0, n, syn.width, syn.height)
    ]
    return frames, f"{n} synthetic {syn.width}x{syn.height} frames"


def compare(
    ref: tuple[torch.Tensor, ...], got: tuple[torch.Tensor, ...], nms: bool, min_score: float
) -> dict:
    """Max |Δ| of boxes and scores between two runs of the graph, and what else differs (`mismatch`)."""
    ref = tuple(t.detach().cpu() for t in ref)
    got = tuple(t.detach().cpu() for t in got)
    mismatch = ""
    if nms:
        if not torch.equal(ref[3], got[3].to(ref[3].dtype)):
            mismatch = f"detections per frame {ref[3].tolist()} vs {got[3].tolist()}"
            return {"boxes": float("inf"), "scores": float("inf"), "mismatch": mismatch}
        sel = torch.arange(ref[1].shape[1]) < ref[3][:, None]  # the detections, not the padding
    else:
        sel = torch.ones_like(ref[1], dtype=torch.bool)
    boxes = (ref[0].float() - got[0].float()).abs()[sel]
    scores = (ref[1].float() - got[1].float()).abs()[sel]
    # Classes where a box could count: far below any threshold two classes may tie in the last bit.
    counted = sel & (ref[1] >= min_score)
    if (wrong := int((ref[2][counted] != got[2].to(ref[2].dtype)[counted]).sum())) > 0:
        mismatch = f"{wrong} boxes with another class"
    return {
        "boxes": float(boxes.max()) if boxes.numel() else 0.0,
        "scores": float(scores.max()) if scores.numel() else 0.0,
        "mismatch": mismatch,
    }


def check_parity(
    module: DecodedDetector, exported: ExportedModel, x: torch.Tensor, per_frame: bool, min_score: float
) -> dict:
    """The exported file against the PyTorch module on the frames `x` (one at a time when `per_frame`)."""
    chunks = [x[i : i + 1] for i in range(len(x))] if per_frame else [x]
    with torch.inference_mode():
        refs = [module(chunk) for chunk in chunks]
    worst = {"boxes": 0.0, "scores": 0.0, "mismatch": ""}
    for chunk, ref in zip(chunks, refs):
        diff = compare(ref, exported(chunk), module.nms is not None, min_score)
        worst = {
            "boxes": max(worst["boxes"], diff["boxes"]),
            "scores": max(worst["scores"], diff["scores"]),
            "mismatch": worst["mismatch"] or diff["mismatch"],
        }
    return worst


def sidecar(
    fmt: str,
    weights: Path,
    ckpt: dict[str, Any],
    exp: Experiment,
    size: int,
    canvas: tuple[int, int] | None,
    half: bool,
    nms: tuple[float, float, int],
    with_nms: bool,
    device: torch.device,
) -> dict[str, Any]:
    """What the sidecar `<file>.json` says (docs/predict.md lists the fields)."""
    conf, iou, max_det = nms
    shape: list[Any] = ["batch", 3, "height", "width"] if canvas is None else [1, 3, *canvas]
    if with_nms:
        outputs = {
            "boxes": "[B, max_det, 4] float32: x1 y1 x2 y2 in input pixels; zeros after num_dets",
            "scores": "[B, max_det] float32: objectness x class probability, best first; zeros after num_dets",
            "classes": "[B, max_det] int64: index into classes; -1 after num_dets",
            "num_dets": "[B] int64: detections per image",
        }
    else:
        outputs = {
            "boxes": "[B, N, 4] float32: x1 y1 x2 y2 in input pixels, one per anchor and cell",
            "scores": "[B, N] float32: objectness x probability of the box's best class",
            "classes": "[B, N] int64: the best class, index into classes",
        }
    doc: dict[str, Any] = {
        "format": fmt,
        "surgtui_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "weights": str(weights.resolve()),
        "epoch": ckpt.get("epoch"),
        "step": ckpt.get("step"),
        "variant": exp.variant,
        "backbone": exp.model.backbone,
        "classes": list(CLASS_NAMES),
        "img_size": size,
        "input": {
            "name": INPUT_NAME,
            "shape": shape,
            "dtype": "float32",
            "layout": "NCHW",
            "color": "RGB",
            "range": [0.0, 1.0],
        },
        "letterbox": {
            "mode": "rect" if exp.data.rect else "square",
            "size": size,
            "stride": STRIDE,
            "pad_value": PAD_VALUE,
            "centred": True,
            "canvas": None if canvas is None else [canvas[1], canvas[0]],
        },
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "normalisation": "inside the model: feed 0..1 RGB, not (x - mean) / std",
        "outputs": outputs,
        "dynamic": canvas is None,
        "half": half,
        "nms": with_nms,
        "conf": conf,
        "iou": iou,
        "max_det": max_det,
        "device": device.type,
    }
    if fmt == "onnx":
        doc["opset"] = OPSET
    return doc


def export_model(
    weights: str,
    fmt: str,
    out: Path | None = None,
    dynamic: bool = False,
    half: bool = False,
    nms: bool = False,
    img_size: int | None = None,
    conf: float | None = None,
    iou: float | None = None,
) -> Path:
    """Export the checkpoint `weights` (a file or a run) as `fmt`, check it, write it and its sidecar; the path."""
    check_export_args(fmt, out, img_size, conf, iou)
    path = resolve_weights(weights)
    if exported_format(path) is not None:
        raise UserError(
            f"{path}: already an exported model; export-model reads a checkpoint (best.pt, last.pt)"
        )
    if fmt == "onnx":
        check_onnx_packages("--format onnx")
    if half and not torch.cuda.is_available():
        raise UserError(
            "--half: a float16 export needs a CUDA GPU, and there is none here; export without --half"
        )
    device = resolve_device("cuda", "--half") if half else torch.device("cpu")
    detector, exp, ckpt = load_model(path, torch.device("cpu"))
    detector = detector.to(device).half() if half else detector
    size = img_size or exp.model.img_size
    thresholds = (
        exp.val.working_conf if conf is None else conf,
        exp.val.iou_thres if iou is None else iou,
        exp.val.max_det,
    )
    frames, what = parity_frames(exp, size)
    canvas = None if dynamic else (frames[0].shape[0], frames[0].shape[1])
    if canvas is not None:  # frames of another shape than the first: a fixed input takes only those that fit
        frames = [f for f in frames if f.shape[0] <= canvas[0] and f.shape[1] <= canvas[1]]
    x = to_model_input(torch.from_numpy(stack_canvases(frames, canvas)).to(device))
    module = DecodedDetector(detector, half, thresholds if nms else None).eval()
    meta = sidecar(fmt, path, ckpt, exp, size, canvas, half, thresholds, nms, device)

    example = x if dynamic else x[:1]
    with torch.no_grad(), traced_grids(detector):
        data = (
            to_onnx(module, example, dynamic, nms, meta)
            if fmt == "onnx"
            else to_torchscript(module, example, meta)
        )
    try:
        exported = ExportedModel(data, spec_of(meta, Path("(new sidecar)")), device)
        result = check_parity(module, exported, x, per_frame=not dynamic, min_score=exp.val.conf_thres)
    except Exception as exc:  # the runtime refuses the file: as bad as a wrong result
        raise ParityError(
            f"cannot run the exported {fmt} model to check it ({one_line(exc)}); nothing written"
        ) from None
    limit = HALF_PARITY_LIMIT if half else PARITY_LIMIT
    # Boxes as a share of the input size: float32 alone moves a 1500 px anchor box by 1e-3 px.
    boxes, scores = result["boxes"], result["scores"]
    print(
        f"parity on {what}, {exported.runtime} vs PyTorch: max |Δ| boxes {boxes:.3g} px "
        f"({boxes / size:.2g} of {size} px), scores {scores:.3g} (limit {limit:g})",
        flush=True,
    )
    if result["mismatch"] or max(boxes / size, scores) > limit:
        why = result["mismatch"] or f"max |Δ| {max(boxes / size, scores):.3g} > {limit:g}"
        raise ParityError(
            f"the exported {fmt} model does not match the PyTorch model ({why}); nothing written"
        )
    meta["parity"] = {"frames": what, "runtime": exported.runtime, "limit": limit}
    meta["parity"] |= {"boxes_px": boxes, "boxes": boxes / size, "scores": scores}

    dest = out if out is not None else default_export_path(path, fmt)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(dest, binary=True) as fh:
        fh.write(data)
    try:
        write_json_atomic(sidecar_path(dest), meta)
    except BaseException:
        dest.unlink(missing_ok=True)  # a file without its sidecar would be read wrongly
        raise
    shape = "x".join(map(str, meta["input"]["shape"]))
    extra = (
        f", NMS inside (conf {thresholds[0]:g}, iou {thresholds[1]:g}, max_det {thresholds[2]})"
        if nms
        else ""
    )
    print(
        f"wrote {dest} ({len(data) / 1e6:.1f} MB, input {shape}{', float16' if half else ''}{extra}) "
        f"and {sidecar_path(dest).name}",
        flush=True,
    )
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surgtui.engine.export",
        description="Export a trained detector with its decode step to ONNX or TorchScript, parity-checked.",
    )
    parser.add_argument("weights", help="a checkpoint (best.pt, last.pt) or a run directory")
    parser.add_argument("--format", required=True, help=" or ".join(EXPORT_FORMATS))
    parser.add_argument("--out", type=Path, help="the file to write [beside the weights: best.onnx, ...]")
    parser.add_argument("--dynamic", action="store_true", help="any batch size and canvas")
    parser.add_argument("--half", action="store_true", help="float16 weights (CUDA only)")
    parser.add_argument("--nms", action="store_true", help="per-class NMS inside, outputs padded to max_det")
    parser.add_argument("--img-size", type=int, help="letterbox size [the checkpoint's model.img_size]")
    parser.add_argument(
        "--conf", type=float, help="with --nms: minimum score [the checkpoint's val.working_conf]"
    )
    parser.add_argument(
        "--iou", type=float, help="with --nms: NMS IoU threshold [the checkpoint's val.iou_thres]"
    )
    a = parser.parse_args(argv)

    def run() -> int:
        try:
            export_model(a.weights, a.format, a.out, a.dynamic, a.half, a.nms, a.img_size, a.conf, a.iou)
        except ParityError as exc:
            print(f"surgtui: error: {exc}", file=sys.stderr, flush=True)
            return ExitCode.FAILED
        return ExitCode.OK

    return main_wrapper(run)


if __name__ == "__main__":
    sys.exit(main())
