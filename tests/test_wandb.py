"""W&B mirroring: read back from the offline run's own log; a W&B failure never stops training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import surgtui, tiny_experiment
from wandb_records import history

pytestmark = pytest.mark.slow


def wandb_env(tmp_path: Path, **env: str) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    full.update(env, WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "wbconfig"), HOME=str(tmp_path))
    return full


def run_tiny(tmp_path: Path, **env: str) -> tuple[Path, list[dict]]:
    exp = tiny_experiment(
        tmp_path, epochs=2, name="wb", extra='wandb = true\nwandb_project = "surgtui-tests"'
    )
    r = surgtui("run", str(exp), "--runs-dir", str(tmp_path / "runs"), env=wandb_env(tmp_path, **env))
    assert r.returncode == 0, r.stderr
    (run_dir,) = list((tmp_path / "runs").iterdir())
    return run_dir, read_events(run_dir)


def read_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_offline_run_history_holds_every_signal_and_a_resume_goes_on_in_it(tmp_path: Path) -> None:
    run_dir, events = run_tiny(tmp_path)  # no API key and no WANDB_MODE: offline, said once
    assert sum(e["type"] == "log" and "logging offline" in e["message"] for e in events) == 1
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
        "val_loss/total",
    ):
        assert key in keys, key
    steps = [e for e in events if e["type"] == "step"]
    logged = {row["_step"]: row for row in rows if "lr/head" in row}
    assert logged[steps[-1]["step"]]["lr/head"] == pytest.approx(steps[-1]["lr"]["head"])
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["wandb_mode"] == "offline" and meta["wandb_id"]
    shown = surgtui("show", str(run_dir))
    assert "W&B:" in shown.stdout

    # Resumed for one more epoch: the same W&B run goes on in a second offline directory with its id,
    # from the step after the first part's last, so `wandb sync` uploads one run.
    env, runs = wandb_env(tmp_path), ["--runs-dir", str(tmp_path / "runs")]
    r = surgtui("resume", run_dir.name, "--set", "train.epochs=3", *runs, env=env)
    assert r.returncode == 0, r.stderr
    first, second = sorted(run_dir.glob("wandb/offline-run-*"))
    assert first.name.endswith(f"-{meta['wandb_id']}") and second.name.endswith(f"-{meta['wandb_id']}")
    assert json.loads((run_dir / "run.json").read_text())["wandb_id"] == meta["wandb_id"]
    resumed = [row["_step"] for row in history(run_dir, second) if "lr/head" in row]
    assert resumed == [e["step"] for e in read_events(run_dir) if e["type"] == "step" and e["epoch"] == 3]
    assert min(resumed) == steps[-1]["step"] + 1
    synced = surgtui("sync", "--all", "--dry-run", *runs, env=env)
    assert synced.returncode == 0, synced.stderr
    assert first.name in synced.stdout + synced.stderr and second.name in synced.stdout + synced.stderr


def test_a_failing_wandb_is_a_warning_not_a_failed_run(tmp_path: Path) -> None:
    # Online with no API key: wandb.init refuses at once.
    run_dir, events = run_tiny(tmp_path, WANDB_MODE="online")
    assert events[-1]["status"] == "finished"
    assert any(e["type"] == "log" and e["level"] == "warning" and "W&B" in e["message"] for e in events)
