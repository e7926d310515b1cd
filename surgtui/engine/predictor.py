"""The model on a batch of letterboxed items: detections in the original image's pixels.

Score = objectness × class probability of the box's best class, score ≥ conf, per-class
NMS at iou, at most `val.max_det` per image. `Predictor` runs a checkpoint's model,
`ExportedPredictor` a file export-model wrote (its graph decodes and picks the best class
itself): the same steps, the same output. `open_predictor` picks one for a weights file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surgtui.config.schema import CLASS_NAMES, Experiment
from surgtui.engine.evaluate import non_max_suppression
from surgtui.engine.exported import ExportedModel, open_exported
from surgtui.engine.inference import load_model
from surgtui.engine.model import Detector
from surgtui.engine.runtime import resolve_device
from surgtui.engine.sources import Item
from surgtui.engine.transforms import PAD_VALUE
from surgtui.errors import UserError
from surgtui.runs.exports import exported_format


def best_class_only(preds: torch.Tensor) -> torch.Tensor:
    """Zero every class probability but each box's best: one label per box (non_max_suppression is multi-label)."""
    cls = preds[..., 5:]
    best = cls.argmax(-1, keepdim=True)
    only = torch.zeros_like(cls).scatter_(-1, best, cls.gather(-1, best))
    return torch.cat((preds[..., :5], only), -1)


def best_class_preds(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """An export's (boxes, best-class scores, classes) as best_class_only's `[B, N, 5 + nc]` (objectness = score)."""
    one_hot = torch.nn.functional.one_hot(classes.long(), len(CLASS_NAMES)).to(scores.dtype)
    return torch.cat((boxes, scores.unsqueeze(-1), one_hot), -1)


def stack_canvases(canvases: list[np.ndarray], shape: tuple[int, int] | None = None) -> np.ndarray:
    """The canvases as one array; padded grey at the bottom/right (as collate does) to the largest, or to `shape`."""
    h, w = shape or (max(c.shape[0] for c in canvases), max(c.shape[1] for c in canvases))
    if all(c.shape[:2] == (h, w) for c in canvases):
        return np.stack(canvases)
    out = np.full((len(canvases), h, w, 3), PAD_VALUE, dtype=np.uint8)
    for i, c in enumerate(canvases):
        out[i, : c.shape[0], : c.shape[1]] = c
    return out


def to_model_input(canvases: torch.Tensor) -> torch.Tensor:
    """uint8 `[B, H, W, 3]` -> float `[B, 3, H, W]` in 0..1: channels-last on CUDA (as inference.load_model
    lays the model out), contiguous on the CPU, where a channels-last input made the first forwards ~30x slower."""
    x = canvases.permute(0, 3, 1, 2).float().div_(255)
    cuda = x.device.type == "cuda"
    return x.contiguous(memory_format=torch.channels_last if cuda else torch.contiguous_format)


class BatchPredictor:
    """Letterboxed uint8 canvases in, per image `[K, 6]` (x1, y1, x2, y2, score, label) in original pixels out."""

    device: torch.device
    canvas: tuple[int, int] | None = None  # (h, w) every batch is padded to: a fixed-shape export's input

    def detect(self, x: torch.Tensor) -> list[torch.Tensor]:
        """A `[B, 3, H, W]` 0..1 batch -> per image `[K, 6]` in canvas pixels."""
        raise NotImplementedError

    @torch.inference_mode()
    def __call__(self, batch: list[Item]) -> list[torch.Tensor]:
        if self.canvas is not None:
            for it in batch:
                if it.canvas.shape[0] > self.canvas[0] or it.canvas.shape[1] > self.canvas[1]:
                    h, w = self.canvas
                    raise UserError(
                        f"{it.name}: letterboxed to {it.canvas.shape[1]}x{it.canvas.shape[0]}, larger than the "
                        f"{w}x{h} input the model was exported for; export it with --dynamic for any shape"
                    )
        x = torch.from_numpy(stack_canvases([it.canvas for it in batch], self.canvas))
        x = to_model_input(x.to(self.device, non_blocking=True))
        out = []
        for it, det in zip(batch, self.detect(x)):
            det = det.cpu()
            det[:, [0, 2]] = ((det[:, [0, 2]] - it.pad_x) / it.scale).clamp_(0, it.width)
            det[:, [1, 3]] = ((det[:, [1, 3]] - it.pad_y) / it.scale).clamp_(0, it.height)
            # A box (all but a sub-pixel sliver) in the padding has nothing left to show.
            keep = (det[:, 2] - det[:, 0] >= 1) & (det[:, 3] - det[:, 1] >= 1)
            out.append(det[keep])
        return out


class Predictor(BatchPredictor):
    """A checkpoint's model (inference.load_model): decode, best class, NMS."""

    def __init__(
        self, model: Detector, exp: Experiment, device: torch.device, conf: float, iou: float
    ) -> None:
        self.model, self.exp, self.device = model, exp, device
        self.conf, self.iou = conf, iou
        self.amp = device.type == "cuda" and exp.train.amp  # channels-last: inference.load_model

    def detect(self, x: torch.Tensor) -> list[torch.Tensor]:
        with torch.autocast(self.device.type, enabled=self.amp):
            outputs = self.model(x)
        preds = best_class_only(self.model.decode(outputs).float())
        return non_max_suppression(preds, self.conf, self.iou, self.exp.val.max_det)


class ExportedPredictor(BatchPredictor):
    """An exported file: its graph decodes and picks the best class (and with --nms also suppresses)."""

    def __init__(self, model: ExportedModel, conf: float, iou: float) -> None:
        self.model, self.device, self.canvas = model, model.device, model.spec.canvas
        self.conf, self.iou = conf, iou

    def detect(self, x: torch.Tensor) -> list[torch.Tensor]:
        spec = self.model.spec
        parts = [self.model(x[i : i + 1]) for i in range(len(x))] if spec.batch == 1 else [self.model(x)]
        outputs = [torch.cat(o).float() if o[0].is_floating_point() else torch.cat(o) for o in zip(*parts)]
        if not spec.nms:
            preds = best_class_preds(*outputs)
            return non_max_suppression(preds, self.conf, self.iou, spec.max_det)
        boxes, scores, classes, num = outputs
        dets = []
        for b, s, c, n in zip(boxes, scores, classes, num.tolist()):
            det = torch.cat((b[:n], s[:n, None], c[:n, None].float()), 1)
            dets.append(det[det[:, 4] > self.conf])  # the graph kept scores > its own conf already
        return dets


@dataclass(frozen=True)
class PredictModel:
    """What predict needs besides the predictor: the letterbox, and what predictions.json says of the model."""

    img_size: int
    rect: bool
    device: torch.device
    conf: float  # the thresholds that apply (an export with NMS inside has its own)
    iou: float
    max_det: int
    epoch: int | None
    variant: str
    backbone: str
    export: dict[str, Any] | None = None  # an exported file's format, runtime, options


def open_predictor(path: Path, device: str, conf: float, iou: float) -> tuple[BatchPredictor, PredictModel]:
    """The predictor for a checkpoint or an exported file (export-model's, with its sidecar) on `device`."""
    if exported_format(path) is not None:
        exported = open_exported(path, device)
        spec = exported.spec
        if spec.nms:
            conf, iou = max(conf, spec.conf), spec.iou
        export = {"format": spec.format, "runtime": exported.runtime, "nms": spec.nms, "half": spec.half}
        export |= {"dynamic": spec.canvas is None, "from_weights": spec.weights}
        model = PredictModel(
            img_size=spec.img_size,
            rect=spec.rect,
            device=exported.device,
            conf=conf,
            iou=iou,
            max_det=spec.max_det,
            epoch=spec.epoch,
            variant=spec.variant,
            backbone=spec.backbone,
            export=export,
        )
        return ExportedPredictor(exported, conf, iou), model
    dev = resolve_device(device, "--device")
    detector, exp, ckpt = load_model(path, dev)
    model = PredictModel(
        img_size=exp.model.img_size,
        rect=exp.data.rect,
        device=dev,
        conf=conf,
        iou=iou,
        max_det=exp.val.max_det,
        epoch=ckpt.get("epoch"),
        variant=exp.variant,
        backbone=exp.model.backbone,
    )
    return Predictor(detector, exp, dev, conf, iou), model
