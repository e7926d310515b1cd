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
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surgtui.errors import UserError
from surgtui.fileio import write_json_atomic
from surgtui.runs.lock import lock_file, lock_held, write_lock_owner
from surgtui.runs.store import read_json
from surgtui.sweeps.detach import spawn_detached

if TYPE_CHECKING:
    from surgtui.sweeps.spec import SweepSpec

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


def create_sweep_dir(
    spec: SweepSpec,
    runs_dir: Path,
    overrides: list[str],
    storage: str | None = None,
    study: str | None = None,
) -> Path:
    """Make the sweep's directory and its study (or join the shared `study` in `storage`); the directory."""
    from surgtui.sweeps.study import create_or_join

    if study is not None and storage is None:
        raise UserError(
            f"--study {study}: a shared study lives in a database all machines reach; give --storage too"
        )
    sweep_dir = new_sweep_dir(runs_dir, safe_name(spec.name))
    shutil.copyfile(spec.experiment, sweep_dir / BASE_TOML)
    url = storage or f"sqlite:///{(sweep_dir / STUDY_DB).resolve()}"
    try:
        create_or_join(spec, url, study or sweep_dir.name, join=study is not None)
    except Exception as exc:  # a bad URL or an unreachable database: Optuna's and SQLAlchemy's errors
        shutil.rmtree(sweep_dir, ignore_errors=True)
        if isinstance(exc, UserError):
            raise
        raise UserError(f"--storage {url}: cannot create the study ({exc})") from None
    info = {
        "spec": spec.to_dict(),
        "storage": url,
        "study": study or sweep_dir.name,
        "shared": study is not None,
        "owner": f"{socket.gethostname()}/{sweep_dir.name}",
        "runs_dir": str(runs_dir.resolve()),
        "overrides": overrides,
        "created": time.time(),
    }
    write_json_atomic(sweep_dir / SWEEP_JSON, info)
    return sweep_dir


def start_scheduler(sweep_dir: Path) -> subprocess.Popen:
    """The sweep's scheduler, detached like an engine: it outlives this terminal and SSH."""
    return spawn_detached("surgtui.sweeps.scheduler", sweep_dir, sweep_dir / SCHEDULER_LOG)


def lock_sweep(sweep_dir: Path) -> int | None:
    """The scheduler's lock: an fd holding it, or None when another scheduler drives this sweep."""
    return lock_file(sweep_dir / SCHEDULER_LOCK)


def claim_sweep(sweep_dir: Path) -> int | None:
    """What a scheduler does first: take the lock, record its pid there (what `stop_sweep` signals) and
    in status.json as `running`. The lock's fd, or None when another scheduler drives the sweep."""
    fd = lock_sweep(sweep_dir)
    if fd is not None:
        write_lock_owner(fd, os.getpid())
        set_status(sweep_dir, "running", pid=os.getpid())
    return fd


def scheduler_alive(sweep_dir: Path) -> bool:
    return lock_held(sweep_dir / SCHEDULER_LOCK)


def stop_sweep(sweep_dir: Path) -> bool:
    """SIGINT to the sweep's scheduler: it stops the running members (resumable), then itself.
    False when no scheduler drives the sweep."""
    pid = read_json(sweep_dir / SCHEDULER_LOCK).get("pid")  # written by the scheduler holding the lock
    if not pid or not scheduler_alive(sweep_dir):
        return False
    try:
        os.kill(int(pid), signal.SIGINT)
    except ProcessLookupError:  # it ended between the lock check and the signal
        return False
    return True


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
