"""W&B mirroring: read back from the offline run's own log; a W&B failure never stops training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import surgtui, tiny_experiment
from wandb_records import history

pytestmark = pytest.mark.slow


def run_tiny(tmp_path: Path, **env: str) -> tuple[Path, list[dict]]:
    exp = tiny_experiment(
        tmp_path, epochs=2, name="wb", extra='wandb = true\nwandb_project = "surgtui-tests"'
    )
    full = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    full.update(env, WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "wbconfig"), HOME=str(tmp_path))
    r = surgtui("run", str(exp), "--runs-dir", str(tmp_path / "runs"), env=full)
    assert r.returncode == 0, r.stderr
    (run_dir,) = list((tmp_path / "runs").iterdir())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return run_dir, events


def test_offline_run_history_holds_every_signal(tmp_path: Path) -> None:
    run_dir, events = run_tiny(tmp_path, WANDB_MODE="offline")
    rows = history(run_dir)
    keys = set().union(*rows)
    for key in (
        "lr/backbone",
        "lr/head",
        "grad_norm",
        "clipped",
        "loss/coord",
        "loss/conf",
        "loss/class",
        "loss/total",
        "val/map50",
        "val/map50_95",
        "val/precision",
        "val/recall",
        "val/mean_iou",
        "val/needle/ap50",
        "val/needle_driver/ap50",
    ):
        assert key in keys, key
    steps = [e for e in events if e["type"] == "step"]
    logged = {row["_step"]: row for row in rows if "lr/head" in row}
    assert logged[steps[-1]["step"]]["lr/head"] == pytest.approx(steps[-1]["lr"]["head"])
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["wandb_mode"] == "offline" and meta["wandb_id"]
    shown = surgtui("show", str(run_dir))
    assert "W&B:" in shown.stdout


def test_no_key_and_no_mode_goes_offline_and_says_so(tmp_path: Path) -> None:
    run_dir, events = run_tiny(tmp_path)
    assert any(e["type"] == "log" and "logging offline" in e["message"] for e in events)
    assert list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


def test_a_failing_wandb_is_a_warning_not_a_failed_run(tmp_path: Path) -> None:
    # Online with no API key: wandb.init refuses at once.
    run_dir, events = run_tiny(tmp_path, WANDB_MODE="online")
    assert events[-1]["status"] == "finished"
    assert any(e["type"] == "log" and e["level"] == "warning" and "W&B" in e["message"] for e in events)
