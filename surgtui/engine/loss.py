"""YOLOv5 detection loss: 1 - CIoU box loss, IoU-targeted objectness, class BCE.

Per-scale means are summed over the three scales (objectness weighted by
`loss.obj_balance`), then weighted by `loss.coord / conf / class`. The total
is a per-image mean: unlike YOLOv5 we do not multiply by the batch size, so the
gradient norm (and the `grad_clip` threshold) does not depend on the batch size;
Adam and AdamW are invariant to that scale anyway.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import box_convert, complete_box_iou_loss, sigmoid_focal_loss

from surgtui.config.schema import LossConfig
from surgtui.engine.assign import Assignment, assign

COMPONENTS: tuple[str, ...] = ("coord", "conf", "class", "total")


def smooth_targets(eps: float) -> tuple[float, float]:
    """YOLOv5's smooth_BCE: (positive, negative) class targets for label smoothing `eps`."""
    return 1.0 - 0.5 * eps, 0.5 * eps


def targets_to_tensor(targets: list[dict], device: torch.device | str) -> torch.Tensor:
    """Per-image target dicts (xyxy pixel boxes, labels) -> `[M, 6]` (image, class, cx, cy, w, h)."""
    rows = [
        torch.cat((torch.full((len(t["labels"]), 1), i), t["labels"].view(-1, 1), box_convert(t["boxes"], "xyxy", "cxcywh")), 1)
        for i, t in enumerate(targets)
    ]
    out = torch.cat(rows) if rows else torch.zeros((0, 6))
    return out.to(device=device, dtype=torch.float32, non_blocking=True)


class DetectionLoss:
    """Callable: `(outputs, targets [M, 6]) -> (total tensor, {coord, conf, class, total} tensor [4])`."""

    def __init__(self, cfg: LossConfig, anchors: torch.Tensor, strides: torch.Tensor, num_classes: int) -> None:
        self.cfg = cfg
        self.anchors = anchors  # [3, 3, 2] pixels
        self.strides = strides
        self.nc = num_classes
        self.cp, self.cn = smooth_targets(cfg.label_smoothing)

    def bce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.cfg.focal:
            return sigmoid_focal_loss(logits, target, self.cfg.focal_alpha, self.cfg.focal_gamma, reduction="mean")
        return F.binary_cross_entropy_with_logits(logits, target)

    def assign(self, outputs: list[torch.Tensor], targets: torch.Tensor) -> Assignment:
        c = self.cfg
        grids = [tuple(p.shape[2:4]) for p in outputs]
        return assign(targets, self.anchors, self.strides, grids, c.assignment, c.anchor_iou_threshold, c.center_weight)

    def __call__(self, outputs: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * a.anchor_wh
                pbox = box_convert(torch.cat((pxy, pwh), 1), "cxcywh", "xyxy")
                box_loss = complete_box_iou_loss(pbox, box_convert(a.box, "cxcywh", "xyxy"), reduction="none")
                lbox = lbox + box_loss.mean()
                # Objectness learns the box quality: target = CIoU of the prediction, not 1.
                tobj[a.image, a.anchor, a.gj, a.gi] = (1.0 - box_loss).detach().clamp_min(0).to(tobj.dtype)
                tcls = torch.full_like(ps[:, 5:], self.cn)
                tcls[torch.arange(len(a.cls), device=p.device), a.cls] = self.cp
                lcls = lcls + self.bce(ps[:, 5:], tcls)
            lobj = lobj + self.bce(p[..., 4], tobj) * self.cfg.obj_balance[i]
        parts = torch.stack((lbox * self.cfg.coord, lobj * self.cfg.conf, lcls * self.cfg.class_))
        total = parts.sum()
        return total, torch.cat((parts.detach(), total.detach().view(1)))
