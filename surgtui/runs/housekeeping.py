"""Keeping runs tidy: a note per run, and the trash (`rm` moves runs there, `restore` brings them back,
`rm --purge` deletes them for good). Nothing here deletes a run that is still training."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from surgtui.errors import UserError
from surgtui.fileio import write_text_atomic
from surgtui.runs.layout import NOTE_FILE, TRASH_DIR
from surgtui.runs.store import Run, list_runs, resolve_run


def read_note(run_dir: Path) -> str:
    try:
        return (run_dir / NOTE_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def write_note(run_dir: Path, text: str) -> None:
    """The run's note, replaced; an empty text removes it."""
    if text.strip():
        write_text_atomic(run_dir / NOTE_FILE, text.strip() + "\n")
    else:
        (run_dir / NOTE_FILE).unlink(missing_ok=True)


def trash_root(runs_dir: Path) -> Path:
    return runs_dir / TRASH_DIR


def list_trash(runs_dir: Path) -> list[Run]:
    return list_runs(trash_root(runs_dir))


def trash_runs(runs_dir: Path, refs: Sequence[str]) -> list[str]:
    """Move runs into the trash; refuses (moving none) when one is still training."""
    run_dirs = [resolve_run(ref, runs_dir) for ref in refs]
    for run_dir in run_dirs:
        run = Run.load(run_dir)
        if run.alive:
            raise UserError(f"run {run.id} is running: stop it first (`surgtui stop {run.id}`)")
    root = trash_root(runs_dir)
    root.mkdir(exist_ok=True)
    moved = []
    for run_dir in dict.fromkeys(run_dirs):  # the same run named twice is moved once
        target = root / run_dir.name
        if target.exists():  # an older run of that id in the trash: the newer one replaces it
            shutil.rmtree(target)
        os.rename(run_dir, target)
        moved.append(run_dir.name)
    return moved


def restore_runs(runs_dir: Path, refs: Sequence[str]) -> list[str]:
    """Move runs back from the trash; refuses when a run of the same id is in the runs dir again."""
    root = trash_root(runs_dir)
    run_dirs = [_in_trash(ref, root) for ref in refs]
    for run_dir in run_dirs:
        if (runs_dir / run_dir.name).exists():
            raise UserError(f"{runs_dir / run_dir.name} exists: restoring {run_dir.name} would replace it")
    for run_dir in dict.fromkeys(run_dirs):
        os.rename(run_dir, runs_dir / run_dir.name)
    return [d.name for d in dict.fromkeys(run_dirs)]


def purge_trash(runs_dir: Path, refs: Sequence[str] = ()) -> list[str]:
    """Delete runs in the trash for good: those named, or all of them."""
    root = trash_root(runs_dir)
    run_dirs = [_in_trash(ref, root) for ref in refs] if refs else [r.path for r in list_trash(runs_dir)]
    for run_dir in dict.fromkeys(run_dirs):
        shutil.rmtree(run_dir)
    return [d.name for d in dict.fromkeys(run_dirs)]


def _in_trash(ref: str, root: Path) -> Path:
    if not list_runs(root):
        raise UserError(f"the trash is empty ({root})")
    try:
        found = resolve_run(ref, root)
    except UserError as exc:
        raise UserError(f"in the trash: {exc}") from None
    if found.resolve().parent != root.resolve():
        raise UserError(f"{ref}: not a run in the trash ({root}; see `surgtui runs --trash`)")
    return found
