"""Headless runs end to end: real engine processes, real signals, real files."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, kill_leftover_engines, surgtui, tiny_experiment
from surgtui.config.load import experiment_to_toml
from test_tui_fixtures import stand_in_start

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_leftover_engines(tmp_path: Path):
    yield
    kill_leftover_engines(tmp_path)


def tiny(tmp_path: Path, epochs: int = 3) -> Path:
    return tiny_experiment(tmp_path, epochs)


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def wait_for(pred, timeout: float = 240.0, every: float = 0.2) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(every)
    raise AssertionError("timed out waiting")


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return run_dir


def test_run_finishes_and_shows_up_in_runs_and_export(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    r = surgtui("run", str(tiny(tmp_path)), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    # Not a terminal: one plain line per epoch and per validation.
    assert r.stdout.count("epoch ") >= 3 and "val " in r.stdout and "run finished" in r.stdout
    run_dir = only_run(runs)
    assert (run_dir / "weights" / "last.pt").is_file() and (run_dir / "weights" / "best.pt").is_file()

    table = json.loads(surgtui("runs", "--runs-dir", str(runs), "--format", "json").stdout)
    assert table[0]["status"] == "finished" and table[0]["epochs"] == "3/3"
    assert isinstance(table[0]["map50"], float) and table[0]["experiment"] == "tiny"

    out = surgtui("export", "latest", "--runs-dir", str(runs)).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert "train/total" in rows[0] and "val/map50_95" in rows[-1] and "lr/head" in rows[0]

    shown = surgtui("show", "latest", "--runs-dir", str(runs))
    assert shown.returncode == 0 and "finished" in shown.stdout and "best.pt" in shown.stdout


def test_json_mode_prints_the_events(tmp_path: Path) -> None:
    r = surgtui("run", str(tiny(tmp_path, epochs=1)), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert r.returncode == 0, r.stderr
    types = [json.loads(line)["type"] for line in r.stdout.splitlines()]
    assert types[0] == "run_start" and types[-1] == "run_end" and "step" in types and "val" in types


def test_ctrl_c_stops_cleanly_with_exit_130(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgtui", "run", str(tiny(tmp_path, epochs=20)), "--runs-dir", str(runs)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: (
            runs.exists()
            and any(runs.iterdir())
            and (only_run(runs) / "events.jsonl").exists()
            and any(e["type"] == "step" for e in events(only_run(runs)))
        )
    )
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert events(only_run(runs))[-1]["status"] == "stopped"


def test_sigkill_shows_crashed_and_resume_recovers(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    rid = surgtui("run", str(tiny(tmp_path, epochs=5)), "--runs-dir", str(runs), "--detach").stdout.strip()
    run_dir = runs / rid
    wait_for(
        lambda: (
            (run_dir / "events.jsonl").exists() and any(e["type"] == "checkpoint" for e in events(run_dir))
        )
    )
    assert surgtui("stop", rid, "--kill", "--wait", "--runs-dir", str(runs)).returncode == 0
    table = json.loads(surgtui("runs", "--runs-dir", str(runs), "--format", "json").stdout)
    assert table[0]["status"] == "crashed"
    r = surgtui("resume", rid, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    assert events(run_dir)[-1]["status"] == "finished"


def test_engine_survives_the_terminal_closing_and_attach_follows(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgtui", "run", str(tiny(tmp_path, epochs=4)), "--runs-dir", str(runs)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: runs.exists() and any(runs.iterdir()) and (only_run(runs) / "events.jsonl").exists())
    proc.send_signal(signal.SIGHUP)  # what a closed terminal or a dropped SSH session sends
    proc.wait(timeout=30)
    assert not any(e["type"] == "run_end" for e in events(only_run(runs)))  # the CLI died mid-run
    r = surgtui("attach", "latest", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    assert " started: tiny" in r.stdout and "run finished" in r.stdout  # the whole history, then the end
    assert r.stdout.count("epoch ") >= 4


def test_bad_input_exits_2_and_creates_no_run_dir(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nlr = -1\n")
    for args in (
        ["run", str(bad)],
        ["run", str(tmp_path / "missing.toml")],
        ["run", str(tiny(tmp_path)), "--set", "optim.lrr=1"],
        ["resume", "nope"],
        ["stop", "nope"],
    ):
        r = surgtui(*args, "--runs-dir", str(runs))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert not runs.exists()


def test_runs_table_formats_and_lists_many_runs_fast(tmp_path: Path) -> None:
    from surgtui.config.load import resolve_data
    from surgtui.runs.events import EventWriter
    from surgtui.runs.store import create_run

    runs = tmp_path / "runs"
    for i in range(30):
        exp, _ = resolve_data({"optim": {"lr": 0.001 * (i + 1)}}, "test", f"exp{i}")
        d = create_run(runs, f"exp{i}", experiment_to_toml(exp))
        with EventWriter(d) as w:
            stand_in_start(w, d, f"exp{i}", config={"optim": {"lr": 0.001 * (i + 1)}})
            w.val(epoch=1, metrics={"map50": i / 30, "map50_95": i / 60}, per_class={})
            w.run_end(status="finished", reason="", best=None, duration_s=1.0)
    data = json.loads(
        surgtui("runs", "--runs-dir", str(runs), "--format", "json", "--sort", "map50_95").stdout
    )
    assert [d["experiment"] for d in data[:2]] == ["exp29", "exp28"]
    csv_out = surgtui("runs", "--runs-dir", str(runs), "--format", "csv").stdout
    assert len(csv_out.strip().splitlines()) == 31
    r = surgtui("runs", "--runs-dir", str(runs), "--sort", "bogus")
    assert r.returncode == 2 and "allowed:" in r.stderr
    cmp = surgtui("compare", data[0]["id"], data[1]["id"], "--runs-dir", str(runs))
    assert cmp.returncode == 0 and "optim.lr" in cmp.stdout and "*" in cmp.stdout


def test_two_devices_on_cpu_train_in_lockstep_with_one_event_stream(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    r = surgtui("run", str(tiny(tmp_path, epochs=2)), "--set", "train.devices=2", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    evs = events(only_run(runs))
    assert [e["type"] for e in evs].count("run_start") == 1 and evs[-1]["status"] == "finished"
    assert evs[0]["world_size"] == 2
    steps = [e["step"] for e in evs if e["type"] == "step"]
    assert steps == list(range(1, steps[-1] + 1))  # rank 0 alone writes: no step twice
    assert any(e["type"] == "log" and e["message"] == "DDP: parameters identical on all 2 ranks" for e in evs)
    assert "torch.distributed.run" in json.loads((only_run(runs) / "run.json").read_text())["command"]
