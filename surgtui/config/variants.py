"""Variant presets: named sets of overrides on the schema's defaults.

A file naming a variant gets every key from the preset; its own keys override
field by field. The defaults already hold the seed's recommendations, so most
presets only change the model size or switch one improvement on or off.
"""

from __future__ import annotations

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
    # The settings from before the seed's improvements, as a baseline to compare against: also
    # without the engine's later fixes (YOLOv5 loss scaling, anchor_t, AdamW, mosaic, rect, autoanchor).
    "YOLOv5-Legacy": {
        "model": {"backbone": "resnet18", "neck_width": 128, "neck_depth": 1, "autoanchor": False},
        "loss": {
            "coord": 0.05,
            "conf": 1.0,
            "class": 0.5,
            "assignment": "size",
            "yolov5_scaling": False,
            "anchor_t": 0.0,
        },
        "optim": {"backbone_lr_mult": 1.0, "optimizer": "adam"},
        "schedule": {"warmup_frac": 0.0, "kind": "constant"},
        "data": {"rect": False, "augment": {"mosaic": 0.0}},
    },
}

DEFAULT_VARIANT = "YOLOv5-Small"
