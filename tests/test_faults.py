"""Fault injection: the engine killed (SIGKILL) or stopped at each phase of a tiny run, then resumed.

Every case checks what an operator relies on: the run reads `crashed` (or `stopped`),
last.pt loads, resume reaches exactly `total_steps`, the final weights are bit-identical
to an uninterrupted run (workers = 0), best.pt holds the best epoch's weights, and the
history (summary, export) shows each step and epoch once. Phases are reached with
SURGTUI_FAULT (surgtui/engine/faults.py), so each kill lands exactly where it is meant to.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
import torch

from conftest import kill_leftover_engines, surgtui, tiny_experiment
from surgtui.runs.events import read_events
from surgtui.runs.store import Run

pytestmark = pytest.mark.slow

EPOCHS = 3  # 8 frames, batch 4: 2 steps an epoch, 6 in all


@pytest.fixture(autouse=True)
def _no_leftover_engines(tmp_path: Path):
    yield
    kill_leftover_engines(tmp_path)


def run_tiny(tmp_path: Path, fault: str | None = None) -> tuple[int, Path]:
    """`surgtui run` on the tiny experiment (optionally with a fault); (exit code, run dir)."""
    runs = tmp_path / "runs"
    env = dict(os.environ, **({"SURGTUI_FAULT": fault} if fault else {}))
    r = surgtui("run", str(tiny_experiment(tmp_path, EPOCHS)), "--runs-dir", str(runs), env=env)
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return r.returncode, run_dir


def resume(run_dir: Path) -> None:
    r = surgtui("resume", str(run_dir))
    assert r.returncode == 0, r.stdout + r.stderr


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_tensors(a: object, b: object, where: str = "") -> None:
    """Equal down to the last bit, through nested dicts/lists of tensors and numbers."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One uninterrupted run: its weights, its best epoch and how often best.pt was written."""
    tmp = tmp_path_factory.mktemp("reference")
    code, run_dir = run_tiny(tmp)
    assert code == 0
    best_writes = [
        e for e in read_events(run_dir / "events.jsonl") if e["type"] == "checkpoint" and e["best"]
    ]
    return {
        "last": load(run_dir / "weights" / "last.pt"),
        "best": load(run_dir / "weights" / "best.pt"),
        "best_writes": len(best_writes),
        "summary": Run.load(run_dir).summary,
    }


def check_resumed_like_reference(run_dir: Path, reference: dict) -> None:
    last, best = load(run_dir / "weights" / "last.pt"), load(run_dir / "weights" / "best.pt")
    total = reference["summary"]["total_steps"]
    assert last["step"] == total and last["epoch"] == EPOCHS
    for key in ("model", "ema", "optimizer"):
        assert_same_tensors(last[key], reference["last"][key], key)
    assert best["best"] == reference["best"]["best"]  # the same epoch, the same value
    assert_same_tensors(best["model"], reference["best"]["model"], "best.model")

    run = Run.load(run_dir)
    assert run.status == "finished"
    s = run.summary
    # Each step and epoch once, though the crashed attempt logged some of them before the kill.
    assert s["step"] == total and s["steps_logged"] == total
    assert s["best"]["epoch"] == reference["summary"]["best"]["epoch"]
    assert s["best"]["value"] == reference["summary"]["best"]["value"]
    rows = list(csv.DictReader(io.StringIO(surgtui("export", str(run_dir)).stdout)))
    assert [row["epoch"] for row in rows] == [str(e) for e in range(1, EPOCHS + 1)]
    weights = ("last.pt", "best.pt", "model.pt")
    leftovers = [p.name for p in (run_dir / "weights").iterdir() if p.name not in weights]
    assert leftovers == []  # no temp file of the killed save
    # The weights for sharing are best.pt's, however the kill fell between the two files.
    assert_same_tensors(load(run_dir / "weights" / "model.pt")["model"], best["ema"]["module"], "model.pt")


# (phase, which occurrence): a step mid-epoch; validation; the best.pt write, between the two
# files, and the last.pt write, each at the last epoch that improved.
KILLS = ["step#3", "val#2", "checkpoint:best", "checkpoint:between"]  # checkpoint:last: the case below


@pytest.mark.parametrize("phase", KILLS)
def test_kill_at_each_phase_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, phase: str, reference: dict
) -> None:
    if phase in ("checkpoint:best", "checkpoint:between"):
        phase += f"#{reference['best_writes']}"  # the last improvement: where a stale best.pt would show
    code, run_dir = run_tiny(tmp_path, fault=f"{phase}=kill")
    assert code == 1
    run = Run.load(run_dir)
    assert run.status == "crashed"
    ck = load(run_dir / "weights" / "last.pt")  # loadable: the kill never leaves half a checkpoint
    assert ck["step"] < reference["summary"]["total_steps"]
    if phase.startswith("checkpoint:between"):
        # best.pt is already the new epoch's while last.pt is one behind: resume must keep best.pt.
        assert load(run_dir / "weights" / "best.pt")["epoch"] == ck["epoch"] + 1
    resume(run_dir)
    check_resumed_like_reference(run_dir, reference)


def test_stop_mid_epoch_resumes_the_remaining_batches_exactly(tmp_path: Path, reference: dict) -> None:
    code, run_dir = run_tiny(tmp_path, fault="step#3=stop")  # after the first of epoch 2's two batches
    assert code == 130
    ck = load(run_dir / "weights" / "last.pt")
    assert (ck["epoch"], ck["batches_done"], ck["step"]) == (2, 1, 3)
    resume(run_dir)
    steps = [e["step"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"]
    assert steps == list(range(1, reference["summary"]["total_steps"] + 1))  # no step lost, none repeated
    check_resumed_like_reference(run_dir, reference)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    import subprocess

    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


def test_disk_full_during_a_checkpoint_ends_failed_with_the_reason(tmp_path: Path) -> None:
    """A real full disk where this machine allows a small tmpfs, else the OSError injected at the write."""
    small = tmp_path / "small"
    mounted = _mount_tmpfs(small, "40m")  # the tiny model's checkpoint is larger than that
    try:
        where = small if mounted else tmp_path
        fault = None if mounted else "checkpoint:last=enospc"
        code, run_dir = run_tiny(where, fault=fault)
        assert code == 1
        run = Run.load(run_dir)
        assert run.status == "failed"
        assert "disk full" in run.summary["end"]["reason"] and "No space left" in run.summary["end"]["reason"]
        assert list((run_dir / "weights").iterdir()) == []  # the temp file's space is given back
    finally:
        if mounted:
            import subprocess

            subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_a_crash_mid_write_loses_no_event_and_leaves_no_temp_file(tmp_path: Path, reference: dict) -> None:
    """Killed after validating epoch 3, inside last.pt's write: what a kill inside write() leaves
    (half an event line, a checkpoint's temp file) is cleaned up, and readers keep each epoch once."""
    code, run_dir = run_tiny(tmp_path, fault="checkpoint:last#3=kill")
    assert code == 1
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write('{"v":1,"type":"step","epoch":3,"st')
    stale = run_dir / "weights" / ".last.pt.tmp-99999-deadbeef"
    stale.write_bytes(b"\0" * 1024)
    resume(run_dir)

    assert not stale.exists()
    events = read_events(run_dir / "events.jsonl")
    starts = [e for e in events if e["type"] == "run_start"]
    assert len(starts) == 2 and starts[1]["resumed_from_step"] in (4, 6)  # epoch 2's last.pt, or best.pt of 3
    assert events[-1]["type"] == "run_end" and events[-1]["status"] == "finished"
    if starts[1]["resumed_from_step"] == 4:  # epoch 3 redone: the stream holds its val twice
        assert [e["epoch"] for e in events if e["type"] == "val"] == [1, 2, 3, 3]
    rows = list(csv.DictReader(io.StringIO(surgtui("export", str(run_dir)).stdout)))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps_logged"] == summary["total_steps"] == 6
    check_resumed_like_reference(run_dir, reference)
