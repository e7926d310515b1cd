"""Sweeps end to end: real schedulers and engines as processes, the study in SQLite, members as runs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from conftest import kill_leftover_engines, one_line_error, surgtui, tiny_experiment
from surgtui.config.load import load_frozen
from surgtui.runs.events import read_events
from surgtui.runs.store import list_runs
from surgtui.sweeps.store import Sweep, list_sweeps

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path):
    yield
    for sweep in list_sweeps(tmp_path / "runs"):
        if sweep.state == "running" and sweep.status.get("pid"):
            os.kill(int(sweep.status["pid"]), signal.SIGKILL)
    kill_leftover_engines(tmp_path)


def _sweep_file(tmp_path: Path, body: str, epochs: int = 2) -> Path:
    tiny_experiment(tmp_path, epochs=epochs)
    path = tmp_path / "sweep.toml"
    path.write_text(f'[sweep]\nexperiment = "tiny.toml"\n{body}')
    return path


def _wait(what: str, ok, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _show(sweep_id: str, runs: Path) -> dict:
    r = surgtui("sweep", "show", sweep_id, "--json", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_grid_sweep_survives_a_killed_scheduler_and_its_table_matches_the_members(tmp_path: Path) -> None:
    """2 lrs x 2 seeds; the scheduler is SIGKILLed once the first member has finished, then resumed."""
    runs = tmp_path / "runs"
    sweep = _sweep_file(tmp_path, 'seeds = [0, 1]\n[sweep.space]\n"optim.lr" = [0.003, 0.01]\n')
    r = surgtui("sweep", str(sweep), "--detach", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    sweep_id = r.stdout.strip()
    _wait("a finished member", lambda: any(run.status == "finished" for run in list_runs(runs)))
    os.kill(int(Sweep.load(runs / "sweeps" / sweep_id).status["pid"]), signal.SIGKILL)
    _wait("the scheduler to die", lambda: Sweep.load(runs / "sweeps" / sweep_id).state == "crashed")
    finished_before = {run.id for run in list_runs(runs) if run.status == "finished"}

    r = surgtui("sweep", "resume", sweep_id, "--runs-dir", str(runs), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    members = list_runs(runs)
    assert len(members) == 4 and all(run.status == "finished" for run in members)  # none run twice
    assert finished_before <= {run.id for run in members}
    for run in members:
        if run.id in finished_before:
            assert len([e for e in read_events(run.path / "events.jsonl") if e["type"] == "run_start"]) == 1

    table = _show(sweep_id, runs)
    assert table["state"] == "finished" and [c["params"] for c in table["configs"]] == [
        {"optim.lr": 0.003},
        {"optim.lr": 0.01},
    ]
    by_run = {run.id: run.metric("map50_95") for run in members}
    for config in table["configs"]:
        values = [by_run[m["run"]] for m in config["members"].values()]
        assert config["mean"] == pytest.approx(sum(values) / 2, abs=1e-12)
    best = max(table["configs"], key=lambda c: c["mean"])
    assert best["best"] and sum(c["best"] for c in table["configs"]) == 1
    member = json.loads((members[0].path / "sweep.json").read_text())
    assert member["sweep"] == sweep_id and set(member) >= {"config", "seed", "params"}


def test_the_median_pruner_stops_a_hopeless_member(tmp_path: Path) -> None:
    """val.conf_thres = 1.0 keeps every detection out: recall 0 from the first epoch, pruned there."""
    runs = tmp_path / "runs"
    sweep = _sweep_file(
        tmp_path,
        'metric = "recall"\npruner = "median"\npruner_warmup = 0\nset = { "train.epochs" = 2 }\n'
        '[sweep.space]\n"val.conf_thres" = [0.001, 1.0]\n',
    )
    r = surgtui("sweep", str(sweep), "--runs-dir", str(runs), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    good, hopeless = sorted(list_runs(runs), key=lambda run: run.id)
    assert good.status == "finished" and hopeless.status == "stopped"
    reason = hopeless.summary["end"]["reason"]
    assert reason.startswith("pruned at epoch 1 (R 0.0000 < median "), reason
    (table,) = [
        c for c in _show(list_sweeps(runs)[0].id, runs)["configs"] if c["params"]["val.conf_thres"] == 1.0
    ]
    assert [m["state"] for m in table["members"].values()] == ["pruned"]


def test_a_bad_sweep_file_exits_2_with_one_line_and_makes_nothing(tmp_path: Path) -> None:
    sweep = _sweep_file(tmp_path, 'sampler = "bayes"\n[sweep.space]\n"optim.lr" = [0.01]\n')
    line = one_line_error(surgtui("sweep", str(sweep), "--runs-dir", str(tmp_path / "runs")))
    assert "sweep.toml: sweep.sampler" in line and "grid, random, tpe" in line
    assert not (tmp_path / "runs").exists()
    assert "no sweeps" in one_line_error(
        surgtui("sweep", "show", "latest", "--runs-dir", str(tmp_path / "runs"))
    )


def test_two_machines_share_one_study_and_run_each_member_once(tmp_path: Path) -> None:
    """Two schedulers, each with its own runs dir (its machine), join study `shared` in one database."""
    sweep = _sweep_file(tmp_path, '[sweep.space]\n"optim.lr" = [0.003, 0.01]\n', epochs=1)
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    machines = [tmp_path / "a", tmp_path / "b"]
    ids = []
    for runs in machines:
        r = surgtui(
            "sweep", str(sweep), "--detach", "--storage", db, "--study", "shared", "--runs-dir", str(runs)
        )
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.strip())
    try:
        sweep_dirs = [runs / "sweeps" / sweep_id for runs, sweep_id in zip(machines, ids)]
        _wait("both schedulers", lambda: all(Sweep.load(d).state != "running" for d in sweep_dirs))
        assert [Sweep.load(d).state for d in sweep_dirs] == ["finished", "finished"]
        members = [run for runs in machines for run in list_runs(runs)]
        assert sorted(load_frozen(run.path / "config.toml").optim.lr for run in members) == [
            0.003,
            0.01,
        ]  # once each
        assert all(run.status == "finished" for run in members)
        for runs, sweep_id in zip(machines, ids):  # each machine's table shows the whole study
            configs = _show(sweep_id, runs)["configs"]
            assert [c["members"]["0"]["state"] for c in configs] == ["finished", "finished"]

        other = tmp_path / "other.toml"
        other.write_text(sweep.read_text().replace("0.003", "0.001"))
        line = one_line_error(
            surgtui(
                "sweep", str(other), "--storage", db, "--study", "shared", "--runs-dir", str(tmp_path / "c")
            )
        )
        assert "--study shared" in line and "space" in line
        assert not (tmp_path / "c" / "sweeps").exists() or not any((tmp_path / "c" / "sweeps").iterdir())
    finally:
        for runs in machines:
            for s in list_sweeps(runs):
                if s.state == "running" and s.status.get("pid"):
                    os.kill(int(s.status["pid"]), signal.SIGKILL)
            kill_leftover_engines(runs)
