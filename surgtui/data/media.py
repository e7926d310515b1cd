"""Which files are images and videos, for training data, `data check` and `predict` alike.

Also what `predict` reads from a SOURCE (an image, a folder, searched recursively or not, a glob
pattern, a video) and the names its outputs take (relative to the folder; a YOLO label per image).
"""

from __future__ import annotations

import glob
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


def source_kind(source: Path, recursive: bool = False) -> str:
    """`image`, `video`, `folder` or `glob`; UserError (one line) for a missing, unreadable, unsupported source.

    `recursive`: a folder's images may lie in its subfolders (folder_images).
    """
    if is_glob(source):
        if not glob_images(str(source)):
            raise UserError(f"{source}: no images match this pattern (expected {', '.join(IMAGE_SUFFIXES)})")
        return "glob"
    if not source.exists():
        raise UserError(f"{source}: no such file or directory")
    if source.is_dir():
        if not os.access(source, os.R_OK | os.X_OK):
            raise UserError(f"{source}: cannot read this directory (permission denied)")
        if not folder_images(source, recursive):
            nested = 0 if recursive else len(folder_images(source, recursive=True))
            hint = (
                f"; {nested} in its subfolders: add --recursive"
                if nested
                else "; give a video as its own SOURCE"
            )
            raise UserError(
                f"{source}: no images in this folder (expected {', '.join(IMAGE_SUFFIXES)}{hint})"
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


def folder_images(folder: Path, recursive: bool = False) -> list[Path]:
    """The images directly inside `folder`, or with `recursive` in its subfolders too, sorted by path.

    Hidden files and folders are skipped; symlinked folders are not followed (no loops).
    """
    if not recursive:
        return sorted(p for p in folder.iterdir() if is_image(p) and p.is_file())
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += (Path(dirpath, f) for f in filenames if is_image(Path(f)))
    return sorted(p for p in found if p.is_file())


_GLOB_CHARS = "*?["


def is_glob(source: Path | str) -> bool:
    """A SOURCE that names no file but holds `*`, `?` or `[`: a pattern predict expands (the user quotes it)."""
    return any(c in str(source) for c in _GLOB_CHARS) and not Path(source).exists()


def glob_root(pattern: str) -> Path:
    """The folders of `pattern` before its first wildcard: the matched images' names are relative to it."""
    fixed: list[str] = []
    for part in Path(pattern).parts:
        if any(c in part for c in _GLOB_CHARS):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def glob_images(pattern: str) -> list[Path]:
    """The image files `pattern` matches (`**`: any folders deep; hidden ones only if named), sorted by path."""
    return sorted(p for p in map(Path, glob.glob(pattern, recursive=True)) if is_image(p) and p.is_file())


def source_images(source: Path, kind: str, recursive: bool = False) -> tuple[list[Path], Path]:
    """The image files of an `image`, `folder` or `glob` SOURCE, and the folder their names are relative to."""
    if kind == "folder":
        return folder_images(source, recursive), source
    if kind == "glob":
        return glob_images(str(source)), glob_root(str(source))
    return [source], source.parent


def relative_name(path: Path, root: Path) -> str:
    """An image's name in predict's outputs: its path below `root` (subfolders kept: names never collide)."""
    return str(path.relative_to(root)) if root in path.parents else path.name


LABELS_DIR = "labels"  # predict --save-txt's folder in DIR, as Ultralytics names it


def label_name(name: str, frame: int | None = None) -> str:
    """The YOLO label file of an image named `name` (stem + .txt, subfolders kept), or of a video's frame."""
    if frame is not None:
        return f"{Path(name).stem}_{frame:06d}.txt"
    return str(Path(name).with_suffix(".txt"))


def save_jpeg(path: Path, image: np.ndarray) -> None:
    """Save an H×W×3 uint8 RGB array as a JPEG, atomically (not fsynced: one of many frames a rerun remakes)."""
    from PIL import Image  # here: the argument checks that import this module need no PIL

    with atomic_write(path, binary=True, durable=False) as fh:
        Image.fromarray(image).save(fh, format="JPEG", quality=JPEG_QUALITY)
