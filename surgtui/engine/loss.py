"""YOLOv5 detection loss: 1 - CIoU box loss, IoU-targeted objectness, class BCE.

Per-scale means are summed over the three scales (objectness weighted by
`loss.obj_balance`), then weighted by `loss.coord / conf / class`, which with
`loss.yolov5_scaling` are first scaled as YOLOv5's train.py does (`loss_weights`).
The total is a per-image mean: unlike YOLOv5 we do not multiply by the batch
size, so the gradient norm (and the `grad_clip` threshold) does not depend on the
batch size; the default AdamW (decoupled weight decay) is invariant to that scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import box_convert, complete_box_iou_loss, sigmoid_focal_loss

from surgtui.config.schema import LossConfig
from surgtui.engine.assign import Assignment, assign
from surgtui.runs.metrics import LOSS_COMPONENTS

COMPONENTS: tuple[str, ...] = LOSS_COMPONENTS  # the order of the parts tensor below
NUM_SCALES = 3
# Smallest predicted width/height (grid units): CIoU's atan(w / h) is NaN at w = h = 0.
MIN_WH = 1e-6


def loss_weights(cfg: LossConfig, num_classes: int, img_size: int) -> tuple[float, float, float]:
    """(box, objectness, class) weights as applied.

    With `yolov5_scaling`, YOLOv5's rule (tuned at 80 classes, 640 px, 3 scales): box x 3/nl,
    class x nc/80 x 3/nl (the class loss is a mean over nc outputs), objectness x (img/640)^2 x 3/nl
    (a mean over cells, whose number grows with the image). Without it, the raw values.
    """
    if not cfg.yolov5_scaling:
        return cfg.coord, cfg.conf, cfg.class_
    layers = 3 / NUM_SCALES
    return (
        cfg.coord * layers,
        cfg.conf * (img_size / 640) ** 2 * layers,
        cfg.class_ * num_classes / 80 * layers,
    )


def smooth_targets(eps: float) -> tuple[float, float]:
    """YOLOv5's smooth_BCE: (positive, negative) class targets for label smoothing `eps`."""
    return 1.0 - 0.5 * eps, 0.5 * eps


def targets_to_tensor(targets: list[dict], device: torch.device | str) -> torch.Tensor:
    """Per-image target dicts (xyxy pixel boxes, labels) -> `[M, 6]` (image, class, cx, cy, w, h)."""
    rows = [
        torch.cat(
            (
                torch.full((len(t["labels"]), 1), i),
                t["labels"].view(-1, 1),
                box_convert(t["boxes"], "xyxy", "cxcywh"),
            ),
            1,
        )
        for i, t in enumerate(targets)
    ]
    out = torch.cat(rows) if rows else torch.zeros((0, 6))
    return out.to(device=device, dtype=torch.float32, non_blocking=True)


class DetectionLoss:
    """Callable: `(outputs, targets [M, 6]) -> (total tensor, {coord, conf, class, total} tensor [4])`."""

    def __init__(
        self,
        cfg: LossConfig,
        anchors: torch.Tensor,
        strides: torch.Tensor,
        num_classes: int,
        img_size: int = 640,
    ) -> None:
        self.cfg = cfg
        self.anchors = anchors  # [3, 3, 2] pixels; the model's buffer, so autoanchor's update is seen here
        self.strides = strides
        self.nc = num_classes
        self.cp, self.cn = smooth_targets(cfg.label_smoothing)
        self.w_box, self.w_obj, self.w_cls = loss_weights(cfg, num_classes, img_size)

    def bce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.cfg.focal:
            return sigmoid_focal_loss(
                logits, target, self.cfg.focal_alpha, self.cfg.focal_gamma, reduction="mean"
            )
        return F.binary_cross_entropy_with_logits(logits, target)

    def assign(self, outputs: list[torch.Tensor], targets: torch.Tensor) -> Assignment:
        c = self.cfg
        grids = [tuple(p.shape[2:4]) for p in outputs]
        return assign(
            targets,
            self.anchors,
            self.strides,
            grids,
            c.assignment,
            c.anchor_iou_threshold,
            c.center_weight,
            c.anchor_t,
        )

    def __call__(
        self, outputs: list[torch.Tensor], targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        asg = self.assign(outputs, targets)
        zero = outputs[0].new_zeros(())
        lbox, lobj, lcls = zero, zero, zero
        for i, p in enumerate(outputs):
            p = p.float()
            a = asg.at_scale(i)
            tobj = torch.zeros_like(p[..., 4])
            if len(a.image):
                ps = p[a.image, a.anchor, a.gj, a.gi]  # [n, 5 + nc]
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = ((ps[:, 2:4].sigmoid() * 2) ** 2 * a.anchor_wh).clamp_min(MIN_WH)
                pbox = box_convert(torch.cat((pxy, pwh), 1), "cxcywh", "xyxy")
                box_loss = complete_box_iou_loss(pbox, box_convert(a.box, "cxcywh", "xyxy"), reduction="none")
                lbox = lbox + box_loss.mean()
                # Objectness learns the box quality: target = CIoU of the prediction, not 1.
                tobj[a.image, a.anchor, a.gj, a.gi] = (1.0 - box_loss).detach().clamp_min(0).to(tobj.dtype)
                tcls = torch.full_like(ps[:, 5:], self.cn)
                tcls[torch.arange(len(a.cls), device=p.device), a.cls] = self.cp
                lcls = lcls + self.bce(ps[:, 5:], tcls)
            lobj = lobj + self.bce(p[..., 4], tobj) * self.cfg.obj_balance[i]
        parts = torch.stack((lbox * self.w_box, lobj * self.w_obj, lcls * self.w_cls))
        total = parts.sum()
        return total, torch.cat((parts.detach(), total.detach().view(1)))
