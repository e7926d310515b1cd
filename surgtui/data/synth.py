"""Procedural frames that look like the da Vinci simulator's needle-driving scenes.

numpy + PIL only. A frame is tissue (colour patches, vessels, specular spots, light
fall-off) with 0–2 curved suture needles and 0–2 needle drivers (a shaft entering
from the border, a metal wrist and two jaws), sometimes a needle held in a driver's
jaws, sometimes a tissue fold in front. Each box is tight around the object's
*visible* pixels: its rendered mask minus whatever is drawn over it. All sizes scale
with the frame width. Everything is a pure function of (seed, split, video, frame).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Bump when the pictures or boxes change: the synthetic-data cache is keyed on it.
GENERATOR_VERSION = 1

NEEDLE, DRIVER = "needle", "needle_driver"
MIN_VISIBLE_PIXELS = 4  # fewer visible pixels than this and the object gets no box


@dataclass(frozen=True)
class Box:
    """One labelled object: top-left corner and size in integer pixels."""

    cls: str  # "needle" or "needle_driver"
    x: int
    y: int
    w: int
    h: int
    orientation: str  # SimSurgSkill's free-text field: which side holds it


@dataclass
class _Layer:
    """An object (or occluder) drawn in a crop of the frame."""

    x0: int
    y0: int
    mask: np.ndarray  # bool, crop-sized
    colour: np.ndarray  # float32 crop×3
    cls: str | None  # None: an occluder with no box
    orientation: str = ""


def frame_rng(seed: int, split: str, video: int, frame: int = -1) -> np.random.Generator:
    """The random stream of one video (frame = -1) or one frame: independent of generation order."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), video, frame + 1])


def video_frames(
    seed: int, split: str, video: int, n_frames: int, width: int, height: int
) -> Iterator[tuple[np.ndarray, list[Box]]]:
    """Yield (H×W×3 uint8 RGB frame, boxes) for the frames of one synthetic video."""
    background = render_background(frame_rng(seed, split, video), width, height)
    for frame in range(n_frames):
        yield render_frame(background, frame_rng(seed, split, video, frame))


# ---------------------------------------------------------------- background


def _noise(rng: np.random.Generator, w: int, h: int, cells: int, channels: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    gw, gh = cells + 1, max(2, round(cells * h / w) + 1)
    grid = rng.integers(0, 256, (gh, gw, 3), dtype=np.uint8)
    up = np.asarray(Image.fromarray(grid).resize((w, h), Image.BICUBIC), dtype=np.float32)
    return up[:, :, :channels] / 127.5 - 1.0


def _vessels(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Alpha map (0..1) of branching vessels drawn as wobbly random walks."""
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    step = max(2.0, w / 40)
    walks = [
        (rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 2 * math.pi), rng.uniform(1.5, 4.0))
        for _ in range(int(rng.integers(3, 8)))
    ]
    while walks:
        x, y, angle, width = walks.pop()
        points = [(x, y)]
        for _ in range(int(rng.integers(8, 30))):
            angle += rng.normal(0, 0.35)
            x, y = x + step * math.cos(angle), y + step * math.sin(angle)
            points.append((x, y))
            if width > 1.2 and rng.random() < 0.08:  # a thinner side branch
                walks.append((x, y, angle + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2), width * 0.6))
        draw.line(
            points, fill=int(rng.uniform(110, 200)), width=max(1, round(width * w / 640)), joint="curve"
        )
    return np.asarray(layer.filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)[:, :, None] / 255


def render_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Tissue-like H×W×3 uint8 background, drawn at half size and upsampled (cheap, and soft like optics)."""
    w, h = max(16, (width + 1) // 2), max(16, (height + 1) // 2)
    base = np.array([rng.uniform(150, 205), rng.uniform(65, 110), rng.uniform(70, 115)], np.float32)
    img = base + 28 * _noise(rng, w, h, cells=4, channels=3)
    img += 14 * _noise(rng, w, h, cells=24, channels=1)
    img += 4 * rng.standard_normal((h, w, 1)).astype(np.float32)
    vessel = _vessels(rng, w, h) * 0.75
    img = img * (1 - vessel) + np.array([115, 25, 35], np.float32) * vessel
    # Endoscope light falls off away from the (slightly off-centre) optical axis.
    yy, xx = np.ogrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    cx, cy = rng.uniform(-0.2, 0.2, 2)
    img *= np.clip(1 - 0.35 * ((xx - cx) ** 2 + (yy - cy) ** 2), 0.3, 1)[:, :, None].astype(np.float32)
    spots = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(spots)
    for _ in range(int(rng.integers(4, 16))):  # wet-tissue glints
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 2.5) * w / 320
        draw.ellipse((x - r, y - r * 0.6, x + r, y + r * 0.6), fill=255)
    glint = np.asarray(spots.filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)[:, :, None] / 255
    img += 230 * glint
    small = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return np.asarray(small.resize((width, height), Image.BILINEAR))


# ---------------------------------------------------------------- objects


def _crop_of(points: np.ndarray, pad: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Integer frame rectangle (x0, y0, x1, y1) around `points`, clipped; None if off-frame."""
    x0 = max(0, math.floor(points[:, 0].min() - pad))
    y0 = max(0, math.floor(points[:, 1].min() - pad))
    x1 = min(width, math.ceil(points[:, 0].max() + pad) + 1)
    y1 = min(height, math.ceil(points[:, 1].max() + pad) + 1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _pixel_grid(crop: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = crop
    return np.ogrid[y0 + 0.5 : y1 + 0.5 : 1.0, x0 + 0.5 : x1 + 0.5 : 1.0][::-1]


def _needle(rng: np.random.Generator, width: int, height: int, grip: np.ndarray | None) -> _Layer | None:
    """A curved suture needle: an elliptic arc (a circle seen at a slant), metallic shading, a thin tip."""
    r = rng.uniform(0.03, 0.05) * width
    b = r * rng.uniform(0.65, 1.0)
    span = rng.uniform(math.radians(140), math.radians(220))
    rot, phi0 = rng.uniform(0, 2 * math.pi, 2)
    thick = max(2.0, rng.uniform(0.0025, 0.004) * width)
    c, s = math.cos(rot), math.sin(rot)
    if grip is None:
        centre = rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height])
    else:  # put a point of the arc between the jaws
        phi_g = phi0 + span * rng.uniform(0.3, 0.6)
        u, v = r * math.cos(phi_g), b * math.sin(phi_g)
        centre = grip - np.array([c * u - s * v, s * u + c * v])
    phis = np.linspace(phi0, phi0 + span, max(16, int(span * r / 2)))
    u, v = r * np.cos(phis), b * np.sin(phis)
    points = np.stack([centre[0] + c * u - s * v, centre[1] + s * u + c * v], axis=1)
    crop = _crop_of(points, thick, width, height)
    if crop is None:
        return None
    x0, y0, x1, y1 = crop
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(mask)
    local = [tuple(p) for p in points - (x0, y0)]
    tip_from = int(len(local) * 0.85)
    draw.line(local[: tip_from + 1], fill=255, width=round(thick), joint="curve")
    draw.line(local[tip_from:], fill=255, width=max(1, round(thick * 0.55)))
    # Shading: a cylinder across the wire, a glint where the arc faces the light.
    gx, gy = _pixel_grid(crop)
    du, dv = gx - centre[0], gy - centre[1]
    pu, pv = c * du + s * dv, -s * du + c * dv
    radial = np.sqrt((pu / r) ** 2 + (pv / b) ** 2)
    across = np.clip((radial - 1) * (r + b) / thick, -1, 1)
    facing = np.maximum(np.cos(np.arctan2(pv / b, pu / r) - rng.uniform(0, 2 * math.pi)), 0) ** 6
    cylinder = np.sqrt(1 - across**2)
    metal = np.array([rng.uniform(165, 200)] * 3, np.float32) + rng.uniform(-8, 8, 3).astype(np.float32)
    shade = (0.45 + 0.55 * cylinder) + 0.5 * facing * cylinder
    colour = metal * shade[:, :, None].astype(np.float32)
    return _Layer(x0, y0, np.asarray(mask) > 0, colour, NEEDLE)


def _driver(rng: np.random.Generator, width: int, height: int, side: str) -> tuple[_Layer | None, np.ndarray]:
    """A needle driver entering from `side`: black shaft, metal wrist, two jaws. Returns (layer, grip point)."""
    sw = rng.uniform(0.035, 0.055) * width
    tip = rng.uniform([0.2 * width, 0.2 * height], [0.8 * width, 0.85 * height])
    along = {
        "left": (-sw, rng.uniform(0.1, 1.1) * height),
        "right": (width + sw, rng.uniform(0.1, 1.1) * height),
        "top": (rng.uniform(0.05, 0.95) * width, -sw),
    }[side]
    entry = np.array(along)
    d = (tip - entry) / max(np.linalg.norm(tip - entry), 1e-6)
    n = np.array([-d[1], d[0]])
    jaw_len, wrist_len = sw * rng.uniform(1.3, 1.9), sw * rng.uniform(0.6, 0.9)
    wrist_end = tip - d * jaw_len
    shaft_end = wrist_end - d * wrist_len
    start = entry - d * sw
    shaft = [start + n * sw / 2, shaft_end + n * sw / 2, shaft_end - n * sw / 2, start - n * sw / 2]
    wrist = [
        shaft_end + n * 0.42 * sw,
        wrist_end + n * 0.36 * sw,
        wrist_end - n * 0.36 * sw,
        shaft_end - n * 0.42 * sw,
    ]
    opening = rng.uniform(0, math.radians(25))
    jaws = []
    for j in (-1, 1):
        a = j * opening / 2
        dj = np.array([d[0] * math.cos(a) - d[1] * math.sin(a), d[0] * math.sin(a) + d[1] * math.cos(a)])
        nj = np.array([-dj[1], dj[0]])
        base = wrist_end + n * j * 0.14 * sw
        end = base + dj * jaw_len
        jaws.append(
            [base + nj * 0.17 * sw, end + nj * 0.05 * sw, end - nj * 0.05 * sw, base - nj * 0.17 * sw]
        )
    grip = wrist_end + d * jaw_len * rng.uniform(0.35, 0.6)
    crop = _crop_of(np.array(shaft + wrist + jaws[0] + jaws[1]), 1, width, height)
    if crop is None:
        return None, grip
    x0, y0, x1, y1 = crop
    parts = []
    for polygons in ([shaft], [wrist], jaws):
        part = Image.new("L", (x1 - x0, y1 - y0), 0)
        draw = ImageDraw.Draw(part)
        for poly in polygons:
            draw.polygon([tuple(p - (x0, y0)) for p in poly], fill=255)
        parts.append(np.asarray(part) > 0)
    shaft_mask, wrist_mask, jaw_mask = parts
    gx, gy = _pixel_grid(crop)
    lateral = np.clip(((gx - entry[0]) * n[0] + (gy - entry[1]) * n[1]) / (sw / 2), -1, 1)
    cylinder = np.sqrt(1 - lateral**2)[:, :, None].astype(np.float32)
    stripe = np.exp(-(((lateral - 0.4) / 0.15) ** 2))[:, :, None].astype(np.float32)
    dark = np.array([rng.uniform(30, 55)] * 3, np.float32) + (0, 0, rng.uniform(0, 12))
    metal = np.array([rng.uniform(140, 185)] * 3, np.float32)
    colour = np.where(
        shaft_mask[:, :, None],
        dark * (0.4 + 0.6 * cylinder) + 110 * stripe,
        metal * (0.45 + 0.55 * cylinder) + 60 * stripe,
    )
    layer = _Layer(x0, y0, shaft_mask | wrist_mask | jaw_mask, colour.astype(np.float32), DRIVER, side)
    return layer, grip


def _tissue_fold(rng: np.random.Generator, frame: np.ndarray, near: _Layer) -> _Layer | None:
    """A fold of tissue in front of part of `near`: a blob textured with shifted tissue, shaded at its rim."""
    height, width = frame.shape[:2]
    cy = near.y0 + rng.uniform(0, near.mask.shape[0])
    cx = near.x0 + rng.uniform(0, near.mask.shape[1])
    radius = rng.uniform(0.04, 0.1) * width
    angles = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    a, b = rng.uniform(0, 2 * math.pi, 2)
    radii = radius * (1 + 0.25 * np.sin(2 * angles + a) + 0.12 * np.sin(3 * angles + b))
    points = np.stack([cx + radii * np.cos(angles), cy + radii * 0.7 * np.sin(angles)], axis=1)
    crop = _crop_of(points, 0, width, height)
    if crop is None:
        return None
    x0, y0, x1, y1 = crop
    mask_img = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask_img).polygon([tuple(p - (x0, y0)) for p in points], fill=255)
    rim = np.asarray(mask_img.filter(ImageFilter.GaussianBlur(max(1.0, radius / 6))), np.float32) / 255
    texture = frame[y0:y1, x0:x1][::-1, ::-1].astype(np.float32)  # tissue from the same view, turned over
    colour = texture * (0.55 + 0.45 * rim[:, :, None]) * rng.uniform(0.85, 1.05)
    return _Layer(x0, y0, np.asarray(mask_img) > 0, colour.astype(np.float32), None)


def _shadow(frame: np.ndarray, layer: _Layer, offset: tuple[int, int], strength: float, blur: float) -> None:
    """Darken the frame under `layer`'s mask, shifted by `offset` and blurred (light from the endoscope)."""
    pad = math.ceil(2 * blur)
    h, w = layer.mask.shape
    soft = Image.fromarray(np.pad(layer.mask, pad).astype(np.uint8) * 255).filter(
        ImageFilter.GaussianBlur(blur)
    )
    alpha = np.asarray(soft, np.float32) / 255 * strength
    fx0, fy0 = layer.x0 - pad + offset[0], layer.y0 - pad + offset[1]
    height, width = frame.shape[:2]
    ax0, ay0 = max(0, -fx0), max(0, -fy0)
    ax1, ay1 = min(w + 2 * pad, width - fx0), min(h + 2 * pad, height - fy0)
    if ax1 > ax0 and ay1 > ay0:
        region = frame[fy0 + ay0 : fy0 + ay1, fx0 + ax0 : fx0 + ax1]
        region *= 1 - alpha[ay0:ay1, ax0:ax1, None]


def _count(rng: np.random.Generator, weights: tuple[float, float, float]) -> int:
    return int(rng.choice(3, p=weights))


def render_frame(background: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[Box]]:
    """Draw instruments, needles and occluders over `background`; return the frame and its boxes."""
    height, width = background.shape[:2]
    frame = background.astype(np.float32) * rng.uniform(0.93, 1.07)
    layers: list[_Layer] = []
    sides = [str(s) for s in rng.choice(["left", "right", "top"], size=2, replace=False, p=[0.4, 0.4, 0.2])]
    grips: list[tuple[np.ndarray, str]] = []
    for side in sides[: _count(rng, (0.1, 0.3, 0.6))]:
        layer, grip = _driver(rng, width, height, side)
        grips.append((grip, side))
        if layer is not None:
            layers.append(layer)
    for _ in range(_count(rng, (0.15, 0.7, 0.15))):
        held = bool(grips) and rng.random() < 0.5
        grip, side = grips.pop() if held else (None, "")
        needle = _needle(rng, width, height, grip)
        if needle is None:
            continue
        needle.orientation = f"grabbed_-_{side}" if held else "free"
        if held:  # just under its driver, so the jaws cover part of it
            index = next((i for i, la in enumerate(layers) if la.orientation == side), len(layers))
        else:
            index = int(rng.integers(0, len(layers) + 1))
        layers.insert(index, needle)
    if layers and rng.random() < 0.25:
        fold = _tissue_fold(rng, frame, layers[int(rng.integers(len(layers)))])
        if fold is not None:
            layers.append(fold)
    shadow_offset = (max(1, round(0.006 * width)), max(1, round(0.008 * width)))
    for layer in layers:
        if layer.cls is not None:
            _shadow(frame, layer, shadow_offset, 0.35, max(1.0, 0.004 * width))
        h, w = layer.mask.shape
        region = frame[layer.y0 : layer.y0 + h, layer.x0 : layer.x0 + w]
        region[layer.mask] = layer.colour[layer.mask]
    return np.clip(frame, 0, 255).astype(np.uint8), _visible_boxes(layers, width, height)


def _visible_boxes(layers: list[_Layer], width: int, height: int) -> list[Box]:
    """Boxes around each object's pixels that no later layer covers, bottom layer first."""
    covered = np.zeros((height, width), bool)
    boxes = []
    for layer in reversed(layers):
        h, w = layer.mask.shape
        under = covered[layer.y0 : layer.y0 + h, layer.x0 : layer.x0 + w]
        visible = layer.mask & ~under
        under |= layer.mask
        if layer.cls is None or visible.sum() < MIN_VISIBLE_PIXELS:
            continue
        rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
        boxes.append(
            Box(
                layer.cls,
                layer.x0 + int(cols[0]),
                layer.y0 + int(rows[0]),
                int(cols[-1] - cols[0] + 1),
                int(rows[-1] - rows[0] + 1),
                layer.orientation,
            )
        )
    return boxes[::-1]
