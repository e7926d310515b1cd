"""Writes that either complete or leave nothing behind (temp name + rename)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from surgtui.fileio import atomic_write, temp_sibling, write_text_atomic

JPEG_QUALITY = 95


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` (creating its directory) so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def save_jpeg(path: Path, image: np.ndarray) -> None:
    """Save an H×W×3 uint8 RGB array as a JPEG, atomically."""
    with atomic_write(path, binary=True, durable=False) as fh:  # one of many frames
        Image.fromarray(image).save(fh, format="JPEG", quality=JPEG_QUALITY)


@contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temp directory that becomes `final` when the block succeeds.

    If `final` appeared meanwhile (another process won the race) the temp copy is
    discarded and the existing one kept: both hold the same content by construction.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """Yield a hidden temp directory under `parent`, removed afterwards whatever happens."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(parent / "scratch")
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
