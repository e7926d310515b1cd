"""Requests that screens post up to the app, which owns processes and the screen stack."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.message import Message


class LaunchExperiment(Message):
    """Start a run of this experiment file (as saved) and follow it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class OpenRun(Message):
    """Follow this run in the monitor."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir


class StopRun(Message):
    """Ask to stop this run (the app confirms first)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir


class CompareRuns(Message):
    """Open the comparison of these runs."""

    def __init__(self, run_dirs: Sequence[Path]) -> None:
        super().__init__()
        self.run_dirs = list(run_dirs)
