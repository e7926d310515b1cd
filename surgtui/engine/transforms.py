"""Letterbox resize and training augmentation (torchvision.transforms.v2: boxes follow the image)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from surgtui.config.schema import AugmentConfig

PAD_VALUE = 114  # YOLOv5's grey for letterbox borders and affine fill


def letterbox_geometry(width: int, height: int, size: int) -> tuple[float, int, int, int, int]:
    """(scale, new_w, new_h, pad_x, pad_y) that fit width×height into size×size, aspect kept, centred."""
    scale = min(size / width, size / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return scale, new_w, new_h, (size - new_w) // 2, (size - new_h) // 2


def letterbox(path: Path, size: int) -> tuple[Image.Image, float, int, int, tuple[int, int]]:
    """Load an image into a size×size RGB canvas, aspect kept, centred on grey.

    Returns (canvas, scale, pad_x, pad_y, (orig_h, orig_w)); a point (x, y) of the
    original maps to (x * scale + pad_x, y * scale + pad_y).
    """
    with Image.open(path) as im:
        width, height = im.size
        scale, new_w, new_h, pad_x, pad_y = letterbox_geometry(width, height, size)
        im.draft("RGB", (new_w, new_h))  # JPEG: decode at 1/2, 1/4 or 1/8 size when that is still large enough
        canvas = Image.new("RGB", (size, size), (PAD_VALUE,) * 3)
        canvas.paste(im.convert("RGB").resize((new_w, new_h), Image.BILINEAR), (pad_x, pad_y))
    return canvas, scale, pad_x, pad_y, (height, width)


class HSVJitter(v2.Transform):
    """Random hue shift, saturation and value gains (YOLOv5's hsv_h/s/v) as one 3×3 colour matrix.

    Hue turns colours about the grey axis by up to ±hue of a full turn; saturation blends
    with luma by a gain in 1 ± saturation; value scales by 1 ± value. One matrix product
    per image instead of an HSV round trip (ColorJitter's hue costs ~30 ms at 640 px).
    """

    _transformed_types = (tv_tensors.Image,)
    _LUMA = torch.tensor([0.299, 0.587, 0.114])

    def __init__(self, hue: float, saturation: float, value: float) -> None:
        super().__init__()
        self.gains = torch.tensor([hue, saturation, value])

    def make_params(self, flat_inputs: list) -> dict:
        h, s, v = ((torch.rand(3) * 2 - 1) * self.gains).tolist()
        c, sn, k = math.cos(2 * math.pi * h), math.sin(2 * math.pi * h), 1 / math.sqrt(3)
        # Rodrigues rotation about the grey axis (1, 1, 1)/√3.
        hue = c * torch.eye(3) + (1 - c) / 3 * torch.ones(3, 3) + sn * k * torch.tensor(
            [[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
        sat = (1 + s) * torch.eye(3) - s * self._LUMA.expand(3, 3)
        return {"matrix": (1 + v) * sat @ hue}

    def transform(self, inpt: torch.Tensor, params: dict) -> torch.Tensor:
        c, h, w = inpt.shape
        out = (params["matrix"] @ inpt.reshape(c, -1).float()).clamp_(0, 255).round_()
        return tv_tensors.wrap(out.to(torch.uint8).reshape(c, h, w), like=inpt)


def train_transforms(aug: AugmentConfig) -> v2.Compose:
    """Flip, scale/translate, colour on the letterboxed PIL canvas; then drop boxes pushed out or squashed.

    The geometry runs on the PIL image: PIL's affine costs ~7 ms at 640 px, the tensor
    path (grid_sample plus a fill mask) ~25 ms.
    """
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip(aug.hflip)]
    if aug.scale or aug.translate:
        steps.append(v2.RandomAffine(degrees=0, translate=(aug.translate, aug.translate),
                                     scale=(1 - aug.scale, 1 + aug.scale), interpolation=v2.InterpolationMode.BILINEAR,
                                     fill={Image.Image: PAD_VALUE, "others": 0}))
    steps.append(v2.ToImage())
    if aug.hsv_h or aug.hsv_s or aug.hsv_v:
        steps.append(HSVJitter(aug.hsv_h, aug.hsv_s, aug.hsv_v))
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=2)]
    return v2.Compose(steps)
