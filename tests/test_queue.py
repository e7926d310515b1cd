"""`surgtui run FILE --queue` and `surgtui queue`: a real detached worker starting real engines in order."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import kill_leftover_engines, one_line_error, surgtui, tiny_experiment
from surgtui.runs.events import read_events
from surgtui.runs.store import list_runs
from surgtui.sweeps.queue import list_entries, worker_alive


def _wait(what: str, ok, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _times(run) -> tuple[float, float]:
    events = read_events(run.path / "events.jsonl")
    return events[0]["time"], next(e["time"] for e in events if e["type"] == "run_end")


@pytest.mark.slow
def test_queued_runs_run_one_after_another_as_they_were_queued(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = tiny_experiment(tmp_path, epochs=1, name="first")
    second = tiny_experiment(tmp_path, epochs=1, name="second")
    dropped = tiny_experiment(tmp_path, epochs=1, name="dropped")
    try:
        r = surgtui("run", str(first), "--queue", "--runs-dir", str(runs))
        assert r.returncode == 0 and r.stdout.startswith("queued #1 first"), r.stdout + r.stderr
        r = surgtui(
            "queue", "add", str(second), str(dropped), "--set", "train.epochs=2", "--runs-dir", str(runs)
        )
        assert r.returncode == 0 and "queued #3 dropped (2 ahead)" in r.stdout, r.stdout + r.stderr
        second.write_text(
            second.read_text().replace('name = "second"', 'name = "edited"')
        )  # too late: frozen
        assert surgtui("queue", "rm", "3", "--runs-dir", str(runs)).returncode == 0

        _wait("the queue to drain", lambda: not worker_alive(runs) and len(list_runs(runs)) == 2)
        a, b = list_runs(runs)
        assert (a.experiment, b.experiment) == ("first", "second")
        assert a.status == b.status == "finished"
        assert b.summary["epoch"] == 2  # the --set given when queued
        assert _times(a)[1] <= _times(b)[0]  # the second started after the first ended
        listing = surgtui("queue", "--runs-dir", str(runs)).stdout
        assert "finished" in listing and "dropped" not in listing and a.id in listing

        line = one_line_error(surgtui("queue", "rm", "1", "--runs-dir", str(runs)))
        assert f"has started as run {a.id}" in line
        assert surgtui("queue", "clear", "--runs-dir", str(runs)).stdout.startswith("cleared 2")
        assert list_entries(runs) == [] and len(list_runs(runs)) == 2  # the runs stay
    finally:
        kill_leftover_engines(tmp_path)


def test_a_bad_experiment_is_refused_when_queued_not_when_its_turn_comes(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    bad = tiny_experiment(tmp_path, extra="[optim]\nlr = -1\n")
    line = one_line_error(surgtui("run", str(bad), "--queue", "--runs-dir", str(runs)))
    assert "tiny.toml" in line and "optim.lr" in line
    assert list_entries(runs) == [] and not worker_alive(runs)
    assert "no worker is running" in one_line_error(surgtui("queue", "stop", "--runs-dir", str(runs)))
    assert "queue empty" in surgtui("queue", "--runs-dir", str(runs)).stdout
