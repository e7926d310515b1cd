"""Fixture runs, experiment folders and a stand-in engine for the TUI tests (helpers only: no tests here).

Runs are written through the real EventWriter with a frozen clock, so ids, times,
ETAs and every number on screen are the same on every machine.
"""

from __future__ import annotations

import datetime as dt
import math
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

import surgtui.runs.events
import surgtui.runs.launcher
from surgtui.config.load import Resolved, parse_toml, resolve_data
from surgtui.runs.events import EventWriter
from surgtui.runs.store import create_run, update_run_json

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_764_000_000.0  # 2025-11-24 16:00 UTC
DEAD_PID = 4_194_000  # above any real pid here: reads as a process that is gone


class FrozenClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t


@contextmanager
def frozen_events_clock(clock: FrozenClock):
    with mock.patch.object(surgtui.runs.events, "time", clock):
        yield


def copy_experiments(dest: Path, names: tuple[str, ...] = ("baseline", "focal", "smoke")) -> Path:
    """Fixture experiment files (pinned here: edits to experiments/ must not move the baselines)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        (dest / f"{name}.toml").write_text(EXPERIMENTS[name], encoding="utf-8")
    return dest


def write_run(
    runs_dir: Path,
    experiment: str = "smoke",
    *,
    overrides: tuple[str, ...] = (),
    epochs: int = 6,
    steps_per_epoch: int = 20,
    done_epochs: int | None = None,
    end: str | None = "finished",
    start: float = T0,
    quality: float = 1.0,
    warnings: tuple[str, ...] = ("learning rate warmup ends at step 12",),
    pid: int | None = None,
) -> Path:
    """A run directory with a full, deterministic event history; `end=None` leaves it open."""
    exp, notes = resolve_data(
        parse_toml(EXPERIMENTS[experiment], experiment), f"{experiment}.toml", experiment, overrides, env={}
    )
    resolved = Resolved(exp, None, notes)
    run_dir = create_run(
        runs_dir, exp.name, resolved.to_toml(), now=dt.datetime.fromtimestamp(start, dt.timezone.utc)
    )
    update_run_json(run_dir, pid=pid, pgid=pid, proc_start="0" if pid else None)
    clock = FrozenClock(start)
    total = epochs * steps_per_epoch
    lr0 = exp.optim.lr
    best = None
    with frozen_events_clock(clock), EventWriter(run_dir) as w:
        w.run_start(
            run_dir.name,
            exp.name,
            exp.to_dict(),
            "cpu",
            1,
            {"backbone": 11_200_000, "head": 1_900_000, "total": 13_100_000},
            epochs,
            steps_per_epoch,
            total,
        )
        for epoch in range(1, (done_epochs if done_epochs is not None else epochs) + 1):
            for i in range(steps_per_epoch):
                step = (epoch - 1) * steps_per_epoch + i + 1
                clock.t = start + step * 0.5
                frac = step / total
                warm = min(1.0, frac / 0.1)
                head = lr0 * warm * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
                grad = 4.0 + 3.0 * math.sin(step / 5) + (9.0 if step % 17 == 0 else 0.0)
                coord = 0.08 * math.exp(-frac * 2) + 0.01 * math.sin(step)
                conf = 0.9 * math.exp(-frac * 3 * quality) + 0.05
                cls = 0.3 * math.exp(-frac * 4) + 0.02
                w.step(
                    epoch,
                    step,
                    {"backbone": head * exp.optim.backbone_lr_mult, "head": head},
                    grad,
                    grad > exp.optim.grad_clip,
                    {"coord": coord, "conf": conf, "class": cls, "total": coord + conf + cls},
                    14.0 + (step % 3),
                )
            w.epoch_end(
                epoch, {"coord": coord, "conf": conf, "class": cls, "total": coord + conf + cls}, 10.0
            )
            m = quality * (1 - math.exp(-epoch / 3))
            metrics = {
                "map50": 0.8 * m,
                "map50_95": 0.45 * m,
                "precision": 0.7 * m + 0.1,
                "recall": 0.6 * m + 0.1,
                "mean_iou": 0.5 * m + 0.2,
            }
            w.val(
                epoch,
                metrics,
                {"needle": {"ap50": 0.7 * m, "ap50_95": 0.4 * m, "precision": 0.6, "recall": 0.5}},
            )
            if best is None or metrics["map50_95"] > best["value"]:
                best = {"epoch": epoch, "metric": "map50_95", "value": metrics["map50_95"]}
            w.checkpoint(epoch, "weights/last.pt", best["epoch"] == epoch)
            if epoch == 1:
                for message in warnings:
                    w.log("warning", message)
        if end is not None:
            w.log("info", f"run {end}")
            w.run_end(end, "" if end == "finished" else f"{end} by the fixture", best, clock.t - start)
    return run_dir


def write_runs(runs_dir: Path) -> list[Path]:
    """The runs table fixture: finished, stopped, failed and crashed runs of three experiments."""
    return [
        write_run(runs_dir, "smoke", start=T0),
        write_run(
            runs_dir, "focal", overrides=("train.epochs=6", "optim.lr=0.003"), start=T0 + 3600, quality=1.2
        ),
        write_run(runs_dir, "baseline", start=T0 + 7200, done_epochs=3, end="stopped", quality=0.9),
        write_run(
            runs_dir,
            "smoke",
            start=T0 + 10800,
            done_epochs=1,
            end="failed",
            quality=0.5,
            warnings=("loss is not finite at step 19",),
        ),
        write_run(runs_dir, "baseline", start=T0 + 14400, done_epochs=2, end=None, pid=DEAD_PID),
    ]


async def wait_until(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Let the app run until `condition()` holds (workers and timers need real time)."""
    loop_time = 0.0
    while not condition():
        if loop_time > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)
        loop_time += 0.05


async def type_into(pilot, selector: str, text: str) -> None:
    """Replace a text field's content the way a user would: focus, clear, type."""
    pilot.app.screen.query_one(selector).focus()
    await pilot.press("end", "ctrl+u", *text)


EXPERIMENTS = {
    "baseline": """\
# Baseline: YOLOv5-Small on a ResNet-18 backbone with every improvement of the
# seed at its recommended value. Copy this file to start a new experiment
# (`surgtui new myexp --from experiments/baseline.toml`).
name = "baseline"
description = "YOLOv5-Small, the seed's recommended hyperparameters"
# A preset; every key below overrides it. Nano/Small/Medium/Large/XLarge set the
# model size; Focal, Smooth and Legacy switch improvements on or off.
variant = "YOLOv5-Small"

[model]
backbone = "resnet18"     # resnet18, resnet34 or resnet50 (torchvision)
pretrained = true         # ImageNet weights (true), random init (false), or a path to a state dict
img_size = 640            # network input, a multiple of 32; 1280x720 frames are letterboxed, not squashed

[loss]
coord = 0.1               # weight of the box loss (1 - CIoU); was 0.05 before the seed's changes
conf = 1.5                # weight of the objectness loss; was 1.0
class = 0.8               # weight of the classification loss; was 0.5
focal = false             # focal loss on objectness and class (see focal.toml)
label_smoothing = 0.0     # 0.1 softens targets to 0.95/0.05 (see smooth.toml)
assignment = "iou_center" # try every scale and anchor, score by IoU + centre distance ("size" = old rule)
anchor_iou_threshold = 0.2  # extra positives: other anchors whose shape IoU with the box exceeds this

[optim]
optimizer = "adam"        # adam, adamw or sgd
lr = 0.001                # learning rate of the neck and heads (randomly initialised)
backbone_lr_mult = 0.1    # the pretrained backbone learns 10x slower: lr 0.0001
weight_decay = 0.0005     # L2 on conv and linear weights (not on BatchNorm or biases)
grad_clip = 10.0          # clip the global gradient norm; the UI shows how often it bites

[schedule]
kind = "cosine"           # linear warmup, then cosine decay ("constant" keeps lr after warmup)
warmup_frac = 0.1         # warmup over the first 10% of all steps
min_lr_ratio = 0.01       # cosine ends at lr x 0.01

[train]
epochs = 50
batch_size = 4            # raise it on a large GPU
device = "auto"           # auto (CUDA when present), cpu, cuda, cuda:N
devices = 1               # > 1 starts the engine under torchrun (one process per GPU)
workers = 2               # data-loader processes
seed = 0
amp = true                # mixed precision on CUDA (ignored on CPU)
val_every = 1             # validate every N epochs (and always after the last)

[data]
source = "synthetic"      # built-in synthetic scenes; or a folder made by `surgtui data prepare`
format = "auto"           # auto, coco, yolo or simsurgskill

[logging]
wandb = false             # mirror the run to Weights & Biases (offline without an API key)
wandb_project = "surgtui"
log_every = 10            # write a step event every N optimizer steps
""",
    "focal": """\
# Focal loss for hard examples: small needles and partly hidden instruments.
# Everything else is the baseline's (the YOLOv5-Focal preset).
name = "focal"
description = "YOLOv5-Focal: focal loss on objectness and class"
variant = "YOLOv5-Focal"

[loss]
focal = true
focal_gamma = 2.0         # how strongly easy examples are down-weighted (0 = plain BCE)
focal_alpha = 0.25        # weight of positives against negatives

[model]
pretrained = true
img_size = 640
""",
    "smoke": """\
# Smoke test: a tiny run on built-in synthetic scenes that finishes in about two
# minutes on a laptop CPU. Use it to check an installation, not to judge a model.
name = "smoke"
description = "tiny CPU run on synthetic scenes"
variant = "YOLOv5-Nano"

[model]
pretrained = false        # no download needed
img_size = 160            # tiny input: 320x180 frames letterboxed to 160x90 + padding

[optim]
lr = 0.002

[train]
epochs = 6
batch_size = 8
device = "cpu"
workers = 0               # on a 2-core machine, loader processes slow the step down
val_every = 2

[data]
source = "synthetic"

[data.synthetic]
train = 48                # frames generated once into the cache, then reused
val = 16
width = 320
height = 180
seed = 0

[logging]
log_every = 2
""",
}


# ---------------------------------------------------------------- a stand-in engine


STAND_IN_LOSS = {"coord": 0.1, "conf": 0.5, "class": 0.2, "total": 0.8}


def stand_in_start(
    w: EventWriter,
    run_dir: Path,
    experiment: str,
    epochs: int = 1,
    steps_per_epoch: int = 1,
    config: dict | None = None,
    **kw,
) -> None:
    """A stand-in engine's run_start: a tiny model on the CPU, grad clip 10 unless `config` says otherwise."""
    config = config if config is not None else {"optim": {"grad_clip": 10.0}}
    sizes = (epochs, steps_per_epoch, epochs * steps_per_epoch)
    w.run_start(
        run_dir.name, experiment, config, "cpu", 1, {"backbone": 1, "head": 1, "total": 2}, *sizes, **kw
    )


def stand_in_step(
    w: EventWriter,
    epoch: int,
    step: int,
    grad_norm: float = 1.0,
    clipped: bool = False,
    loss: dict | None = None,
) -> None:
    w.step(epoch, step, {"backbone": 1e-4, "head": 1e-3}, grad_norm, clipped, loss or STAND_IN_LOSS, 100.0)


def stand_in_engine(run_dir: Path) -> int:
    """Writes a step every 20 ms until SIGINT, then checkpoints and ends `stopped` (exit 130)."""
    stop: list[int] = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    started = time.time()
    with EventWriter(run_dir) as w:
        stand_in_start(w, run_dir, "stand-in", epochs=100, steps_per_epoch=100)
        for step in range(1, 10_001):
            if stop:
                w.checkpoint((step - 1) // 100 + 1, "weights/last.pt", False)
                w.run_end("stopped", "SIGINT received", None, time.time() - started)
                return 130
            stand_in_step(w, (step - 1) // 100 + 1, step)
            time.sleep(0.02)
        w.run_end("finished", "", None, time.time() - started)
    return 0


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        surgtui.runs.launcher,
        "engine_command",
        lambda run_dir, topo=None, resume=False: [sys.executable, __file__, str(run_dir)],
    )


if __name__ == "__main__":
    sys.exit(stand_in_engine(Path(sys.argv[1])))
