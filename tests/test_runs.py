"""Run store: unique ids, frozen config, status derived from the process and the events."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from surgtui.errors import UserError
from surgtui.runs.events import EventWriter
from surgtui.runs.lock import proc_start_time
from surgtui.runs.store import Run, create_run, list_runs, resolve_run, update_run_json

NOW = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.timezone.utc)


def test_ids_are_unique_within_the_same_second(tmp_path: Path) -> None:
    a = create_run(tmp_path, "focal", "x = 1\n", now=NOW)
    b = create_run(tmp_path, "focal", "x = 1\n", now=NOW)
    assert a.name == "20261126-120000-focal" and b.name == "20261126-120000-focal-2"
    assert (a / "config.toml").read_text() == "x = 1\n"
    assert Run.load(a).status == "created"


def _start(path: Path, code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code])
    update_run_json(path, pid=proc.pid, pgid=proc.pid, proc_start=proc_start_time(proc.pid))
    return proc


def test_status_running_then_crashed_when_the_process_dies_without_run_end(tmp_path: Path) -> None:
    path = create_run(tmp_path, "exp", "", now=NOW)
    proc = _start(path, "import time; time.sleep(60)")
    assert Run.load(path).status == "running"
    proc.kill()
    proc.wait()
    assert Run.load(path).status == "crashed"


@pytest.mark.parametrize("status", ["finished", "stopped", "failed"])
def test_status_comes_from_run_end(tmp_path: Path, status: str) -> None:
    path = create_run(tmp_path, "exp", "", now=NOW)
    proc = _start(path, "pass")
    proc.wait()
    with EventWriter(path) as w:
        w.run_end(status=status, reason="", best=None, duration_s=1.0)
    assert Run.load(path).status == status


def test_a_reused_pid_is_not_mistaken_for_the_engine(tmp_path: Path) -> None:
    path = create_run(tmp_path, "exp", "", now=NOW)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        update_run_json(path, pid=proc.pid, proc_start="1")  # same pid, different start time
        assert Run.load(path).status == "crashed"
    finally:
        proc.kill()
        proc.wait()


def test_resolve_by_id_prefix_path_and_latest(tmp_path: Path) -> None:
    a = create_run(tmp_path, "alpha", "", now=NOW)
    b = create_run(tmp_path, "beta", "", now=NOW + dt.timedelta(seconds=1))
    assert resolve_run("latest", tmp_path) == b
    assert resolve_run(a.name, tmp_path) == a
    assert resolve_run("20261126-120001", tmp_path) == b
    assert resolve_run(str(a), tmp_path) == a
    assert resolve_run("alpha", tmp_path) == a
    with pytest.raises(UserError, match="ambiguous"):
        resolve_run("20261126", tmp_path)
    with pytest.raises(UserError, match="no run 'zzz'"):
        resolve_run("zzz", tmp_path)
    assert [r.id for r in list_runs(tmp_path)] == [a.name, b.name]
