"""Letterbox resize, 4-image mosaic and training augmentation (torchvision.transforms.v2: boxes follow the image)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from surgtui.config.schema import AugmentConfig

PAD_VALUE = 114  # YOLOv5's grey for letterbox borders and affine fill
STRIDE = 32  # the model's largest stride: rect canvases are a multiple of it


def letterbox_canvas(width: int, height: int, size: int, rect: bool = False) -> tuple[int, int]:
    """(canvas_w, canvas_h) of a letterboxed width×height image.

    Square: size×size. Rect: `size` on the long side, the short side's resized length
    rounded up to a multiple of STRIDE (640×360 at 320 → 320×192).
    """
    if not rect:
        return size, size
    _, new_w, new_h = _fit(width, height, size)
    return min(size, math.ceil(new_w / STRIDE) * STRIDE), min(size, math.ceil(new_h / STRIDE) * STRIDE)


def _fit(width: int, height: int, size: int) -> tuple[float, int, int]:
    scale = min(size / width, size / height)
    return scale, max(1, round(width * scale)), max(1, round(height * scale))


def letterbox_geometry(
    width: int, height: int, size: int, *, rect: bool = False
) -> tuple[float, int, int, int, int]:
    """(scale, new_w, new_h, pad_x, pad_y) that fit width×height into its canvas, aspect kept, centred.

    The canvas is size×size, or with `rect` the `letterbox_canvas` rectangle; either way
    scale = size / max(width, height).
    """
    scale, new_w, new_h = _fit(width, height, size)
    canvas_w, canvas_h = letterbox_canvas(width, height, size, rect)
    return scale, new_w, new_h, (canvas_w - new_w) // 2, (canvas_h - new_h) // 2


def load_resized(path: Path, size: int) -> tuple[Image.Image, float, tuple[int, int]]:
    """An RGB image resized so its long side is `size`, aspect kept: (image, scale, (orig_h, orig_w))."""
    with Image.open(path) as im:
        width, height = im.size
        scale, new_w, new_h = _fit(width, height, size)
        im.draft(
            "RGB", (new_w, new_h)
        )  # JPEG: decode at 1/2, 1/4 or 1/8 size when that is still large enough
        return im.convert("RGB").resize((new_w, new_h), Image.BILINEAR), scale, (height, width)


def letterbox(
    path: Path, size: int, rect: bool = False
) -> tuple[Image.Image, float, int, int, tuple[int, int]]:
    """Load an image into its letterbox canvas (size×size, or the rect one), aspect kept, centred on grey.

    Returns (canvas, scale, pad_x, pad_y, (orig_h, orig_w)); a point (x, y) of the
    original maps to (x * scale + pad_x, y * scale + pad_y).
    """
    resized, scale, (height, width) = load_resized(path, size)
    canvas = Image.new("RGB", letterbox_canvas(width, height, size, rect), (PAD_VALUE,) * 3)
    _, _, _, pad_x, pad_y = letterbox_geometry(width, height, size, rect=rect)
    canvas.paste(resized, (pad_x, pad_y))
    return canvas, scale, pad_x, pad_y, (height, width)


def mosaic4(
    images: list[Image.Image],
    boxes: list[torch.Tensor],
    size: int,
    scale: float = 0.0,
    translate: float = 0.0,
    canvas: tuple[int, int] | None = None,
) -> tuple[Image.Image, torch.Tensor]:
    """YOLOv5's 4-image mosaic: (W×H RGB image, boxes float32 [N, 4] xyxy in its pixels).

    The output is `canvas` (W, H), by default size×size. `images` (long side about `size`)
    go top-left, top-right, bottom-left, bottom-right around a random centre of a 2W×2H
    grey canvas, each cut where it leaves the canvas; `boxes[k]` (xyxy in pixels of
    `images[k]`) follow. Then one affine, scale in 1 ± `scale` about the canvas centre and
    a shift up to ±`translate`·W (·H vertically), samples the W×H output (the big canvas'
    centre lands at the output's centre, shifted). Boxes come back concatenated in
    `images` order, not yet clamped to the output: the caller clamps and drops slivers
    (ClampBoundingBoxes, SanitizeBoundingBoxes).
    """
    out_w, out_h = canvas or (size, size)
    big_w, big_h = 2 * out_w, 2 * out_h
    big = Image.new("RGB", (big_w, big_h), (PAD_VALUE,) * 3)
    xc = int(torch.randint(out_w // 2, out_w + out_w // 2 + 1, ()).item())
    yc = int(torch.randint(out_h // 2, out_h + out_h // 2 + 1, ()).item())
    placed = []
    for k, (im, b) in enumerate(zip(images, boxes)):
        w, h = im.size
        # Corners (x1, y1, x2, y2) on the canvas, the image's corner at the centre, cut at the canvas edge.
        x1, x2 = (max(xc - w, 0), xc) if k in (0, 2) else (xc, min(xc + w, big_w))
        y1, y2 = (max(yc - h, 0), yc) if k in (0, 1) else (yc, min(yc + h, big_h))
        # The part of the image that stays: its right/bottom part on the left/top, left/top part otherwise.
        u = w - (x2 - x1) if k in (0, 2) else 0
        v = h - (y2 - y1) if k in (0, 1) else 0
        big.paste(im.crop((u, v, u + x2 - x1, v + y2 - y1)), (x1, y1))
        shifted = b.reshape(-1, 4).float() + torch.tensor([x1 - u, y1 - v] * 2, dtype=torch.float32)
        # Keep only what lies on the kept part: boxes on the cut-off part shrink to nothing.
        lo = torch.tensor([x1, y1] * 2, dtype=torch.float32)
        hi = torch.tensor([x2, y2] * 2, dtype=torch.float32)
        placed.append(torch.minimum(torch.maximum(shifted, lo), hi))
    gain = 1 + (torch.rand(()).item() * 2 - 1) * scale
    tx, ty = ((torch.rand(2) * 2 - 1) * translate * torch.tensor([out_w, out_h])).tolist()
    # Output (x', y') = gain · ((x, y) - (W, H)) + (W/2 + tx, H/2 + ty); PIL wants the inverse map.
    inv = 1 / gain
    image = big.transform(
        (out_w, out_h),
        Image.AFFINE,
        (inv, 0, out_w - (out_w / 2 + tx) * inv, 0, inv, out_h - (out_h / 2 + ty) * inv),
        resample=Image.BILINEAR,
        fillcolor=(PAD_VALUE,) * 3,
    )
    out = torch.cat(placed) if placed else torch.zeros(0, 4)
    out = (out - torch.tensor([out_w, out_h] * 2)) * gain + torch.tensor([out_w / 2 + tx, out_h / 2 + ty] * 2)
    return image, out.float()


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
        hue = (
            c * torch.eye(3)
            + (1 - c) / 3 * torch.ones(3, 3)
            + sn * k * torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
        )
        sat = (1 + s) * torch.eye(3) - s * self._LUMA.expand(3, 3)
        return {"matrix": (1 + v) * sat @ hue}

    def transform(self, inpt: torch.Tensor, params: dict) -> torch.Tensor:
        c, h, w = inpt.shape
        out = (params["matrix"] @ inpt.reshape(c, -1).float()).clamp_(0, 255).round_()
        return tv_tensors.wrap(out.to(torch.uint8).reshape(c, h, w), like=inpt)


def train_transforms(aug: AugmentConfig, affine: bool = True) -> v2.Compose:
    """Flip, scale/translate, colour on the letterboxed PIL canvas; then drop boxes pushed out or squashed.

    The geometry runs on the PIL image: PIL's affine costs ~7 ms at 640 px, the tensor
    path (grid_sample plus a fill mask) ~25 ms. `affine=False` leaves out scale/translate
    (a mosaic has had its own).
    """
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip(aug.hflip)]
    if affine and (aug.scale or aug.translate):
        steps.append(
            v2.RandomAffine(
                degrees=0,
                translate=(aug.translate, aug.translate),
                scale=(1 - aug.scale, 1 + aug.scale),
                interpolation=v2.InterpolationMode.BILINEAR,
                fill={Image.Image: PAD_VALUE, "others": 0},
            )
        )
    steps.append(v2.ToImage())
    if aug.hsv_h or aug.hsv_s or aug.hsv_v:
        steps.append(HSVJitter(aug.hsv_h, aug.hsv_s, aug.hsv_v))
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=2)]
    return v2.Compose(steps)
