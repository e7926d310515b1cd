"""Sweep directories: `<runs>/sweeps/<sweep-id>/`, what they hold, and whether their scheduler is alive.

  sweep.json     the sweep as started: its spec, the study's storage, the runs dir, overrides
  base.toml      the base experiment as it was when the sweep started (members resolve from it)
  study.db       the Optuna study (SQLite) unless --storage named another database
  scheduler.lock held (flock) by the one scheduler driving the sweep
  scheduler.log  the scheduler's output; status.json: running / finished / stopped / failed
Member runs are ordinary runs in the runs dir; each holds `sweep.json` naming its sweep, config and seed.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surgtui.errors import UserError
from surgtui.fileio import write_json_atomic
from surgtui.runs.store import read_json

SWEEPS_DIR = "sweeps"
SWEEP_JSON, BASE_TOML, STUDY_DB = "sweep.json", "base.toml", "study.db"
SCHEDULER_LOCK, SCHEDULER_LOG, STATUS_JSON = "scheduler.lock", "scheduler.log", "status.json"
MEMBER_JSON = "sweep.json"  # in a member run's directory


def sweeps_root(runs_dir: Path) -> Path:
    return runs_dir / SWEEPS_DIR


def new_sweep_dir(runs_dir: Path, name: str) -> Path:
    """A fresh, uniquely named sweep directory."""
    base = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{name}"
    root = sweeps_root(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            path = root / (base if n == 1 else f"{base}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise UserError(
            f"--runs-dir {runs_dir}: cannot create a sweep directory ({exc.strerror or exc})"
        ) from None
    raise UserError(f"{root}: no free sweep id for {base}")


def lock_sweep(sweep_dir: Path) -> int | None:
    """The scheduler's lock: an fd holding it, or None when another scheduler drives this sweep."""
    fd = os.open(sweep_dir / SCHEDULER_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def scheduler_alive(sweep_dir: Path) -> bool:
    fd = lock_sweep(sweep_dir)
    if fd is None:
        return True
    os.close(fd)
    return False


def set_status(sweep_dir: Path, state: str, reason: str = "", **extra: Any) -> None:
    write_json_atomic(sweep_dir / STATUS_JSON, {"state": state, "reason": reason, **extra})


@dataclass
class Sweep:
    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def state(self) -> str:
        """running while the scheduler holds its lock; else what it recorded (a killed one: `crashed`)."""
        if scheduler_alive(self.path):
            return "running"
        recorded = self.status.get("state", "")
        return "crashed" if recorded in ("", "running") else recorded

    @classmethod
    def load(cls, path: Path) -> Sweep:
        return cls(path, read_json(path / SWEEP_JSON), read_json(path / STATUS_JSON))


def list_sweeps(runs_dir: Path) -> list[Sweep]:
    root = sweeps_root(runs_dir)
    if not root.is_dir():
        return []
    return [Sweep.load(p) for p in sorted(root.iterdir()) if (p / SWEEP_JSON).is_file()]


def resolve_sweep(ref: str, runs_dir: Path) -> Sweep:
    """A sweep id, a unique prefix, `latest`, or a sweep directory."""
    if (Path(ref) / SWEEP_JSON).is_file():
        return Sweep.load(Path(ref))
    sweeps = list_sweeps(runs_dir)
    if not sweeps:
        raise UserError(f"no sweeps in {sweeps_root(runs_dir)}")
    if ref == "latest":
        return sweeps[-1]
    hits = [s for s in sweeps if s.id == ref] or [s for s in sweeps if s.id.startswith(ref)]
    if len(hits) != 1:
        what = "no sweep" if not hits else f"{len(hits)} sweeps match"
        raise UserError(f"{what} {ref!r} in {sweeps_root(runs_dir)} (try `surgtui sweeps` or `latest`)")
    return hits[0]


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name) or "sweep"
