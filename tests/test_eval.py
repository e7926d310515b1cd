"""`surgtui eval`: the engine's own validation, standalone, reproduces the run's `val` events exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import one_line_error, surgtui
from trained_run import EPOCHS, TrainedRun, trained_run  # noqa: F401

pytest.importorskip("torch")


def val_event(run: TrainedRun, epoch: int) -> dict:
    (event,) = [e for e in run.events("val") if e["epoch"] == epoch]
    return {"metrics": event["metrics"], "per_class": event["per_class"]}


def eval_json(*args: str) -> dict:
    r = surgtui("eval", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_eval_reproduces_the_val_event_exactly(trained_run: TrainedRun) -> None:  # noqa: F811
    run = trained_run
    best = run.events("run_end")[-1]["best"]
    assert best["epoch"] == EPOCHS  # the run learns to its end, so best.pt and last.pt hold the same epoch
    expected = val_event(run, best["epoch"])
    assert expected["metrics"]["map50"] > 0.5  # a model that finds things: the comparison means something

    # The run (best.pt) on the data it validated on, named three ways; last.pt directly.
    assert eval_json(str(run.run_dir), str(run.data), "--split", "train") == expected
    assert (
        eval_json(run.run_dir.name, "--runs-dir", str(run.runs_dir)) == expected
    )  # the checkpoint's own val data
    assert eval_json(str(run.run_dir / "weights" / "last.pt"), "synthetic", "--split", "train") == val_event(
        run, EPOCHS
    )


@pytest.mark.slow
def test_eval_tables_and_other_data(trained_run: TrainedRun, tmp_path: Path) -> None:  # noqa: F811
    # A copy of the set with only one split: chosen without --split; a batch size other than training's.
    data = tmp_path / "coco"
    shutil.copytree(trained_run.data / "images" / "train", data / "images" / "mine")
    (data / "annotations").mkdir()
    shutil.copy(trained_run.data / "annotations" / "train.json", data / "annotations" / "mine.json")
    r = surgtui("eval", str(trained_run.run_dir), str(data), "--batch", "3", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    expected = val_event(trained_run, EPOCHS)
    out = r.stdout
    assert "best.pt (epoch 60" in out and "split mine: 8 images" in out
    for label in ("mAP50", "mAP50-95", "P", "R", "mean IoU", "needle", "needle_driver", "AP50-95"):
        assert label in out
    assert f"{expected['metrics']['map50']:.4f}" in out
    assert f"{expected['per_class']['needle_driver']['ap50_95']:.4f}" in out
    assert "Traceback" not in r.stderr


def test_bad_data_or_weights_fail_before_the_engine_starts(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    assert "no such data set; expected" in one_line_error(
        surgtui("eval", str(weights), str(tmp_path / "nope"))
    )
    assert "no such weights file" in one_line_error(surgtui("eval", str(tmp_path / "nope.pt"), "synthetic"))
    assert "--device 'gpu'" in one_line_error(surgtui("eval", str(weights), "synthetic", "--device", "gpu"))


@pytest.mark.slow
def test_bad_data_or_split_fails_before_the_engine_starts(trained_run: TrainedRun, tmp_path: Path) -> None:  # noqa: F811
    run = str(trained_run.run_dir)
    assert "split 'nope' not found" in one_line_error(
        surgtui("eval", run, str(trained_run.data), "--split", "nope")
    )
    assert "not a data set" in one_line_error(surgtui("eval", run, str(tmp_path)))
    assert "synthetic set has the splits" in one_line_error(
        surgtui("eval", run, "synthetic", "--split", "test")
    )


def test_help_lists_predict_and_eval() -> None:
    r = surgtui("--help")
    assert "  predict " in r.stdout and "  eval " in r.stdout
    r = surgtui("eval", "--help")
    assert r.returncode == 0 and "--split" in r.stdout and "--json" in r.stdout
