"""Atomic file writes: readers and crashes see the old file or the new one, never half of one.

The one home for the rule: a hidden temp sibling (same file system, so the rename is
atomic), created with mode 0666 so the kernel applies the umask as for any new file
(an existing file keeps its mode), flushed and (unless a bulk output) fsynced before the
rename, removed when anything fails, so a full disk gets its space back.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TEMP_MARK = ".tmp-"


def temp_sibling(path: Path) -> Path:
    """A hidden, unique name beside `path` (`.<name>.tmp-<pid>-<rand>`): the rename stays on one file system."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def is_temp_name(name: str) -> bool:
    """Whether `name` is one of `temp_sibling`'s names (left behind only by a killed writer)."""
    return name.startswith(".") and TEMP_MARK in name


@contextmanager
def atomic_write(path: str | Path, binary: bool = False, durable: bool = True) -> Iterator[IO[Any]]:
    """Yield a file to write; on success it replaces `path` whole, with data on disk (fsync) first.

    `durable=False` skips the fsync: for bulk outputs (thousands of frames) that can be written again.
    """
    path = Path(path)
    tmp = temp_sibling(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = None
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})
        ) as fh:
            fd = -1  # the file object owns it now
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str, durable: bool = True, parents: bool = False) -> None:
    """`parents`: create the missing directories first; `durable=False` for bulk files a rerun remakes."""
    if parents:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, durable=durable) as fh:
        fh.write(text)


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete temp files a killed writer left in `directory` (checkpoints can be 180 MB each).

    Only safe while no writer works there: the engine calls it under the run's lock.
    """
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for p in entries:
        if is_temp_name(p.name) and p.is_file():
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


@contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temp directory that becomes `final` (one rename) when the block succeeds.

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
