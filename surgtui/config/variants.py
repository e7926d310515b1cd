"""Variant presets: named sets of overrides on the schema's defaults.

A file naming a variant gets every key from the preset; its own keys override
field by field. The defaults already hold the seed's recommendations, so most
presets only change the model size or switch one improvement on or off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    # Nano: RegNetX-400MF (ImageNet weights in torchvision) at a sixth of ResNet-18's FLOPs.
    "YOLOv5-Nano": {"model": {"backbone": "regnet_x_400mf", "neck_width": 64, "neck_depth": 1}},
    "YOLOv5-Small": {"model": {"backbone": "resnet18", "neck_width": 128, "neck_depth": 1}},
    "YOLOv5-Medium": {"model": {"backbone": "resnet34", "neck_width": 192, "neck_depth": 2}},
    "YOLOv5-Large": {"model": {"backbone": "resnet50", "neck_width": 256, "neck_depth": 3}},
    "YOLOv5-XLarge": {"model": {"backbone": "resnet50", "neck_width": 320, "neck_depth": 4}},
    "YOLOv5-Focal": {
        "model": {"backbone": "resnet18", "neck_width": 128, "neck_depth": 1},
        "loss": {"focal": True},
    },
    "YOLOv5-Smooth": {
        "model": {"backbone": "resnet18", "neck_width": 128, "neck_depth": 1},
        "loss": {"label_smoothing": 0.1},
    },
    # The settings from before the seed's improvements, as a baseline to compare against: every
    # improvement switched off, and the engine's later fixes too (both tables below).
    "YOLOv5-Legacy": {"model": {"backbone": "resnet18", "neck_width": 128, "neck_depth": 1}},
}


@dataclass(frozen=True)
class Switch:
    """One improvement: what it is (as the seed sets it), and the dotted keys that switch it off."""

    label: str
    off: dict[str, Any]


# The seed's training improvements (shared/seed/training-improvements.md): what `surgtui ablate`
# switches off one at a time.
IMPROVEMENTS: dict[str, Switch] = {
    "loss_weights": Switch(
        "loss weights 0.1/1.5/0.8",
        {"loss.coord": 0.05, "loss.conf": 1.0, "loss.class": 0.5},
    ),
    "backbone_lr": Switch("backbone lr x0.1", {"optim.backbone_lr_mult": 1.0}),
    "warmup_cosine": Switch(
        "warmup + cosine schedule", {"schedule.kind": "constant", "schedule.warmup_frac": 0.0}
    ),
    "iou_center": Switch("iou_center assignment", {"loss.assignment": "size"}),
    "head_bn": Switch("head BN momentum 0.03, eps 1e-4", {"model.bn_momentum": 0.1, "model.bn_eps": 1e-5}),
    "grad_clip": Switch("gradient clipping at 10", {"optim.grad_clip": 0.0}),
    "weight_decay": Switch("weight decay 5e-4", {"optim.weight_decay": 0.0}),
}
# Fixes the engine made after the seed (YOLOv5 loss scaling, anchor_t, AdamW, autoanchor, mosaic, rect):
# off in YOLOv5-Legacy as well, on in every ablation arm but `legacy`.
ENGINE_FIXES: dict[str, Switch] = {
    "yolov5_scaling": Switch("YOLOv5 loss scaling", {"loss.yolov5_scaling": False}),
    "anchor_t": Switch("anchor_t shape filter", {"loss.anchor_t": 0.0}),
    "adamw": Switch("AdamW", {"optim.optimizer": "adam"}),
    "autoanchor": Switch("autoanchor", {"model.autoanchor": False}),
    "mosaic": Switch("mosaic", {"data.augment.mosaic": 0.0}),
    "rect": Switch("rectangular val batches", {"data.rect": False}),
}


def legacy_overrides() -> dict[str, Any]:
    """Dotted key -> value: every improvement and engine fix switched off."""
    return {k: v for s in (*IMPROVEMENTS.values(), *ENGINE_FIXES.values()) for k, v in s.off.items()}


def _nest(dotted: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *sections, last = key.split(".")
        node = out
        for part in sections:
            node = node.setdefault(part, {})
        node[last] = value
    return out


for _section, _values in _nest(legacy_overrides()).items():
    VARIANTS["YOLOv5-Legacy"].setdefault(_section, {}).update(_values)

DEFAULT_VARIANT = "YOLOv5-Small"
