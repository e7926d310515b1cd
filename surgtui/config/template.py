"""The commented starting point that `surgtui new NAME` writes."""

from __future__ import annotations

TEMPLATE = """# {name}: a surgtui experiment.
# Keys not written here come from the variant preset (docs/experiments.md lists them all);
# `surgtui validate {path} --resolved` prints the full experiment as a run would freeze it.
name = "{name}"
description = ""
# YOLOv5-Nano/-Small/-Medium/-Large/-XLarge (model size), YOLOv5-Focal, YOLOv5-Smooth, YOLOv5-Legacy
variant = "{variant}"

[model]
# resnet18/34/50 or regnet_x_400mf (Nano); pretrained = true (ImageNet), false, or a path to weights
# backbone = "resnet18"
pretrained = true
img_size = 640            # multiple of 32; frames are letterboxed, keeping 16:9

[loss]
# coord = 0.1             # box (1 - CIoU) weight
# conf = 1.5              # objectness weight
# class = 0.8             # classification weight
# focal = false           # focal loss on objectness and class
# label_smoothing = 0.0

[optim]
lr = 0.001                # head learning rate; the backbone gets lr x backbone_lr_mult
# backbone_lr_mult = 0.1
# weight_decay = 0.0005
# grad_clip = 10.0

[schedule]
# warmup_frac = 0.1       # linear warmup over this share of all steps, then cosine
# kind = "cosine"

[train]
epochs = 50
batch_size = 4
device = "auto"           # auto, cpu, cuda, cuda:N

[data]
source = "synthetic"      # built-in scenes, or a COCO / YOLO folder or data.yaml (docs/data.md)
# format = "auto"         # auto, coco, yolo, simsurgskill (a prepared set)
# train_split = "train"
# val_split = "val"
# classes_map = {{ "Needle Holder" = "needle_driver", suture = "drop" }}
# train = {{ annotations = "ann/train.json", images = "frames/train" }}   # splits by path instead
# val = {{ annotations = "ann/val.json", images = "frames/val" }}
"""


def render_template(name: str, variant: str, path: str) -> str:
    return TEMPLATE.format(name=name, variant=variant, path=path)
