"""Going on from a run: early stopping (train.patience), fine-tuning from another run's weights
(model.init_from), and resuming with more epochs (`surgtui resume RUN --set train.epochs=N`)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_engine_train import coco_root, make_run  # noqa: E402, F401

from conftest import kill_leftover_engines, one_line_error, surgtui, tiny_experiment  # noqa: E402
from surgtui.config.load import load_frozen  # noqa: E402
from surgtui.engine import train as engine  # noqa: E402
from surgtui.engine.checkpoint import load_checkpoint, model_weights  # noqa: E402
from surgtui.engine.runtime import StopFlag  # noqa: E402
from surgtui.errors import UserError  # noqa: E402
from surgtui.runs.events import EventWriter, read_events  # noqa: E402

pytestmark = pytest.mark.slow
FROZEN = {
    "optim": {"lr": 1e-12},
    "model": {"autoanchor": False},
}  # weights that do not move: no epoch is better


def _events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["type"] == kind]


def test_patience_ends_the_run_finished_with_the_reason(tmp_path: Path, coco_root: Path) -> None:  # noqa: F811
    run_dir = make_run(tmp_path, coco_root, {**FROZEN, "train": {"epochs": 6, "patience": 2}})
    assert engine.run(run_dir) == 0
    (end,) = _events(run_dir, "run_end")
    best = end["best"]["epoch"]  # frozen weights; only BatchNorm statistics still move
    assert end["status"] == "finished" and best + 2 < 6
    assert end["reason"].startswith("early stop: map50_95 not better for 2 epochs (train.patience = 2)")
    assert [e["epoch"] for e in _events(run_dir, "val")] == list(range(1, best + 3))
    assert load_checkpoint(run_dir / "weights" / "last.pt")["epoch"] == best + 2


def test_init_from_starts_from_the_other_runs_weights(tmp_path: Path, coco_root: Path) -> None:  # noqa: F811
    first = make_run(tmp_path / "a", coco_root, {"train": {"epochs": 1}})
    assert engine.run(first) == 0
    best = first / "weights" / "best.pt"
    second = make_run(
        tmp_path / "b", coco_root, {**FROZEN, "model": {"autoanchor": False, "init_from": str(best)}}
    )
    events = EventWriter(second)
    try:
        trainer = engine.Trainer(second, load_frozen(second / "config.toml"), events, StopFlag())
    finally:
        events.close()
    want = model_weights(load_checkpoint(best))
    got = trainer.model.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert any(m.startswith(f"weights from {best} (epoch 1") for _, m in trainer._notes)

    wider = make_run(tmp_path / "c", coco_root, {"model": {"neck_width": 32, "init_from": str(best)}})
    with pytest.raises(
        UserError, match=r"model.init_from = .*best.pt'.*does not fit this run's \(regnet_x_400mf, 32, 1\)"
    ):
        engine.Trainer(wider, load_frozen(wider / "config.toml"), EventWriter(wider), StopFlag())


def test_resume_with_more_epochs_and_init_from_a_run_by_name(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    exp = tiny_experiment(tmp_path, epochs=2)
    assert surgtui("run", str(exp), "--runs-dir", str(runs)).returncode == 0
    (run_dir,) = runs.iterdir()
    rid = run_dir.name

    assert "--set train.epochs=N" in one_line_error(surgtui("resume", rid, "--runs-dir", str(runs)))
    refused = one_line_error(surgtui("resume", rid, "--set", "optim.lr=0.1", "--runs-dir", str(runs)))
    assert "--set optim.lr: cannot change when resuming" in refused and "train.epochs" in refused
    assert "finished after epoch 2" in one_line_error(
        surgtui("resume", rid, "--set", "train.epochs=2", "--runs-dir", str(runs))
    )
    r = surgtui("resume", rid, "--set", "train.epochs=3", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    assert [e["epoch"] for e in _events(run_dir, "val")] == [1, 2, 3]
    assert _events(run_dir, "run_end")[-1]["status"] == "finished"
    assert load_frozen(run_dir / "config.toml").train.epochs == 3
    warning = next(
        e["message"] for e in _events(run_dir, "log") if "differs from the checkpoint" in e["message"]
    )
    assert "train.epochs 2 -> 3" in warning

    r = surgtui("run", str(exp), "--set", "model.init_from=latest", "--detach", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    second = runs / r.stdout.strip()  # the frozen config is written before the engine starts
    assert load_frozen(second / "config.toml").model.init_from == str(
        (run_dir / "weights" / "best.pt").resolve()
    )
    kill_leftover_engines(tmp_path)
    r = surgtui("run", str(exp), "--set", "model.init_from=nope", "--runs-dir", str(runs))
    last = r.stderr.strip().splitlines()[-1]  # after the `note: --set` lines
    assert r.returncode == 2 and last.startswith("surgtui: error: ") and "model.init_from = 'nope'" in last
