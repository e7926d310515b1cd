"""One tiny trained run shared by the overfit, eval and predict tests (trained once per session).

It is also the overfit test (tests/test_engine_train.py: mAP@0.5 >= 0.9 on its own frames): 8 synthetic
frames of 160×90 (so the model sees them at scale 1 in its 160 px letterbox), YOLOv5-Nano,
random init, AdamW lr 0.01, no augmentation, validating on its own training frames. It is
trained by the real engine process (`python -m surgtui.engine RUN_DIR`) into a run made by
`surgtui.runs.create_run`, so RUN references (`latest`, an id, a path) work on it.

The frames are `surgtui.data.synth.video_frames(SEED, "train", 0, FRAMES, WIDTH, HEIGHT)`:
`surgtui data synth --layout simsurgskill --splits train --videos 1 --frames 8 --size 160x90`
writes the very same frames (and boxes) as a video.

Set SURGTUI_TEST_TRAINED_RUN=DIR to reuse (or create once, then reuse) a run directory across
test sessions while developing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from surgtui.config.load import experiment_to_toml, resolve_data
from surgtui.config.schema import SyntheticConfig
from surgtui.data.cache import TRAIN_SPLIT, cache_root, synthetic_dataset
from surgtui.runs.events import read_events
from surgtui.runs.store import create_run

ROOT = Path(__file__).resolve().parent.parent
FRAMES, WIDTH, HEIGHT, SEED = 8, 160, 90, 0
SYNTHETIC = {"train": FRAMES, "val": 1, "width": WIDTH, "height": HEIGHT, "seed": SEED}
EPOCHS, VAL_EVERY = 60, 20


@dataclass(frozen=True)
class TrainedRun:
    run_dir: Path  # RUN_DIR (run.json, config.toml, events.jsonl, weights/)
    runs_dir: Path  # its parent, for --runs-dir
    data: Path  # the COCO set it trained and validated on (split "train")
    train_s: float  # how long training took (0 when reused)

    def events(self, kind: str | None = None) -> list[dict]:
        return [e for e in read_events(self.run_dir / "events.jsonl") if kind is None or e["type"] == kind]


def experiment(data: Path) -> dict:
    return {
        "name": "tiny",
        "variant": "YOLOv5-Nano",
        "model": {"pretrained": False, "img_size": 160, "neck_width": 64},
        "data": {
            "source": str(data),
            "val_split": TRAIN_SPLIT,
            "augment": {"enabled": False},
            "synthetic": SYNTHETIC,
        },  # `surgtui eval RUN synthetic --split train` is the same set
        "train": {"epochs": EPOCHS, "batch_size": 4, "workers": 0, "seed": 0, "val_every": VAL_EVERY},
        "optim": {"lr": 0.01},
        "logging": {"log_every": 10},
    }


def _finished(run_dir: Path) -> bool:
    ends = (
        [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "run_end"]
        if (run_dir / "events.jsonl").is_file()
        else []
    )
    return bool(ends) and ends[-1]["status"] == "finished" and (run_dir / "weights" / "best.pt").is_file()


def train_tiny_run(runs_dir: Path) -> TrainedRun:
    data = synthetic_dataset(SyntheticConfig(**SYNTHETIC), cache_root())
    existing = sorted(p for p in runs_dir.glob("*-tiny*") if p.is_dir()) if runs_dir.is_dir() else []
    if existing and _finished(existing[-1]):
        return TrainedRun(existing[-1], runs_dir, data, 0.0)
    exp, _ = resolve_data(experiment(data), "test")
    run_dir = create_run(runs_dir, exp.name, experiment_to_toml(exp))
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    t0 = time.time()
    with open(run_dir / "stdout.log", "w") as out, open(run_dir / "stderr.log", "w") as err:
        code = subprocess.call(
            [sys.executable, "-m", "surgtui.engine", str(run_dir)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            timeout=900,
        )
    assert code == 0, (run_dir / "stderr.log").read_text()[-2000:]
    return TrainedRun(run_dir, runs_dir, data, time.time() - t0)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """Trains on first use in the session; later modules (even when the fixture is re-imported) reuse it."""
    reuse = os.environ.get("SURGTUI_TEST_TRAINED_RUN")
    runs_dir = Path(reuse) if reuse else tmp_path_factory.getbasetemp() / "trained-runs"
    return train_tiny_run(runs_dir)
