"""Ordinary faults an operator meets, through the real CLI: two commands at once, unreadable or
newer files, odd directories, a stop before torch has loaded, permissions of new files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, kill_leftover_engines, one_line_error, surgtui, tiny_experiment
from surgtui.runs.events import EventWriter, read_events
from surgtui.runs.store import Run, create_run
from test_tui_fixtures import stand_in_start

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_leftover_engines(tmp_path: Path):
    yield
    kill_leftover_engines(tmp_path)


def wait_for(pred, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def step_events(run_dir: Path) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"]


def stopped_run(tmp_path: Path, epochs: int = 30) -> tuple[Path, Path]:
    """A run stopped after its first step: (runs dir, run dir), ready to resume."""
    runs = tmp_path / "runs"
    rid = surgtui(
        "run", str(tiny_experiment(tmp_path, epochs)), "--runs-dir", str(runs), "--detach"
    ).stdout.strip()
    run_dir = runs / rid
    wait_for(lambda: (run_dir / "events.jsonl").exists() and step_events(run_dir))
    assert surgtui("stop", rid, "--runs-dir", str(runs), "--wait").returncode == 0
    assert Run.load(run_dir).status == "stopped"
    return runs, run_dir


def test_one_engine_per_run_whatever_else_happens(tmp_path: Path) -> None:
    """Two resumes at once start one engine; a hand-started second engine writes nothing; an
    unreadable run.json still reads `running` and `stop --wait` still stops it, process and all."""
    runs, run_dir = stopped_run(tmp_path)
    cmd = [sys.executable, "-m", "surgtui", "resume", run_dir.name, "--runs-dir", str(runs), "--detach"]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    assert sorted(r[0] for r in results) == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    assert "already running" in loser[2] and "Traceback" not in loser[2]
    pid = json.loads((run_dir / "run.json").read_text())["pid"]
    wait_for(lambda: len(step_events(run_dir)) > 2)
    assert Run.load(run_dir).status == "running"

    other = subprocess.run(
        [sys.executable, "-m", "surgtui.engine", str(run_dir), "--resume"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 2 and "already being trained" in other.stderr
    assert not [
        e for e in read_events(run_dir / "events.jsonl") if e["type"] == "run_end" and e["status"] == "failed"
    ]

    (run_dir / "run.json").write_text("{ not json")
    table = json.loads(surgtui("runs", "--runs-dir", str(runs), "--format", "json").stdout)
    assert table[0]["status"] == "running"
    r = surgtui("stop", run_dir.name, "--runs-dir", str(runs), "--wait")
    assert r.returncode == 0 and r.stdout.strip().endswith("stopped"), r.stdout + r.stderr
    # The engine that run.json named was the only one, and `stop --wait` returns once it is gone.
    assert not os.path.exists(f"/proc/{pid}") or " Z " in Path(f"/proc/{pid}/stat").read_text()
    steps = [e["step"] for e in step_events(run_dir)]
    assert steps == list(range(1, steps[-1] + 1))  # no step written twice
    starts = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "run_start"]
    assert len(starts) == 2


def test_stop_right_after_start_ends_stopped_and_resumes(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    rid = surgtui(
        "run", str(tiny_experiment(tmp_path, 1)), "--runs-dir", str(runs), "--detach"
    ).stdout.strip()
    r = surgtui("stop", rid, "--runs-dir", str(runs), "--wait")  # while the engine is still loading torch
    assert r.returncode == 0, r.stderr
    run = Run.load(runs / rid)
    assert run.status == "stopped", (runs / rid / "stderr.log").read_text()
    assert "Traceback" not in (runs / rid / "stderr.log").read_text()
    r = surgtui("resume", rid, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    assert Run.load(runs / rid).summary["step"] == Run.load(runs / rid).summary["total_steps"]


def test_resume_on_a_damaged_checkpoint_says_so_in_one_line(tmp_path: Path) -> None:
    import zipfile

    runs, run_dir = stopped_run(tmp_path)
    last = run_dir / "weights" / "last.pt"
    last.write_bytes(b"this is not a checkpoint")
    line = one_line_error(surgtui("resume", run_dir.name, "--runs-dir", str(runs)))
    assert "last.pt" in line and "not a checkpoint" in line
    assert Run.load(run_dir).status == "stopped"  # refused before anything started

    with zipfile.ZipFile(last, "w") as z:  # a zip, so only the engine can tell
        z.writestr("hello.txt", "hi")
    r = surgtui("resume", run_dir.name, "--runs-dir", str(runs))
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    end = Run.load(run_dir).summary["end"]
    assert end["status"] == "failed" and "not a readable surgtui checkpoint" in end["reason"]


def test_runs_dir_that_cannot_hold_runs_is_one_line(tmp_path: Path) -> None:
    exp = tiny_experiment(tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for runs in (a_file, a_file / "below"):
        line = one_line_error(surgtui("run", str(exp), "--runs-dir", str(runs)))
        assert str(runs) in line


def test_read_only_runs_dir_is_one_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("root ignores file modes and this machine cannot mount a read-only tmpfs")
        ro.chmod(0o555)
    try:
        line = one_line_error(surgtui("run", str(tiny_experiment(tmp_path)), "--runs-dir", str(ro)))
        assert str(ro) in line and ("Read-only" in line or "Permission" in line)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)


def test_data_source_that_is_a_file_makes_no_run_dir(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    a_file = tmp_path / "data.zip"
    a_file.write_bytes(b"PK")
    exp = tiny_experiment(tmp_path)
    exp.write_text(
        exp.read_text().replace("[data.synthetic]", f'[data]\nsource = "{a_file}"\n[data.synthetic]')
    )
    line = one_line_error(surgtui("run", str(exp), "--runs-dir", str(runs)))
    assert "data.source" in line and "a file, not a directory" in line
    assert not runs.exists()


def _runs_with_a_newer_stream(tmp_path: Path) -> tuple[Path, Path, Path]:
    runs = tmp_path / "runs"
    good = create_run(runs, "good", "")
    with EventWriter(good) as w:
        stand_in_start(w, good, "good", config={})
        w.run_end(status="finished", reason="", best=None, duration_s=1.0)
    newer = create_run(runs, "newer", "")
    (newer / "events.jsonl").write_text(
        '{"v":1,"type":"run_start","time":1,"run_id":"x","experiment":"newer"}\n'
        '{"v":99,"type":"step","time":2,"epoch":1,"step":1}\n'
        '{"v":1,"type":"epoch_end","time":3,"epoch":1,"loss":{}}\n'
    )
    return runs, good, newer


def test_a_newer_event_stream_never_hides_the_other_runs(tmp_path: Path) -> None:
    runs, good, newer = _runs_with_a_newer_stream(tmp_path)
    r = surgtui("runs", "--runs-dir", str(runs), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert {row["id"] for row in json.loads(r.stdout)} == {good.name, newer.name}
    (warning,) = r.stderr.strip().splitlines()
    assert newer.name in warning and "version 99" in warning and "upgrade surgtui" in warning
    table = surgtui("runs", "--runs-dir", str(runs))
    assert table.returncode == 0 and good.name in table.stdout and "Traceback" not in table.stderr
    for cmd in (["export", newer.name], ["attach", newer.name]):
        line = one_line_error(surgtui(*cmd, "--runs-dir", str(runs)))
        assert "version 99" in line, cmd
    (newer / "summary.json").write_text(json.dumps({"end": {"status": "finished"}}))  # with a summary too
    line = one_line_error(surgtui("export", newer.name, "--runs-dir", str(runs)))
    assert "version 99" in line


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "surgtui", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=lambda: os.umask(0o022),
        )

    runs = tmp_path / "runs"
    assert run("run", str(tiny_experiment(tmp_path, 1)), "--runs-dir", str(runs)).returncode == 0
    (run_dir,) = runs.iterdir()
    for name in (
        "run.json",
        "summary.json",
        "config.toml",
        "events.jsonl",
        "weights/last.pt",
        "weights/best.pt",
    ):
        assert _mode(run_dir / name) == 0o644, name
    assert run("export", run_dir.name, "--runs-dir", str(runs), "--out", "out.csv").returncode == 0
    assert _mode(tmp_path / "out.csv") == 0o644
    assert run("new", "mine").returncode == 0
    assert _mode(tmp_path / "experiments" / "mine.toml") == 0o644
    r = run(
        "data",
        "synth",
        "--out",
        str(tmp_path / "synth"),
        "--layout",
        "yolo",
        "--videos",
        "1",
        "--frames",
        "2",
        "--size",
        "64x36",
        "--splits",
        "train",
    )
    assert r.returncode == 0, r.stderr
    written = [p for p in (tmp_path / "synth").rglob("*") if p.is_file()]
    assert written and all(_mode(p) == 0o644 for p in written), [(p, oct(_mode(p))) for p in written]
    # An existing file keeps its own mode when rewritten.
    (tmp_path / "out.csv").chmod(0o600)
    assert run("export", run_dir.name, "--runs-dir", str(runs), "--out", "out.csv").returncode == 0
    assert _mode(tmp_path / "out.csv") == 0o600


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_data_check_names_unreadable_images(tmp_path: Path, content: bytes | str) -> None:
    root = tmp_path / "set"
    assert (
        surgtui(
            "data",
            "synth",
            "--out",
            str(root),
            "--layout",
            "coco",
            "--videos",
            "1",
            "--frames",
            "3",
            "--size",
            "128x72",
            "--splits",
            "train",
        ).returncode
        == 0
    )
    victim = sorted((root / "images" / "train").iterdir())[0]
    if content == "truncated":
        data = victim.read_bytes()
        victim.write_bytes(data[: len(data) // 2])
    else:
        victim.write_bytes(content)
    r = surgtui("data", "check", str(root))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert "unreadable_image: 1" in r.stdout and victim.name in r.stdout
