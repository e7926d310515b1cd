"""Which files are images and videos, for training data, `data check` and `predict` alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from surgtui.errors import UserError
from surgtui.fileio import atomic_write

if TYPE_CHECKING:
    import numpy as np

# Everything Pillow decodes that a camera or an annotation tool writes; one list, so training and predict agree.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv")
JPEG_QUALITY = 95


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def source_kind(source: Path) -> str:
    """`image`, `video` or `folder`; UserError (one line) for a missing, unreadable or unsupported source."""
    if not source.exists():
        raise UserError(f"{source}: no such file or directory")
    if source.is_dir():
        if not os.access(source, os.R_OK | os.X_OK):
            raise UserError(f"{source}: cannot read this directory (permission denied)")
        if not folder_images(source):
            raise UserError(
                f"{source}: no images in this folder (expected {', '.join(IMAGE_SUFFIXES)}; "
                "give a video as its own SOURCE)"
            )
        return "folder"
    suffix = source.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        kind = "image"
    elif suffix in VIDEO_SUFFIXES:
        kind = "video"
    else:
        raise UserError(
            f"{source}: unsupported file type {suffix or '(no extension)'!r}; expected an image "
            f"({', '.join(IMAGE_SUFFIXES)}), a video ({', '.join(VIDEO_SUFFIXES)}) or a folder of images"
        )
    if not os.access(source, os.R_OK):
        raise UserError(f"{source}: cannot read this file (permission denied)")
    if source.stat().st_size == 0:
        raise UserError(f"{source}: empty file")
    return kind


def folder_images(folder: Path) -> list[Path]:
    """The images directly inside `folder` (not its subfolders), sorted by name; hidden files skipped."""
    return sorted(p for p in folder.iterdir() if is_image(p) and p.is_file())


def save_jpeg(path: Path, image: np.ndarray) -> None:
    """Save an H×W×3 uint8 RGB array as a JPEG, atomically (not fsynced: one of many frames a rerun remakes)."""
    from PIL import Image  # here: the argument checks that import this module need no PIL

    with atomic_write(path, binary=True, durable=False) as fh:
        Image.fromarray(image).save(fh, format="JPEG", quality=JPEG_QUALITY)
