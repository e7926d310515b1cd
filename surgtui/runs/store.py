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
from surgtui.fileio import write_json_atomic
from surgtui.runs.events import EventVersionError, read_events
from surgtui.runs.layout import CONFIG_FILE, ENGINE_LOCK, EVENTS_FILE, RUN_JSON, SUMMARY_FILE, TAGS_FILE
from surgtui.runs.lock import engine_running, engine_started
from surgtui.runs.summary import Summary

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
        raise UserError(
            f"--runs-dir {runs_dir}: cannot create a run directory there "
            f"({exc.strerror or exc}); choose a writable directory"
        ) from None
    try:
        (path / CONFIG_FILE).write_text(config_toml, encoding="utf-8")
        write_json_atomic(
            path / RUN_JSON,
            {
                "id": run_id,
                "experiment": name,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "host": socket.gethostname(),
                "pid": None,
                "pgid": None,
                "proc_start": None,
                "command": None,
                "exit_code": None,
            },
        )
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


def read_tags(run_dir: Path) -> dict[str, str]:
    """The run's tags (`tags.json`): key -> value, both strings."""
    return {str(k): str(v) for k, v in read_json(run_dir / TAGS_FILE).items()}


def update_run_json(run_dir: Path, **fields: Any) -> dict[str, Any]:
    data = read_json(run_dir / RUN_JSON)
    data.update(fields)
    write_json_atomic(run_dir / RUN_JSON, data)
    return data


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
    def tags(self) -> dict[str, str]:
        return read_tags(self.path)

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
