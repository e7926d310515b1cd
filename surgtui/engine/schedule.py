"""Per-iteration learning rate: linear warmup, then cosine (or constant) to the end.

The lr is a pure function of the global step, so a resumed run gets exactly the
lr it would have had, with no scheduler state to save.
"""

from __future__ import annotations

import math

import torch

from surgtui.config.schema import ScheduleConfig


def warmup_steps(cfg: ScheduleConfig, total_steps: int) -> int:
    return round(cfg.warmup_frac * total_steps)


def lr_factor(step: int, total_steps: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the base lr for optimizer step `step` (1-based, 1..total_steps).

    warmup (steps 1..W): step / W, reaching 1 at W.
    cosine (W..T): min + (1 - min) * (1 + cos(pi * (step - W) / (T - W))) / 2, reaching min at T.
    constant: 1 after warmup.
    """
    w = warmup_steps(cfg, total_steps)
    if step <= w:
        return step / w
    if cfg.kind == "constant":
        return 1.0
    progress = min(1.0, (step - w) / max(1, total_steps - w))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def apply_lr(optimizer: torch.optim.Optimizer, step: int, total_steps: int, cfg: ScheduleConfig) -> None:
    f = lr_factor(step, total_steps, cfg)
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * f
