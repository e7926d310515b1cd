"""One engine per run: the flock on `engine.lock`, and whether a recorded process is still the same one."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from surgtui.runs.layout import ENGINE_LOCK, ENGINE_LOCK_FD_ENV


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


def lock_file(path: Path, wait_s: float = 0.0) -> int | None:
    """An open fd holding an exclusive flock on `path`, or None when another process holds it past `wait_s`.

    The lock lives as long as any process holds the fd, and the kernel drops it when that process dies,
    however it dies.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def lock_held(path: Path) -> bool:
    """Whether another process holds the flock on `path` (taken and dropped at once when free)."""
    fd = lock_file(path)
    if fd is None:
        return True
    os.close(fd)
    return False


def acquire_engine_lock(run_dir: Path, wait_s: float = 0.5) -> int | None:
    """Take the run's engine lock (the launcher passes the fd to the engine); None when another engine holds it.

    The default wait covers a status probe, which holds it for microseconds; an engine holds it for good.
    """
    return lock_file(run_dir / ENGINE_LOCK, wait_s)


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
    """Record the lock holder's pid in the lock file: `stop` finds the engine even when run.json is
    unreadable, `sweep stop` the scheduler that holds the lock now."""
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
