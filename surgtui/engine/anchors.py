"""Anchor fit: YOLOv5's best possible recall (BPR) check and k-means + genetic anchor evolution.

The engine calls `check_anchors(dataset_wh(train_records, img_size), model.anchors, loss.anchor_t,
model.autoanchor, log)` before training and copies a returned `[3, 3, 2]` tensor into `model.anchors`.
All sizes are in input pixels (the letterboxed `img_size` canvas).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from surgtui.data.formats import ImageRecord

BPR_THRESHOLD = 0.98  # below this best possible recall the anchors are refitted (YOLOv5)
DEFAULT_THR = 4.0  # ratio threshold used when loss.anchor_t = 0 (no ratio filter in the loss)
MIN_BOX_PX = 2.0  # YOLOv5 ignores boxes with both sides under 2 px when fitting
AUG_SCALE = (0.9, 1.1)  # YOLOv5's random scale of the box sizes in its check
KMEANS_ITERS = 30  # Lloyd iterations at most; box sizes converge in far fewer
MUTATION_PROB, MUTATION_SIGMA = 0.9, 0.1  # YOLOv5's evolution settings


def _ratio_metric(wh: np.ndarray, k: np.ndarray) -> np.ndarray:
    """YOLOv5's `[N, K]` fit of box to anchor: the worse of the two side ratios, each taken as <= 1."""
    rw, rh = (
        wh[:, :1] / k[None, :, 0],
        wh[:, 1:] / k[None, :, 1],
    )  # two [N, K] arrays: faster than one [N, K, 2]
    return np.minimum(np.minimum(rw, 1 / rw), np.minimum(rh, 1 / rh))


def _as_wh(x: np.ndarray | torch.Tensor) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return x.reshape(-1, 2).astype(np.float32)


def _threshold(thr: float) -> float:
    return thr if thr > 0 else DEFAULT_THR


def best_possible_recall(
    wh: np.ndarray | torch.Tensor, anchors: np.ndarray | torch.Tensor, thr: float
) -> tuple[float, float]:
    """(BPR, anchors above threshold) of `[N, 2]` box sizes against `[K, 2]` or `[S, A, 2]` anchors.

    A box can be learned by an anchor when both side ratios are within `thr` (the loss's
    `anchor_t`; 0 means 4.0 here). BPR is the share of boxes some anchor can learn; the second
    value is the mean number of such anchors per box. No boxes: (1.0, 0.0).
    """
    wh, k = _as_wh(wh), _as_wh(anchors)
    if not len(wh):
        return 1.0, 0.0
    x = _ratio_metric(wh, k)
    fits = x > 1 / _threshold(thr)
    return float(fits.any(1).mean()), float(fits.sum(1).mean())


def _fitness(wh: np.ndarray, k: np.ndarray, inv_thr: float) -> float:
    """YOLOv5's anchor fitness: mean over boxes of the best fit, counting 0 where it is under 1/thr."""
    best = _ratio_metric(wh, k).max(1)
    return float((best * (best > inv_thr)).mean())


def _kmeans(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; duplicate centres when there are fewer distinct points than n."""
    centres = [points[rng.integers(len(points))]]
    for _ in range(n - 1):
        d2 = ((points[:, None] - np.array(centres)[None]) ** 2).sum(2).min(1)
        total = d2.sum()
        i = rng.choice(len(points), p=d2 / total) if total > 0 else rng.integers(len(points))
        centres.append(points[i])
    c = np.array(centres)
    for _ in range(KMEANS_ITERS):
        nearest = ((points[:, None] - c[None]) ** 2).sum(2).argmin(1)
        counts = np.bincount(nearest, minlength=n)
        sums = np.stack([np.bincount(nearest, points[:, j], minlength=n) for j in range(2)], 1)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)  # empty: stay
        if np.allclose(moved, c):
            break
        c = moved
    return c


def kmean_anchors(
    wh: np.ndarray | torch.Tensor,
    n: int = 9,
    img_size: int = 640,
    thr: float = DEFAULT_THR,
    gen: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """`[n, 2]` anchors fitted to `[N, 2]` box sizes (input pixels), sorted by area, smallest first.

    YOLOv5's autoanchor: k-means on whitened sizes (sizes divided by their standard deviation)
    of the boxes with a side of at least 2 px, then `gen` generations of random multiplicative
    mutations, each kept when it raises the fitness (mean best fit above 1/thr). Anchors stay
    within [2, img_size] px (no box is larger than the input). Deterministic for a given seed.
    """
    wh0 = _as_wh(wh)
    wh = wh0[(wh0 >= MIN_BOX_PX).any(1)]
    if not len(wh):
        raise ValueError(f"no box with a side of at least {MIN_BOX_PX:g} px to fit anchors to")
    rng = np.random.default_rng(seed)
    s = wh.std(0)
    s[s == 0] = 1.0  # all boxes equally wide (or tall): nothing to whiten
    k = np.clip(_kmeans(wh / s, n, rng) * s, MIN_BOX_PX, img_size).astype(np.float32)
    inv_thr = 1 / _threshold(thr)
    f = _fitness(wh, k, inv_thr)
    for _ in range(gen):
        v = np.ones_like(k)
        while (v == 1).all():  # a mutation must change something
            v = (
                (rng.random(k.shape) < MUTATION_PROB)
                * rng.random()
                * rng.standard_normal(k.shape)
                * MUTATION_SIGMA
                + 1
            ).clip(0.3, 3.0)
        kg = (k * v).clip(MIN_BOX_PX, img_size).astype(np.float32)
        fg = _fitness(wh, kg, inv_thr)
        if fg > f:
            f, k = fg, kg
    return k[np.argsort(k.prod(1))]


def dataset_wh(records: Sequence[ImageRecord], img_size: int, seed: int = 0) -> np.ndarray:
    """`[N, 2]` box sizes of `records` at the model's input scale (letterbox `img_size / max(w, h)`).

    Each image's sizes are multiplied by one random factor in 0.9..1.1 (YOLOv5's check, which
    stands in for scale augmentation), drawn from `seed`, so the result is reproducible.
    """
    rng = np.random.default_rng(seed)
    sizes = [
        (r.boxes[:, 2:4] - r.boxes[:, 0:2]) * (img_size / max(r.width, r.height)) * rng.uniform(*AUG_SCALE)
        for r in records
    ]
    return np.concatenate(sizes).astype(np.float32).reshape(-1, 2) if sizes else np.zeros((0, 2), np.float32)


def check_anchors(
    wh: np.ndarray | torch.Tensor,
    anchors: torch.Tensor,
    thr: float,
    autoanchor: bool,
    log: Callable[[str, str], object],
) -> torch.Tensor | None:
    """Check `[S, A, 2]` anchors against the training boxes; new anchors shaped like them, or None to keep them.

    Logs the BPR of the current anchors (`log(level, message)`). Under 0.98 with `autoanchor`,
    fits new anchors (k-means + evolution) and returns them, smallest area on the first scale,
    when they reach a higher BPR; without `autoanchor`, warns.
    """
    t = _threshold(thr)
    wh = _as_wh(wh)
    if not len(wh):
        log("info", "anchors: no boxes in the training set to check the priors against")
        return None
    bpr, aat = best_possible_recall(wh, anchors, t)
    log(
        "info",
        f"anchors: best possible recall {bpr:.3f} ({aat:.1f} anchors/box above 1/{t:g}) "
        "with the current priors",
    )
    if bpr >= BPR_THRESHOLD:
        return None
    if not autoanchor:
        log(
            "warning",
            f"anchors: best possible recall {bpr:.3f} < {BPR_THRESHOLD}: the anchors fit these boxes "
            "poorly; set model.autoanchor = true to fit anchors to the data",
        )
        return None
    if not (wh >= MIN_BOX_PX).any():
        log("warning", f"anchors: every box is under {MIN_BOX_PX:g} px; keeping the priors")
        return None
    # No anchor side needs to exceed the largest box side: a larger one fits every box worse.
    new = kmean_anchors(wh, n=anchors.numel() // 2, img_size=math.ceil(wh.max()), thr=t)
    new_bpr, new_aat = best_possible_recall(wh, new, t)
    if new_bpr <= bpr:
        log(
            "info",
            f"anchors: fitted anchors reach best possible recall {new_bpr:.3f}, no better; "
            "keeping the priors",
        )
        return None
    sizes = ", ".join(f"{w:.0f}x{h:.0f}" for w, h in new.tolist())
    log(
        "info",
        f"anchors: fitted anchors reach best possible recall {new_bpr:.3f} "
        f"({new_aat:.1f} anchors/box above 1/{t:g}): {sizes}",
    )
    return torch.tensor(new, dtype=anchors.dtype, device=anchors.device).view_as(anchors)
