"""Requests that screens post up to the app, which owns processes and the screen stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message


@dataclass
class LaunchExperiment(Message):
    """Start a run of this experiment file (as saved) and follow it."""

    path: Path


@dataclass
class OpenRun(Message):
    """Follow this run in the monitor."""

    run_dir: Path


@dataclass
class StopRun(Message):
    """Ask to stop this run (the app confirms first)."""

    run_dir: Path


@dataclass
class CompareRuns(Message):
    """Open the comparison of these runs."""

    run_dirs: list[Path]


@dataclass
class StopSweep(Message):
    """Ask to stop this sweep's scheduler and its running members (the app confirms first)."""

    sweep_dir: Path
