"""The training engine end to end: events, checkpoints, resume, signals, failures, and learning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from surgtui.config.load import deep_merge, experiment_to_toml, resolve_data  # noqa: E402
from surgtui.config.schema import SyntheticConfig  # noqa: E402
from surgtui.data.cache import cache_root, synthetic_dataset  # noqa: E402
from surgtui.engine import train as engine  # noqa: E402
from surgtui.engine.runtime import StopFlag  # noqa: E402
from surgtui.errors import ExitCode  # noqa: E402
from surgtui.runs.events import EventWriter, read_events  # noqa: E402
from trained_run import EPOCHS, VAL_EVERY, TrainedRun, trained_run  # noqa: E402, F401

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def coco_root() -> Path:
    """16 training frames (and 4 validation frames) in COCO layout, generated once per session."""
    return synthetic_dataset(SyntheticConfig(train=16, val=4, seed=0), cache_root())


def make_run(tmp_path: Path, coco_root: Path, overrides: dict[str, Any] | None = None) -> Path:
    """A run directory with a frozen config.toml: tiny model, tiny images, no workers."""
    base = {
        "name": "t",
        "variant": "YOLOv5-Nano",
        "model": {"pretrained": False, "img_size": 64, "neck_width": 16},
        "data": {"source": str(coco_root), "augment": {"enabled": True}},
        "train": {"epochs": 2, "batch_size": 8, "workers": 0, "seed": 3},
        "logging": {"log_every": 1},
    }
    exp, _ = resolve_data(deep_merge(base, overrides or {}), "test")
    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(experiment_to_toml(exp))
    return run_dir


def events_of(run_dir: Path, kind: str | None = None) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if kind is None or e["type"] == kind]


class StopAfterEpoch(EventWriter):
    """An event writer that asks the engine to stop once epoch `n` has ended (as SIGINT would)."""

    def __init__(self, run_dir: Path, stop: StopFlag, n: int) -> None:
        super().__init__(run_dir)
        self.stop, self.n = stop, n

    def epoch_end(self, epoch: int, *args: Any, **kw: Any) -> dict:
        if epoch == self.n:
            self.stop.requested = True
        return super().epoch_end(epoch, *args, **kw)


def train_in_process(run_dir: Path, resume: bool = False, stop_after: int | None = None) -> tuple[str, str]:
    from surgtui.config.load import load_frozen

    stop = StopFlag()
    events = StopAfterEpoch(run_dir, stop, stop_after) if stop_after else EventWriter(run_dir)
    try:
        trainer = engine.Trainer(run_dir, load_frozen(run_dir / "config.toml"), events, stop, resume)
        return trainer.fit()
    finally:
        events.close()


def as_version_1(path: Path) -> None:
    """Rewrite a checkpoint as version 1 wrote it: python's and numpy's RNG states pickled as they come."""
    import numpy as np

    ck = torch.load(path, weights_only=True)
    py, npy = ck["rng"]["python"], ck["rng"]["numpy"]
    ck["rng"]["python"] = (py["version"], tuple(py["state"].tolist()), py["gauss"])
    keys = npy["keys"].numpy().astype(np.uint32)
    ck["rng"]["numpy"] = (npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    ck["version"] = 1
    torch.save(ck, path)


def test_resume_after_one_epoch_equals_two_straight_epochs(tmp_path, coco_root):
    straight = make_run(tmp_path / "a", coco_root)
    assert train_in_process(straight)[0] == "finished"
    split = make_run(tmp_path / "b", coco_root)
    assert train_in_process(split, stop_after=1)[0] == "stopped"
    assert [e["step"] for e in events_of(split, "step")] == [1, 2]
    as_version_1(split / "weights" / "last.pt")  # a checkpoint from before weights-only loading
    assert train_in_process(split, resume=True)[0] == "finished"
    logs = [e["message"] for e in events_of(split, "log")]
    assert "weights/last.pt is a version-1 checkpoint; the next save writes version 2" in logs

    # Steps continue without gap or repeat; the resumed run says where it came from.
    assert [e["step"] for e in events_of(split, "step")] == [1, 2, 3, 4]
    assert [e["resumed_from_step"] for e in events_of(split, "run_start")] == [None, 2]
    lr_a = [e["lr"] for e in events_of(straight, "step")]
    lr_b = [e["lr"] for e in events_of(split, "step")]
    assert lr_a == lr_b
    a, b = (torch.load(r / "weights" / "last.pt", weights_only=True) for r in (straight, split))
    assert a["step"] == b["step"] == 4 and a["epoch"] == b["epoch"] == 2 and b["version"] == 2
    for key in ("model", "ema"):
        sa, sb = (
            a[key] if key == "model" else a[key]["module"],
            b[key] if key == "model" else b[key]["module"],
        )
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_events_checkpoints_and_lr_groups(tmp_path, coco_root):
    run_dir = make_run(
        tmp_path,
        coco_root,
        {"train": {"epochs": 2, "val_every": 1}, "optim": {"lr": 0.002}, "logging": {"tensorboard": True}},
    )
    assert engine.run(run_dir) == ExitCode.OK
    ev = events_of(run_dir)
    kinds = [e["type"] for e in ev]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    start = ev[0]
    logs = [e["message"] for e in ev if e["type"] == "log"]
    assert any(m.startswith("backbone lr x1, not optim.backbone_lr_mult = 0.1") for m in logs), logs
    assert any(m.startswith("anchors: best possible recall") for m in logs), logs
    assert start["steps_per_epoch"] == 2 and start["total_steps"] == 4 and start["device"] == "cpu"
    assert start["params"]["total"] == start["params"]["backbone"] + start["params"]["head"]
    for e in events_of(run_dir, "step"):
        assert e["lr"]["backbone"] == pytest.approx(e["lr"]["head"])  # from scratch: no 0.1x for the trunk
        assert set(e["loss"]) == {"coord", "conf", "class", "total"}
    assert [e["epoch"] for e in events_of(run_dir, "val")] == [1, 2]
    val = events_of(run_dir, "val")[0]
    assert set(val["metrics"]) == {"map50", "map50_95", "precision", "recall", "mean_iou"}
    assert set(val["per_class"]) == {"needle", "needle_driver"}
    for v in events_of(run_dir, "val"):  # the training loss on the validation set, beside the metrics
        assert set(v["loss"]) == {"coord", "conf", "class", "total"}
        assert v["loss"]["total"] == pytest.approx(sum(v["loss"][k] for k in ("coord", "conf", "class")))
        assert v["loss"]["conf"] > 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["last"]["val_loss"] == events_of(run_dir, "val")[-1]["loss"]
    ckpts = events_of(run_dir, "checkpoint")
    assert [c["path"] for c in ckpts if not c["best"]] == ["weights/last.pt", "weights/last.pt"]
    assert {c["path"] for c in ckpts if c["best"]} == {"weights/best.pt"}
    assert (run_dir / "weights" / "best.pt").is_file()
    end = ev[-1]
    assert end["status"] == "finished" and end["reason"] == "" and end["best"]["metric"] == "map50_95"
    assert not list((run_dir / "weights").glob("*.tmp"))
    # Checkpoints hold no pickled objects: they load weights-only.
    best, _ = (torch.load(run_dir / "weights" / f, weights_only=True) for f in ("best.pt", "last.pt"))
    shared = torch.load(run_dir / "weights" / "model.pt", weights_only=True)
    assert set(shared) == {"version", "model", "config", "names", "epoch", "best"}  # no optimizer, no RNG
    assert shared["names"] == ["needle", "needle_driver"] and shared["epoch"] == best["epoch"]
    assert all(torch.equal(shared["model"][k], v) for k, v in best["ema"]["module"].items())
    # best.pt and model.pt serve inference: EMA weights in a fresh model.
    from surgtui.engine.checkpoint import load_for_inference

    model, exp = load_for_inference(run_dir / "weights" / "best.pt")
    assert exp.model.img_size == 64 and not model.training
    same, _ = load_for_inference(run_dir / "weights" / "model.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))
    # The TensorBoard mirror holds what the events say, at the global step.
    scalars = tensorboard_scalars(run_dir / "tensorboard")
    steps = events_of(run_dir, "step")
    assert scalars["loss/total"] == [(e["step"], pytest.approx(e["loss"]["total"])) for e in steps]
    assert scalars["lr/head"] == [(e["step"], pytest.approx(e["lr"]["head"])) for e in steps]
    vals = events_of(run_dir, "val")
    at_val = [2 * v["epoch"] for v in vals]  # the epoch's last step: 2 steps per epoch
    assert scalars["val/map50_95"] == [
        (s, pytest.approx(v["metrics"]["map50_95"])) for s, v in zip(at_val, vals)
    ]
    assert scalars["val_loss/coord"] == [(s, pytest.approx(v["loss"]["coord"])) for s, v in zip(at_val, vals)]
    assert [s for s, _ in scalars["epoch_loss/total"]] == [2, 4]


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a TensorBoard log directory, read with TensorBoard's own reader: (step, value)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_purges_what_a_resume_redoes(tmp_path):
    """A run that crashed after step 4 and resumed from step 2 shows steps 3 and 4 once, the redone values."""
    from surgtui.engine.tensorboard_sink import TensorBoardSink

    def attempt(resumed_from: int | None, steps: range, value: float) -> None:
        sink = TensorBoardSink(tmp_path)
        sink({"type": "run_start", "resumed_from_step": resumed_from, "time": 1.0})
        for s in steps:
            sink({"type": "step", "step": s, "epoch": 1, "lr": {}, "loss": {"total": value}, "time": 1.0 + s})
        if resumed_from is None:  # the crashed attempt: what it flushed is all it leaves
            sink.writer.flush()
        else:
            sink({"type": "run_end", "status": "finished", "time": 9.0})

    attempt(None, range(1, 5), 1.0)
    attempt(2, range(3, 5), 2.0)
    shown = tensorboard_scalars(tmp_path / "tensorboard")["loss/total"]
    assert shown == [(1, 1.0), (2, 1.0), (3, 2.0), (4, 2.0)]


def test_tensorboard_missing_is_a_warning(tmp_path, coco_root, monkeypatch):
    from surgtui.config.load import load_frozen

    run_dir = make_run(tmp_path, coco_root, {"logging": {"tensorboard": True}})
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with EventWriter(run_dir) as events:
        engine.attach_sinks(events, load_frozen(run_dir / "config.toml"), run_dir)
    (warning,) = events_of(run_dir, "log")
    assert warning["level"] == "warning" and warning["message"].startswith("TensorBoard logging is off: ")
    assert "pip install 'surgtui[tensorboard]'" in warning["message"]


def test_a_checkpoint_holding_python_objects_is_refused(tmp_path):
    from surgtui.engine.checkpoint import load_checkpoint
    from surgtui.errors import UserError

    path = tmp_path / "foreign.pt"
    torch.save({"model": {}, "config": {}, "extra": PurePosixPath("x")}, path)  # a class to import on load
    with pytest.raises(UserError, match=r"pathlib\.PurePosixPath"):
        load_checkpoint(path)


@pytest.mark.parametrize("clip", [1e-3, 0.0])
def test_gradient_clipping_is_reported(tmp_path, coco_root, clip):
    run_dir = make_run(tmp_path, coco_root, {"train": {"epochs": 1}, "optim": {"grad_clip": clip}})
    assert engine.run(run_dir) == ExitCode.OK
    steps = events_of(run_dir, "step")
    assert len(steps) == 2 and all(s["grad_norm"] > 1e-3 for s in steps)
    assert all(s["clipped"] == (clip > 0) for s in steps)


def test_non_finite_losses_skip_steps_then_fail(tmp_path, coco_root, monkeypatch):
    run_dir = make_run(tmp_path, coco_root, {"train": {"epochs": 3, "max_bad_steps": 3}})
    real = engine.DetectionLoss.__call__

    def nan_loss(self, outputs, targets):
        total, parts = real(self, outputs, targets)
        return total * float("nan"), parts * float("nan")

    monkeypatch.setattr(engine.DetectionLoss, "__call__", nan_loss)
    assert engine.run(run_dir) == ExitCode.FAILED
    warnings = [e for e in events_of(run_dir, "log") if e["level"] == "warning"]
    assert len(warnings) == 3 and "non-finite loss" in warnings[0]["message"]
    end = events_of(run_dir, "run_end")[0]
    assert end["status"] == "failed" and "max_bad_steps" in end["reason"]


def test_an_exception_ends_the_run_failed_with_a_traceback(tmp_path, coco_root, monkeypatch, capsys):
    run_dir = make_run(tmp_path, coco_root, {"train": {"epochs": 1}})

    def broken(*a, **k):
        raise RuntimeError("validation exploded\nsecond line")

    monkeypatch.setattr(engine, "evaluate", broken)
    assert engine.run(run_dir) == ExitCode.FAILED
    end = events_of(run_dir, "run_end")[0]
    assert end["status"] == "failed" and end["reason"] == "RuntimeError: validation exploded"
    assert "Traceback" in capsys.readouterr().err


def test_missing_pretrained_weights_fail_with_exit_2(tmp_path, coco_root, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    run_dir = make_run(tmp_path, coco_root, {"model": {"pretrained": True}})
    assert engine.run(run_dir) == ExitCode.USAGE
    end = events_of(run_dir, "run_end")[0]
    assert end["status"] == "failed"
    assert str(tmp_path / "th" / "hub" / "checkpoints" / "regnet_x_400mf-adf1edd5.pth") in end["reason"]
    assert "Traceback" not in capsys.readouterr().err


def test_resume_without_a_checkpoint_is_a_user_error(tmp_path, coco_root):
    run_dir = make_run(tmp_path, coco_root)
    assert engine.run(run_dir, resume=True) == ExitCode.USAGE
    assert "no checkpoint" in events_of(run_dir, "run_end")[0]["reason"]


@pytest.mark.slow
def test_sigint_stops_after_the_step_with_a_loadable_checkpoint(tmp_path, coco_root):
    run_dir = make_run(tmp_path, coco_root, {"train": {"epochs": 500, "workers": 1}})
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    with open(run_dir / "stderr.log", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "surgtui.engine", str(run_dir)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 120
        while not (run_dir / "events.jsonl").exists() or len(events_of(run_dir, "step")) < 3:
            assert proc.poll() is None, (run_dir / "stderr.log").read_text()
            assert time.time() < deadline, "no step events within 120 s"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # as `surgtui stop` does: the whole process group
        assert proc.wait(timeout=60) == ExitCode.STOPPED
    finally:
        if proc.poll() is None:
            proc.kill()
    end = events_of(run_dir, "run_end")[0]
    assert end["status"] == "stopped" and "SIGINT" in end["reason"]
    ckpt = torch.load(run_dir / "weights" / "last.pt", weights_only=False)
    last_step = events_of(run_dir, "step")[-1]["step"]
    assert ckpt["step"] == last_step
    assert "Traceback" not in (run_dir / "stderr.log").read_text()


@pytest.mark.slow
def test_overfits_the_frames_it_trained_on(trained_run: TrainedRun) -> None:  # noqa: F811
    """Learning, not just running: mAP@0.5 >= 0.9 on the 8 frames it trained on, improving to the last epoch.

    The run is the session's shared one (tests/trained_run.py), trained by the real engine process,
    that eval and predict are tested on: one training proves learning for all three."""
    vals = trained_run.events("val")
    print(", ".join(f"epoch {v['epoch']}: mAP50 {v['metrics']['map50']:.3f}" for v in vals))
    assert [v["epoch"] for v in vals] == list(range(VAL_EVERY, EPOCHS + 1, VAL_EVERY))
    assert vals[0]["metrics"]["map50"] < 0.5 <= vals[-1]["metrics"]["map50"]  # learned, not started there
    assert vals[-1]["metrics"]["map50"] >= 0.9, json.dumps(vals[-1])
    assert trained_run.events("run_end")[0]["best"]["epoch"] == EPOCHS
