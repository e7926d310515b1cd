"""The run store: `runs/<run-id>/` directories, their ids, and their derived status.

Status is derived, never guessed: `running` (engine process alive), `finished`,
`stopped`, `failed` (run_end says so), `crashed` (process gone without run_end),
`created` (directory made, engine never started).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surgtui.errors import UserError
from surgtui.events import EVENTS_FILE, SUMMARY_FILE, EventVersionError, read_events
from surgtui.fileio import write_json_atomic
from surgtui.summary import Summary

RUN_JSON = "run.json"
CONFIG_FILE = "config.toml"
ENGINE_LOCK = "engine.lock"  # held (flock) by the one engine training this run
ENGINE_LOCK_FD_ENV = "SURGTUI_ENGINE_LOCK_FD"  # the launcher passes its locked fd to the engine under this name
WEIGHTS_DIR = "weights"
LAST_WEIGHTS = "last.pt"
BEST_WEIGHTS = "best.pt"
STDOUT_LOG, STDERR_LOG = "stdout.log", "stderr.log"
STATUSES = ("running", "finished", "stopped", "failed", "crashed", "created")
ENDED = ("finished", "stopped", "failed", "crashed")


def default_runs_dir() -> Path:
    return Path(os.environ.get("SURGTUI_RUNS_DIR") or "runs")


def new_run_id(name: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{name or 'run'}"


def create_run(runs_dir: str | Path, name: str, config_toml: str, now: dt.datetime | None = None) -> Path:
    """Make a fresh run directory with a unique id and its frozen config.toml."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        base = new_run_id(name, now)
        for n in range(1, 10_000):
            run_id = base if n == 1 else f"{base}-{n}"
            path = runs_dir / run_id
            try:
                path.mkdir()  # atomic: two launches in the same second get different ids
            except FileExistsError:
                continue
            break
        else:  # pragma: no cover
            raise UserError(f"{runs_dir}: could not find a free run id for {base}")
    except OSError as exc:
        raise UserError(f"--runs-dir {runs_dir}: cannot create a run directory there "
                        f"({exc.strerror or exc}); choose a writable directory") from None
    try:
        (path / CONFIG_FILE).write_text(config_toml, encoding="utf-8")
        write_json_atomic(path / RUN_JSON, {
            "id": run_id,
            "experiment": name,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "pid": None,
            "pgid": None,
            "proc_start": None,
            "command": None,
            "exit_code": None,
        })
    except OSError as exc:
        import shutil

        shutil.rmtree(path, ignore_errors=True)  # nothing half-written left behind
        raise UserError(f"{path}: cannot write the run's files ({exc.strerror or exc})") from None
    return path


def read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, ValueError, OSError):
        return {}


def update_run_json(run_dir: Path, **fields: Any) -> dict[str, Any]:
    data = read_json(run_dir / RUN_JSON)
    data.update(fields)
    write_json_atomic(run_dir / RUN_JSON, data)
    return data


def proc_start_time(pid: int) -> str | None:
    """The kernel's start time of a process: with the pid it tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields_after_name = stat.rsplit(")", 1)[1].split()
    if fields_after_name[0] == "Z":  # exited, not yet reaped: as good as gone
        return None
    return fields_after_name[19]


def pid_alive(pid: int | None, start: str | None = None) -> bool:
    if not pid:
        return False
    if Path("/proc").is_dir():
        now = proc_start_time(pid)
        return now is not None and (start is None or now == start)
    try:  # no /proc (macOS): signal 0 only checks existence
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_engine_lock(run_dir: Path, wait_s: float = 0.5) -> int | None:
    """Take the run's engine lock: an open fd holding it, or None when another engine holds it.

    The lock lives as long as any process holds the fd (the launcher passes it to the
    engine), and the kernel drops it when that process dies, however it dies.
    """
    fd = os.open(run_dir / ENGINE_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:  # a status probe holds it for microseconds; an engine for good
                os.close(fd)
                return None
            time.sleep(0.02)


def take_engine_lock(run_dir: Path) -> int | None:
    """The engine's side: the locked fd its launcher passed down, else the lock taken now.

    None when another engine holds it. The variable is removed so that no child takes it for its own.
    """
    inherited = os.environ.pop(ENGINE_LOCK_FD_ENV, None)
    if inherited is not None:
        try:
            fd = int(inherited)
            if os.path.samestat(os.fstat(fd), os.stat(run_dir / ENGINE_LOCK)):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # already this description's: a no-op
                return fd
        except (OSError, ValueError):
            pass
    fd = acquire_engine_lock(run_dir, wait_s=0)
    if fd is not None:
        write_lock_owner(fd, os.getpid())
    return fd


def write_lock_owner(fd: int, pid: int) -> None:
    """Record the engine's pid in the lock file: `stop` finds it even when run.json is unreadable."""
    data = json.dumps({"pid": pid, "pgid": pid, "proc_start": proc_start_time(pid)}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def engine_lock_held(run_dir: Path) -> bool | None:
    """Whether an engine holds the run's lock; None for a run without a lock file (never started)."""
    try:
        fd = os.open(run_dir / ENGINE_LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def engine_running(run_dir: Path, meta: dict[str, Any]) -> bool:
    """Whether an engine trains this run now: its lock says; runs from before the lock, its pid."""
    held = engine_lock_held(run_dir)
    if held is not None:
        return held
    return pid_alive(meta.get("pid"), meta.get("proc_start"))


def engine_started(run_dir: Path, meta: dict[str, Any]) -> bool:
    """Whether an engine was ever started on this run (a gone one without run_end is a crash)."""
    return bool(meta.get("pid")) or (run_dir / ENGINE_LOCK).exists()


@dataclass
class Run:
    """One run directory as the CLI and TUI see it."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why the run's history could not be read (shown, never raised)

    @property
    def id(self) -> str:
        return self.path.name

    @classmethod
    def load(cls, path: Path) -> Run:
        summary, error = read_json(path / SUMMARY_FILE), None
        if not summary and (path / EVENTS_FILE).exists():
            try:
                summary = Summary.from_events(read_events(path / EVENTS_FILE)).to_dict()
            except EventVersionError as exc:
                error = str(exc)
        return cls(path, read_json(path / RUN_JSON), summary, error)

    @property
    def alive(self) -> bool:
        return engine_running(self.path, self.meta)

    @property
    def pgid(self) -> int | None:
        """The engine's process group: from run.json, else from the lock file the launcher wrote."""
        pgid = self.meta.get("pgid") or self.meta.get("pid") or read_json(self.path / ENGINE_LOCK).get("pgid")
        return int(pgid) if pgid else None

    @property
    def status(self) -> str:
        end = self.summary.get("end")
        if end and end.get("status") in ENDED:
            return end["status"]
        if self.alive:
            return "running"
        return "crashed" if engine_started(self.path, self.meta) else "created"

    @property
    def experiment(self) -> str:
        return self.summary.get("experiment") or self.meta.get("experiment") or ""

    def metric(self, name: str) -> float | None:
        best = self.summary.get("best") or {}
        return (best.get("metrics") or {}).get(name)


def list_runs(runs_dir: str | Path | None = None) -> list[Run]:
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not runs_dir.is_dir():
        return []
    runs = [Run.load(p) for p in runs_dir.iterdir() if (p / RUN_JSON).is_file()]
    return sorted(runs, key=lambda r: r.id)


def resolve_run(ref: str, runs_dir: str | Path | None = None) -> Path:
    """A run id, a unique id prefix, a path to a run directory, or `latest`."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    as_path = Path(ref)
    if (as_path / RUN_JSON).is_file():
        return as_path
    ids = sorted(p.name for p in runs_dir.iterdir() if (p / RUN_JSON).is_file()) if runs_dir.is_dir() else []
    if not ids:
        raise UserError(f"{runs_dir}: no runs yet (start one with `surgtui run EXPERIMENT.toml`)")
    if ref == "latest":
        return runs_dir / ids[-1]
    if ref in ids:
        return runs_dir / ref
    matches = [i for i in ids if i.startswith(ref)] or [i for i in ids if ref in i]
    if len(matches) == 1:
        return runs_dir / matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise UserError(f"run {ref!r} is ambiguous in {runs_dir}: matches {shown}")
    raise UserError(f"no run {ref!r} in {runs_dir} (try `surgtui runs`, an id prefix, or `latest`)")
