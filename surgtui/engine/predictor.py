"""The model on a batch of letterboxed items: detections in the original image's pixels.

Score = objectness × class probability of the box's best class, score ≥ conf, per-class
NMS at iou, at most `val.max_det` per image.
"""

from __future__ import annotations

import numpy as np
import torch

from surgtui.config.schema import Experiment
from surgtui.engine.evaluate import non_max_suppression
from surgtui.engine.model import Detector
from surgtui.engine.sources import Item
from surgtui.engine.transforms import PAD_VALUE


def best_class_only(preds: torch.Tensor) -> torch.Tensor:
    """Zero every class probability but each box's best: one label per box (non_max_suppression is multi-label)."""
    cls = preds[..., 5:]
    best = cls.argmax(-1, keepdim=True)
    only = torch.zeros_like(cls).scatter_(-1, best, cls.gather(-1, best))
    return torch.cat((preds[..., :5], only), -1)


def _stack(batch: list[Item]) -> np.ndarray:
    """The canvases as one array; rect canvases of other shapes padded grey at the bottom/right (as collate does)."""
    h = max(it.canvas.shape[0] for it in batch)
    w = max(it.canvas.shape[1] for it in batch)
    if all(it.canvas.shape[:2] == (h, w) for it in batch):
        return np.stack([it.canvas for it in batch])
    out = np.full((len(batch), h, w, 3), PAD_VALUE, dtype=np.uint8)
    for i, it in enumerate(batch):
        out[i, : it.canvas.shape[0], : it.canvas.shape[1]] = it.canvas
    return out


class Predictor:
    """Letterboxed uint8 canvases in, per image `[K, 6]` (x1, y1, x2, y2, score, label) in original pixels out."""

    def __init__(
        self, model: Detector, exp: Experiment, device: torch.device, conf: float, iou: float
    ) -> None:
        self.model, self.exp, self.device = model, exp, device
        self.conf, self.iou = conf, iou
        self.amp = device.type == "cuda" and exp.train.amp  # channels-last: inference.load_model

    @torch.inference_mode()
    def __call__(self, batch: list[Item]) -> list[torch.Tensor]:
        x = torch.from_numpy(_stack(batch)).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div_(255)
        with torch.autocast(self.device.type, enabled=self.amp):
            outputs = self.model(x)
        preds = best_class_only(self.model.decode(outputs).float())
        dets = non_max_suppression(preds, self.conf, self.iou, self.exp.val.max_det)
        out = []
        for it, det in zip(batch, dets):
            det = det.cpu()
            det[:, [0, 2]] = ((det[:, [0, 2]] - it.pad_x) / it.scale).clamp_(0, it.width)
            det[:, [1, 3]] = ((det[:, [1, 3]] - it.pad_y) / it.scale).clamp_(0, it.height)
            # A box (all but a sub-pixel sliver) in the padding has nothing left to show.
            keep = (det[:, 2] - det[:, 0] >= 1) & (det[:, 3] - det[:, 1] >= 1)
            out.append(det[keep])
        return out
