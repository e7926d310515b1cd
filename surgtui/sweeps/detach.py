"""Starting the sweep scheduler and the queue worker: detached, like an engine, so they outlive the terminal,
an SSH drop and the UI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def log(message: str) -> None:
    """One line of a detached process's log (scheduler.log, worker.log): the time, then what happened."""
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def spawn_detached(module: str, arg: Path, log: Path) -> subprocess.Popen:
    """`python -m module arg` in its own session, output appended to `log`."""
    with open(log, "a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, str(arg)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            start_new_session=True,
            close_fds=True,
        )
