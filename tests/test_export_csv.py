"""`surgtui export --format yolov5` (YOLOv5's results.csv), and the validation loss where runs are shown.

On the session's shared trained run (tests/trained_run.py): 60 epochs, validated every 20."""

from __future__ import annotations

import csv
import io

import pytest

from conftest import one_line_error, surgtui
from trained_run import EPOCHS, VAL_EVERY, TrainedRun, trained_run  # noqa: F401

pytestmark = pytest.mark.slow

YOLOV5_HEADER = (
    "epoch,train/box_loss,train/obj_loss,train/cls_loss,metrics/precision,metrics/recall,metrics/mAP_0.5,"
    "metrics/mAP_0.5:0.95,val/box_loss,val/obj_loss,val/cls_loss,x/lr0,x/lr1,x/lr2"
).split(",")


def test_yolov5_results_csv_has_its_columns_and_our_numbers(trained_run: TrainedRun) -> None:  # noqa: F811
    runs = ["--runs-dir", str(trained_run.runs_dir)]
    r = surgtui("export", trained_run.run_dir.name, "--format", "yolov5", *runs)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # As YOLOv5's logger writes it: each name right-aligned in 20 characters, values as %20.5g.
    assert lines[0] == ",".join(f"{name:>20}" for name in YOLOV5_HEADER)
    rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(r.stdout))]
    assert [row["epoch"] for row in rows] == list(range(EPOCHS))  # YOLOv5 counts epochs from 0

    epoch = VAL_EVERY  # validated: its own numbers; the next epoch repeats them, as YOLOv5 does
    end = next(e for e in trained_run.events("epoch_end") if e["epoch"] == epoch)
    val = next(e for e in trained_run.events("val") if e["epoch"] == epoch)
    step = [e for e in trained_run.events("step") if e["epoch"] == epoch][-1]
    want = {
        "train/box_loss": end["loss"]["coord"],
        "train/obj_loss": end["loss"]["conf"],
        "train/cls_loss": end["loss"]["class"],
        "metrics/precision": val["metrics"]["precision"],
        "metrics/recall": val["metrics"]["recall"],
        "metrics/mAP_0.5": val["metrics"]["map50"],
        "metrics/mAP_0.5:0.95": val["metrics"]["map50_95"],
        "val/box_loss": val["loss"]["coord"],
        "val/obj_loss": val["loss"]["conf"],
        "val/cls_loss": val["loss"]["class"],
        "x/lr0": step["lr"]["backbone"],
        "x/lr1": step["lr"]["head"],
        "x/lr2": step["lr"]["head"],
    }
    for row in (rows[epoch - 1], rows[epoch]):
        for name in ("metrics/mAP_0.5", "val/box_loss"):
            assert row[name] == pytest.approx(want[name], rel=1e-4), name
    assert {k: rows[epoch - 1][k] for k in want} == pytest.approx(want, rel=1e-4)
    assert rows[0]["metrics/mAP_0.5"] != rows[0]["metrics/mAP_0.5"]  # nan before the first validation

    bad = surgtui("export", trained_run.run_dir.name, "--format", "v8", *runs)
    assert "--format 'v8': allowed: ours, yolov5" in one_line_error(bad)


def test_validation_loss_in_show_attach_and_our_csv(trained_run: TrainedRun) -> None:  # noqa: F811
    runs = ["--runs-dir", str(trained_run.runs_dir)]
    last = trained_run.events("val")[-1]
    total = f"{last['loss']['total']:.4f}"
    shown = surgtui("show", trained_run.run_dir.name, *runs).stdout
    assert f"val loss (epoch {EPOCHS}): coord {last['loss']['coord']:.4f}" in shown, shown
    assert f"train loss (epoch {EPOCHS}): coord" in shown, shown
    followed = surgtui("attach", trained_run.run_dir.name, *runs).stdout.splitlines()  # its history, plain
    assert any(line.startswith(f"val   {EPOCHS} ") and line.endswith(f"loss={total}") for line in followed)
    ours = list(csv.DictReader(io.StringIO(surgtui("export", trained_run.run_dir.name, *runs).stdout)))
    assert float(ours[EPOCHS - 1]["val/total"]) == pytest.approx(last["loss"]["total"])
    assert ours[0]["val/total"] == ""  # not validated at epoch 1
