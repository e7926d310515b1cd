"""Optimizer with two named lr groups (`backbone`, `head`), each split by weight decay; model EMA."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from surgtui.config.schema import Experiment, OptimConfig


def split_decay(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decay, no_decay): weight decay only on conv/linear weights; never on BN or biases."""
    decay, no_decay = [], []
    for m in module.modules():
        for name, p in m.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_weight = name == "weight" and isinstance(m, (nn.Conv2d, nn.Linear))
            (decay if is_weight else no_decay).append(p)
    return decay, no_decay


def backbone_lr_mult(exp: Experiment) -> float:
    """`optim.backbone_lr_mult` for a trained backbone (pretrained, or `model.init_from`); 1.0 from scratch, where
    the trunk has as much to learn as the head (a tenth of the lr would leave most parameters nearly frozen)."""
    trained = exp.model.pretrained is not False or bool(exp.model.init_from)
    return exp.optim.backbone_lr_mult if trained else 1.0


def param_groups(model: nn.Module, cfg: OptimConfig, backbone_mult: float | None = None) -> list[dict]:
    """Four groups: backbone/head x decay/no-decay, each tagged with its lr-group `name`.

    `backbone_mult` defaults to `cfg.backbone_lr_mult` (see `backbone_lr_mult` for what the engine passes).
    """
    mult = cfg.backbone_lr_mult if backbone_mult is None else backbone_mult
    head = nn.ModuleList(m for n, m in model.named_children() if n != "backbone")
    groups = []
    for name, part, lr in (("backbone", model.backbone, cfg.lr * mult), ("head", head, cfg.lr)):
        decay, no_decay = split_decay(part)
        groups.append(
            {"params": decay, "lr": lr, "initial_lr": lr, "weight_decay": cfg.weight_decay, "name": name}
        )
        groups.append({"params": no_decay, "lr": lr, "initial_lr": lr, "weight_decay": 0.0, "name": name})
    return groups


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, backbone_mult: float | None = None
) -> torch.optim.Optimizer:
    """SGD (Nesterov), Adam (L2 decay coupled into the gradient) or AdamW (decoupled decay, the default)."""
    groups = param_groups(model, cfg, backbone_mult)
    # foreach: one fused kernel per op over all tensors instead of a Python loop per parameter.
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, foreach=True)
    # YOLOv5 uses its momentum hyper-parameter as Adam's beta1.
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999), foreach=True)


def group_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Current lr per named group (`backbone`, `head`)."""
    return {g["name"]: g["lr"] for g in optimizer.param_groups}


class ModelEMA:
    """YOLOv5's exponential moving average of weights and BN statistics.

    decay ramps up as `decay * (1 - exp(-updates / tau))`, so early (poor) weights
    are forgotten quickly instead of dominating the average for thousands of steps.
    """

    def __init__(
        self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0
    ) -> None:
        self.module = copy.deepcopy(model).eval()
        self.decay, self.tau, self.updates = decay, tau, updates
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        if self._pairs is None:
            ema_sd, sd = self.module.state_dict(), model.state_dict()
            self._pairs = [(ema_sd[k], sd[k]) for k in ema_sd if ema_sd[k].dtype.is_floating_point]
        self.updates += 1
        ema, cur = zip(*self._pairs)
        torch._foreach_lerp_(list(ema), list(cur), 1.0 - self.current_decay())  # ema += (1-d) (cur - ema)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = state["updates"]
