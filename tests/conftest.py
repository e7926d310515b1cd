"""Shared fixtures: an isolated runs dir and synthetic-data cache per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The synthetic data cache is shared by every test in the session, never the user's.
    os.environ.setdefault("SURGTUI_CACHE", str(tmp_path_factory.mktemp("cache")))
    for var in ("MODEL_VARIANT", "LEARNING_RATE", "BATCH_SIZE", "NUM_EPOCHS", "SURGTUI_RUNS_DIR"):
        os.environ.pop(var, None)
    os.environ.setdefault("WANDB_MODE", "offline")


def surgtui(
    *args: str,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float = 600,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "surgtui", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def kill_leftover_engines(root: Path) -> None:
    """After a failed check, leave no detached engine training in the background."""
    import signal as _signal

    from surgtui.runs.launcher import signal_run
    from surgtui.runs.store import list_runs

    for runs_dir in {p.parent.parent for p in root.glob("**/runs/*/run.json")}:
        for run in list_runs(runs_dir):
            signal_run(run, _signal.SIGKILL)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """A user error as the CLI must print it: exit 2, one line on stderr, no traceback."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("surgtui: error: "), r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]


TINY_EXPERIMENT = """
name = "{name}"
variant = "YOLOv5-Nano"
[model]
pretrained = false
img_size = 64
[train]
epochs = {epochs}
batch_size = 4
device = "cpu"
workers = 0
[data.synthetic]
train = 8
val = 4
width = 128
height = 72
[logging]
log_every = 1
{extra}
"""


def tiny_experiment(tmp_path: Path, epochs: int = 3, name: str = "tiny", extra: str = "") -> Path:
    """An experiment file that trains for real in seconds: 64 px, 8 synthetic frames."""
    p = tmp_path / f"{name}.toml"
    p.write_text(TINY_EXPERIMENT.format(name=name, epochs=epochs, extra=extra))
    return p
