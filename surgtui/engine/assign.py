"""Which (scale, anchor, cell) predicts which ground-truth box; vectorised over the batch.

Two strategies (`loss.assignment`):

- `iou_center` (the seed's "after"): every box is scored against all 9
  (scale, anchor) pairs by the anchor's shape IoU minus `center_weight` x a
  DIoU-style centre term (squared distance from the box centre to the centre
  of the cell it falls in, over the squared diagonal of the box enclosing the
  box and the anchor placed at that cell). The best pair is positive, and so
  is every other pair whose shape IoU exceeds `anchor_iou_threshold`.
- `size` (the seed's "before"): the scale whose anchors' typical size is
  closest to the box's (in log space), then the best-shaped anchor there.

Both drop pairs the head cannot reach (YOLOv5's `anchor_t`): it predicts sizes
up to `(2 sigma)^2 = 4x` its anchor, so a pair whose width or height ratio to the
anchor exceeds `anchor_t` (either way) is no positive; `iou_center` then picks
its best pair among the reachable ones. `anchor_t = 0` keeps every pair.

Both then add YOLOv5's neighbour cells: the two adjacent cells nearest to the
box centre also predict it (predicted offsets span -0.5..1.5 cells), so every
positive pair yields up to three positive cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Centre cell plus its left, up, right, down neighbours (YOLOv5's offsets, in cells).
_OFFSETS = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32) * 0.5


@dataclass
class Assignment:
    """One row per positive (cell, anchor, box); `scale` says which output it indexes."""

    scale: torch.Tensor  # [P] 0..2
    image: torch.Tensor  # [P] batch index
    anchor: torch.Tensor  # [P] 0..2 within the scale
    gj: torch.Tensor  # [P] cell row
    gi: torch.Tensor  # [P] cell column
    box: torch.Tensor  # [P, 4] cx, cy (relative to the cell's corner), w, h; grid units
    cls: torch.Tensor  # [P] class index
    anchor_wh: torch.Tensor  # [P, 2] grid units

    def at_scale(self, i: int) -> Assignment:
        m = self.scale == i
        return Assignment(*(getattr(self, f)[m] for f in self.__dataclass_fields__))


def shape_iou(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """IoU of boxes and anchors sharing a centre: `[M, 2] x [K, 2] -> [M, K]`."""
    inter = torch.min(wh[:, None], anchors[None]).prod(2)
    return inter / (wh.prod(1)[:, None] + anchors.prod(1)[None] - inter)


def candidate_scores(
    gt: torch.Tensor, anchors: torch.Tensor, strides: torch.Tensor, center_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape IoU and combined score of `[M, 4]` cxcywh boxes against all `[S, A, 2]` anchors -> `[M, S*A]` each."""
    s, a = anchors.shape[:2]
    iou = shape_iou(gt[:, 2:], anchors.view(-1, 2))
    # The centre of the cell the box centre falls in, per scale, repeated per anchor.
    stride = strides.repeat_interleave(a)  # [S*A]
    cell_c = (torch.floor(gt[:, None, :2] / stride[None, :, None]) + 0.5) * stride[None, :, None]
    rho2 = (gt[:, None, :2] - cell_c).pow(2).sum(2)
    half_gt, half_an = gt[:, None, 2:] / 2, anchors.view(1, -1, 2) / 2
    lo = torch.min(gt[:, None, :2] - half_gt, cell_c - half_an)
    hi = torch.max(gt[:, None, :2] + half_gt, cell_c + half_an)
    diag2 = (hi - lo).pow(2).sum(2).clamp_min(1e-9)
    return iou, iou - center_weight * rho2 / diag2


def reachable(wh: torch.Tensor, anchors: torch.Tensor, anchor_t: float) -> torch.Tensor:
    """Boolean `[M, K]`: box sizes `[M, 2]` within `anchor_t` x of anchors `[K, 2]` in width and height."""
    if anchor_t <= 0:
        return torch.ones(len(wh), len(anchors), dtype=torch.bool, device=wh.device)
    r = wh[:, None] / anchors[None]
    return torch.max(r, 1 / r).amax(2) < anchor_t


def select_pairs(
    gt: torch.Tensor,
    anchors: torch.Tensor,
    strides: torch.Tensor,
    strategy: str,
    iou_threshold: float,
    center_weight: float,
    anchor_t: float = 0.0,
) -> torch.Tensor:
    """Boolean `[M, S*A]`: which (scale, anchor) pairs each box is positive for."""
    iou, score = candidate_scores(gt, anchors, strides, center_weight)
    ok = reachable(gt[:, 2:], anchors.view(-1, 2), anchor_t)
    if strategy == "size":
        s, a = anchors.shape[:2]
        # A scale's typical size: geometric mean of its anchors' sqrt-areas.
        ref = anchors.prod(2).sqrt().log().mean(1)  # [S]
        size = gt[:, 2:].prod(1).clamp_min(1e-9).sqrt().log()
        scale = (size[:, None] - ref[None]).abs().argmin(1)  # [M]
        within = iou.view(-1, s, a).gather(1, scale.view(-1, 1, 1).expand(-1, 1, a)).squeeze(1)
        best = scale * a + within.argmax(1)
        return torch.nn.functional.one_hot(best, s * a).bool() & ok
    if strategy != "iou_center":
        raise ValueError(f"unknown assignment strategy {strategy!r}")
    score = score.masked_fill(~ok, float("-inf"))
    best = torch.nn.functional.one_hot(score.argmax(1), score.shape[1]).bool()
    return (best | (iou > iou_threshold)) & ok


def assign(
    targets: torch.Tensor,
    anchors: torch.Tensor,
    strides: torch.Tensor,
    grid_sizes: list[tuple[int, int]],
    strategy: str = "iou_center",
    iou_threshold: float = 0.2,
    center_weight: float = 0.5,
    anchor_t: float = 0.0,
) -> Assignment:
    """Positives for a batch.

    targets: `[M, 6]` rows (image index, class, cx, cy, w, h) in input pixels.
    anchors: `[S, A, 2]` pixels; strides: `[S]`; grid_sizes: (H, W) per scale.
    """
    device = targets.device
    s, a = anchors.shape[:2]
    pairs = select_pairs(targets[:, 2:], anchors, strides, strategy, iou_threshold, center_weight, anchor_t)
    g, k = pairs.nonzero(as_tuple=True)  # box index, flat (scale, anchor) index
    scale, anchor = k // a, k % a
    stride = strides[scale]
    gxy = targets[g, 2:4] / stride[:, None]  # grid units
    gwh = targets[g, 4:6] / stride[:, None]
    sizes = torch.tensor(grid_sizes, device=device, dtype=torch.float32).flip(1)[scale]  # (W, H)
    # YOLOv5's neighbour cells: the adjacent cell on the side the centre leans to, per axis.
    frac, inv = gxy % 1, (sizes - gxy) % 1
    near_lo = (frac < 0.5) & (gxy > 1)
    near_hi = (inv < 0.5) & ((sizes - gxy) > 1)
    use = torch.stack(
        (torch.ones_like(near_lo[:, 0]), near_lo[:, 0], near_lo[:, 1], near_hi[:, 0], near_hi[:, 1])
    )
    rep, idx = use.nonzero(as_tuple=True)  # [5, P] -> which offset, which pair
    offsets = _OFFSETS.to(device)[rep]
    gxy, gwh = gxy[idx], gwh[idx]
    gij = (gxy - offsets).long()
    size_i = sizes[idx].long()
    gi = gij[:, 0].clamp(min=torch.zeros_like(size_i[:, 0]), max=size_i[:, 0] - 1)
    gj = gij[:, 1].clamp(min=torch.zeros_like(size_i[:, 1]), max=size_i[:, 1] - 1)
    scale_i, anchor_i = scale[idx], anchor[idx]
    return Assignment(
        scale=scale_i,
        image=targets[g[idx], 0].long(),
        anchor=anchor_i,
        gj=gj,
        gi=gi,
        box=torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1),
        cls=targets[g[idx], 1].long(),
        anchor_wh=anchors[scale_i, anchor_i] / stride[idx, None],
    )
