"""The run store: `runs/<run-id>/` directories, their ids, and their derived status.

Status is derived, never guessed: `running` (engine process alive), `finished`,
`stopped`, `failed` (run_end says so), `crashed` (process gone without run_end),
`created` (directory made, engine never started).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surgtui.errors import UserError
from surgtui.events import EVENTS_FILE, SUMMARY_FILE, read_events
from surgtui.fileio import write_json_atomic
from surgtui.summary import Summary

RUN_JSON = "run.json"
CONFIG_FILE = "config.toml"
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


@dataclass
class Run:
    """One run directory as the CLI and TUI see it."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.path.name

    @classmethod
    def load(cls, path: Path) -> Run:
        summary = read_json(path / SUMMARY_FILE)
        if not summary and (path / EVENTS_FILE).exists():
            summary = Summary.from_events(read_events(path / EVENTS_FILE)).to_dict()
        return cls(path, read_json(path / RUN_JSON), summary)

    @property
    def alive(self) -> bool:
        return pid_alive(self.meta.get("pid"), self.meta.get("proc_start"))

    @property
    def status(self) -> str:
        end = self.summary.get("end")
        if end and end.get("status") in ENDED:
            return end["status"]
        if self.alive:
            return "running"
        return "crashed" if self.meta.get("pid") else "created"

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
