"""Boxes drawn on an image: one style for `data check --preview` (ground truth) and `predict` (detections).

Each box in its class colour (green needle, yellow needle_driver), its label on a filled tag
above it (`class` or `class score`); line width and font grow with the image. PIL only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from surgtui.config.schema import CLASS_NAMES

BOX_COLOURS: dict[int, tuple[int, int, int]] = {0: (60, 255, 60), 1: (255, 220, 0)}
OTHER_COLOUR = (255, 255, 255)  # a label without a colour of its own
TEXT_COLOUR = (0, 0, 0)

_fonts: dict[int, Any] = {}


def font(size: int) -> Any:
    """Pillow's default font at `size` px; the fixed bitmap font when Pillow has no FreeType."""
    if size not in _fonts:
        try:
            _fonts[size] = ImageFont.load_default(size=size)
        except (TypeError, ValueError, OSError, ImportError):
            _fonts[size] = ImageFont.load_default()
    return _fonts[size]


def _style(image: Image.Image) -> tuple[int, Any]:
    """(line width, font) for an image this size: the same look on a 320 px tile and a 1920 px frame."""
    longest = max(image.size)
    return max(1, round(longest / 320)), font(max(9, round(longest / 60)))


def label_text(label: int, score: float | None = None) -> str:
    name = CLASS_NAMES[label] if 0 <= label < len(CLASS_NAMES) else str(label)
    return name if score is None else f"{name} {score:.2f}"


def draw_boxes(
    image: Image.Image, boxes: Iterable[tuple[float, float, float, float, int, float | None]]
) -> None:
    """Draw (x1, y1, x2, y2, label, score or None) boxes in place, in the given order (the last on top)."""
    draw = ImageDraw.Draw(image)
    width, fnt = _style(image)
    img_w, img_h = image.size
    for x1, y1, x2, y2, label, score in boxes:
        colour = BOX_COLOURS.get(int(label), OTHER_COLOUR)
        draw.rectangle((x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)), outline=colour, width=width)
        text = label_text(int(label), score)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt)
        tw, th = right - left, bottom - top
        # The tag above the box, or inside its top edge when there is no room above.
        ty = y1 - th - 2 if y1 - th - 2 >= 0 else min(y1 + width, img_h - th - 2)
        tx = min(max(0, x1), max(0, img_w - tw - 2))
        draw.rectangle((tx, ty, tx + tw + 2, ty + th + 2), fill=colour)
        draw.text((tx + 1 - left, ty + 1 - top), text, fill=TEXT_COLOUR, font=fnt)


def draw_detections(image: Image.Image, det: Any) -> Image.Image:
    """A copy of `image` (RGB) with detections drawn, lowest score first so the best lie on top.

    `det`: rows (x1, y1, x2, y2, score, label), as the predictor returns them (anything with
    `.tolist()`, or a sequence of rows).
    """
    rows: list[Sequence[float]] = det.tolist() if hasattr(det, "tolist") else list(det)
    image = image.convert("RGB")
    draw_boxes(
        image, ((x1, y1, x2, y2, int(c), s) for x1, y1, x2, y2, s, c in sorted(rows, key=lambda r: r[4]))
    )
    return image


def draw_caption(image: Image.Image, text: str) -> None:
    """A title in the top-left corner (white on black), in the boxes' font."""
    draw = ImageDraw.Draw(image)
    _, fnt = _style(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt)
    draw.rectangle((2, 2, 2 + right - left + 4, 2 + bottom - top + 4), fill=(0, 0, 0))
    draw.text((4 - left, 4 - top), text, fill=(255, 255, 255), font=fnt)
