"""The run queue: experiments run one after another, one per GPU on a GPU box, by a detached worker.

  <runs>/queue/NNNN-<name>.json   an entry: the experiment file, its overrides, when it was queued, its run
  <runs>/queue/NNNN-<name>.toml   the experiment as resolved when queued: what runs, whatever the file says later
  <runs>/queue/worker.lock        held (flock) by the one worker; worker.json its pid, worker.log its output

`surgtui run FILE --queue` and `surgtui queue add` append an entry and start the worker when none runs
(`python -m surgtui.sweeps.queue RUNS_DIR`). The worker starts entries in order: a CPU run when no other
queued run is training, a CUDA run when as many GPUs as it has `train.devices` are free (each run sees only
its own through CUDA_VISIBLE_DEVICES). It exits when the queue is empty. SIGINT/SIGTERM (`surgtui queue
stop`) stop it launching; runs it started keep training (`surgtui stop RUN` stops one).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgtui.config.load import load_experiment, load_frozen
from surgtui.errors import UserError
from surgtui.fileio import write_json_atomic, write_text_atomic
from surgtui.runs.launcher import launch_run
from surgtui.runs.lock import lock_file, lock_held
from surgtui.runs.store import Run, read_json
from surgtui.sweeps.detach import log, spawn_detached
from surgtui.sweeps.gpus import on_gpu, visible_gpus
from surgtui.sweeps.store import safe_name

QUEUE_DIR = "queue"
WORKER_LOCK, WORKER_LOG, WORKER_JSON = "worker.lock", "worker.log", "worker.json"
LOCK_WAIT_S = 10.0  # a new worker waits this long for one that is just exiting
POLL_S = 1.0
_ENTRY = re.compile(r"(\d{4,})-.*\.json$")


def queue_dir(runs_dir: Path) -> Path:
    return runs_dir / QUEUE_DIR


@dataclass
class Entry:
    path: Path  # NNNN-<name>.json
    data: dict[str, Any]

    @property
    def number(self) -> int:
        return int(self.path.name.split("-", 1)[0])

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))

    @property
    def config(self) -> Path:
        return self.path.with_suffix(".toml")

    @property
    def run_id(self) -> str | None:
        return self.data.get("run")

    def state(self, runs_dir: Path) -> str:
        """waiting, failed (could not start), or its run's status (running, finished, stopped, ...)."""
        if self.data.get("error"):
            return "failed"
        if not self.run_id:
            return "waiting"
        run_dir = runs_dir / self.run_id
        return Run.load(run_dir).status if run_dir.is_dir() else "missing"

    @classmethod
    def load(cls, path: Path) -> Entry:
        return cls(path, read_json(path))


def list_entries(runs_dir: Path) -> list[Entry]:
    root = queue_dir(runs_dir)
    if not root.is_dir():
        return []
    return sorted((Entry.load(p) for p in root.iterdir() if _ENTRY.match(p.name)), key=lambda e: e.number)


def add_entry(runs_dir: Path, experiment: Path, overrides: list[str]) -> Entry:
    """Queue `experiment` as it resolves now (refused now, not when its turn comes, if it does not)."""
    from surgtui.data.layouts import check_training_source

    resolved = load_experiment(experiment, overrides)
    try:
        check_training_source(resolved.experiment.data)
    except UserError as exc:
        raise UserError(f"{experiment}: {exc}") from None
    root = queue_dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    number = max((e.number for e in list_entries(runs_dir)), default=0) + 1
    name = resolved.experiment.name
    while True:  # two `queue add` at once: the one that loses the name takes the next number
        path = root / f"{number:04d}-{safe_name(name)}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            break
        except FileExistsError:
            number += 1
    write_text_atomic(path.with_suffix(".toml"), resolved.to_toml())
    data = {
        "name": name,
        "experiment": str(experiment.resolve()),
        "overrides": overrides,
        "added": time.time(),
        "run": None,
    }
    write_json_atomic(path, data)
    return Entry(path, data)


def remove_entry(runs_dir: Path, number: int) -> Entry:
    """Take a waiting entry off the queue; a started one is a run (`surgtui stop`, `surgtui runs`)."""
    entry = next((e for e in list_entries(runs_dir) if e.number == number), None)
    if entry is None:
        raise UserError(f"queue: no entry #{number} (see `surgtui queue`)")
    if entry.run_id:
        raise UserError(f"queue: #{number} has started as run {entry.run_id}; stop it with `surgtui stop`")
    entry.path.unlink(missing_ok=True)
    entry.config.unlink(missing_ok=True)
    return entry


def clear_ended(runs_dir: Path) -> list[Entry]:
    """Drop the entries whose runs have ended, or that could not start; the runs themselves stay."""
    ended = [e for e in list_entries(runs_dir) if e.state(runs_dir) not in ("waiting", "running")]
    for e in ended:
        e.path.unlink(missing_ok=True)
        e.config.unlink(missing_ok=True)
    return ended


def worker_alive(runs_dir: Path) -> bool:
    root = queue_dir(runs_dir)
    if not root.is_dir():
        return False
    return lock_held(root / WORKER_LOCK)


def start_worker(runs_dir: Path) -> subprocess.Popen | None:
    """Start the worker unless one runs (a worker that is just exiting hands over to the new one)."""
    root = queue_dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    if worker_alive(runs_dir):
        return None
    return spawn_detached("surgtui.sweeps.queue", runs_dir.resolve(), root / WORKER_LOG)


def stop_worker(runs_dir: Path) -> bool:
    """Ask the worker to stop launching; False when none runs."""
    pid = read_json(queue_dir(runs_dir) / WORKER_JSON).get("pid")
    if not worker_alive(runs_dir) or not pid:
        return False
    os.kill(int(pid), signal.SIGTERM)
    return True


class Worker:
    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.gpus = visible_gpus()
        self.running: dict[str, list[str] | None] = {}  # run id -> its GPUs (None: a CPU run)
        self.stop_requested = False

    def _needs(self, entry: Entry) -> list[str] | None:
        """The GPUs to give `entry` now ([] for a CPU run), or None when it must wait its turn."""
        train = load_frozen(entry.config).train
        if train.device == "cpu" or not self.gpus:
            return [] if not self.running else None  # CPU runs share the cores: one at a time
        taken = {g for gpus in self.running.values() for g in gpus or ()}
        free = [g for g in self.gpus if g not in taken]
        want = min(train.devices, len(self.gpus))
        return free[:want] if len(free) >= want else None

    def _launch(self, entry: Entry, gpus: list[str]) -> None:
        try:
            exp = load_frozen(entry.config)
            with on_gpu(",".join(gpus) or None):
                run_dir, _ = launch_run(
                    exp, entry.config.read_text(encoding="utf-8"), self.runs_dir, str(entry.path)
                )
        except UserError as exc:  # e.g. its data went away since it was queued: next entry
            write_json_atomic(entry.path, {**entry.data, "error": str(exc)})
            log(f"#{entry.number} {entry.name}: not started: {exc}")
            return
        write_json_atomic(entry.path, {**entry.data, "run": run_dir.name, "started": time.time()})
        self.running[run_dir.name] = gpus or None
        log(
            f"#{entry.number} {entry.name}: started {run_dir.name}"
            + (f" on GPU {','.join(gpus)}" if gpus else "")
        )

    def run(self) -> None:
        while True:
            for run_id in list(self.running):
                run = Run.load(self.runs_dir / run_id)
                if not run.alive:
                    del self.running[run_id]
                    log(f"{run_id}: {run.status}")
            if self.stop_requested:
                log("stopped: no more runs are started (runs already started keep training)")
                return
            waiting = [e for e in list_entries(self.runs_dir) if e.state(self.runs_dir) == "waiting"]
            for entry in waiting:
                gpus = self._needs(entry)
                if gpus is None:
                    break  # in order: a later entry never overtakes one waiting for GPUs
                self._launch(entry, gpus)
            if not waiting and not self.running:
                log("queue empty")
                return
            time.sleep(POLL_S)

    def request_stop(self, signum: int, frame: Any) -> None:
        self.stop_requested = True


def main(argv: list[str] | None = None) -> int:
    runs_dir = Path((argv or sys.argv[1:])[0])
    root = queue_dir(runs_dir)
    lock = lock_file(root / WORKER_LOCK, wait_s=LOCK_WAIT_S)
    if lock is None:
        return 0  # another worker runs the queue
    write_json_atomic(root / WORKER_JSON, {"pid": os.getpid(), "started": time.time()})
    worker = Worker(runs_dir)
    signal.signal(signal.SIGINT, worker.request_stop)
    signal.signal(signal.SIGTERM, worker.request_stop)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
