"""Event stream: flushed lines, tailing a growing file, version checks, the summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from surgtui.runs.events import EventTail, EventVersionError, EventWriter, read_events
from surgtui.runs.layout import EVENTS_FILE
from surgtui.runs.store import read_json


def test_writer_flushes_each_line_for_another_process(tmp_path: Path) -> None:
    w = EventWriter(tmp_path)
    w.log("info", "hello")
    # Another process reads it while the writer is still open: it must already be on disk.
    out = subprocess.run(
        [sys.executable, "-c", f"print(open({str(tmp_path / EVENTS_FILE)!r}).read())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    event = json.loads(out.strip())
    assert event["v"] == 1 and event["type"] == "log" and event["message"] == "hello" and event["time"] > 0
    w.close()


def test_partial_line_is_held_back_until_its_newline(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    tail = EventTail(path)
    assert tail.poll() == []
    line = json.dumps({"v": 1, "type": "log", "time": 1.0, "level": "info", "message": "split"})
    with open(path, "w") as fh:
        fh.write(line[:10])
        fh.flush()
        assert tail.poll() == []
        fh.write(line[10:] + "\n")
        fh.flush()
    events = tail.poll()
    assert [e["message"] for e in events] == ["split"]
    assert tail.poll() == []


def test_a_one_megabyte_line_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    big = "x" * (1 << 20)
    with open(path, "w") as fh:
        fh.write(json.dumps({"v": 1, "type": "log", "time": 1.0, "level": "info", "message": big}) + "\n")
        fh.write(json.dumps({"v": 1, "type": "log", "time": 2.0, "level": "info", "message": "after"}) + "\n")
    events = EventTail(path).poll()
    assert len(events[0]["message"]) == 1 << 20 and events[1]["message"] == "after"


def test_unknown_types_and_fields_are_ignored_and_garbage_skipped(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    path.write_text(
        '{"v":1,"type":"future_thing","time":1}\nnot json\n'
        '{"v":1,"type":"log","time":1,"level":"info","message":"m","extra":{"a":1}}\n'
    )
    events = read_events(path)
    assert [e["type"] for e in events] == ["log"]


def test_newer_major_version_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    path.write_text('{"v":2,"type":"log","time":1}\n')
    with pytest.raises(EventVersionError, match="version 2 is newer"):
        read_events(path)


def test_writer_refuses_oversized_events_and_nan(tmp_path: Path) -> None:
    w = EventWriter(tmp_path)
    with pytest.raises(ValueError, match="64 KiB"):
        w.log("info", "y" * 70_000)
    e = w.step(
        epoch=1,
        step=1,
        lr={"head": 0.1},
        grad_norm=float("nan"),
        clipped=False,
        loss={"total": float("inf")},
        imgs_per_s=1.0,
    )
    assert e["grad_norm"] is None and e["loss"]["total"] is None
    assert read_events(tmp_path / EVENTS_FILE)[-1]["grad_norm"] is None


def _fake_run(w: EventWriter, maps: list[float]) -> None:
    w.run_start(
        run_id="r",
        experiment="exp",
        config={"variant": "YOLOv5-Nano", "optim": {"lr": 0.01, "grad_clip": 10}},
        device="cpu",
        world_size=1,
        params={"total": 1},
        epochs=len(maps),
        steps_per_epoch=2,
        total_steps=2 * len(maps),
    )
    for ep, m in enumerate(maps, 1):
        for s in (1, 2):
            w.step(
                epoch=ep,
                step=2 * (ep - 1) + s,
                lr={"backbone": 0.001, "head": 0.01},
                grad_norm=12.0 if s == 1 else 3.0,
                clipped=s == 1,
                loss={"coord": 1.0, "conf": 1.0, "class": 1.0, "total": 3.0},
                imgs_per_s=5.0,
            )
        w.epoch_end(epoch=ep, loss={"total": 3.0 / ep}, duration_s=1.0)
        w.val(
            epoch=ep,
            metrics={"map50": m * 2, "map50_95": m, "precision": 0.5, "recall": 0.5, "mean_iou": 0.6},
            per_class={"needle": {"ap50": m}},
        )


def test_summary_tracks_best_and_last(tmp_path: Path) -> None:
    w = EventWriter(tmp_path)
    _fake_run(w, [0.1, 0.3, 0.2])
    w.run_end(
        status="finished", reason="", best={"epoch": 2, "metric": "map50_95", "value": 0.3}, duration_s=3.0
    )
    s = read_json(tmp_path / "summary.json")
    assert s["best"]["epoch"] == 2 and s["best"]["value"] == 0.3
    assert s["last"]["metrics"]["map50_95"] == 0.2 and s["epoch"] == 3 and s["step"] == 6
    assert s["clipped_steps"] == 3 and s["end"]["status"] == "finished"
    assert s["hparams"]["lr"] == 0.01 and s["variant"] == "YOLOv5-Nano"


def test_reopened_writer_keeps_the_history(tmp_path: Path) -> None:
    with EventWriter(tmp_path) as w:
        _fake_run(w, [0.4])
    with EventWriter(tmp_path) as w:
        w.val(epoch=2, metrics={"map50_95": 0.1}, per_class={})
    s = read_json(tmp_path / "summary.json")
    assert s["best"]["value"] == 0.4 and s["last"]["metrics"]["map50_95"] == 0.1


def test_a_read_mixing_good_and_bad_lines_keeps_every_good_one(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    good = {"v": 1, "type": "log", "time": 1.0, "level": "info", "message": "m"}
    line = (json.dumps(good) + "\n").encode()
    path.write_bytes(
        line + b"not json\n\n" + b'{"v": 1, "type": "mystery"}\n' + line + b'{"v": 1, "type": "log", "ti'
    )
    tail = EventTail(path)
    assert tail.poll() == [good, good]
    with path.open("ab") as fh:
        fh.write(b'me": 2.0, "level": "info", "message": "joined"}\n' + line)
    assert [e["message"] for e in tail.poll()] == ["joined", "m"]
    with path.open("ab") as fh:
        fh.write(b'{"v": 2, "type": "log"}\n')
    with pytest.raises(EventVersionError):
        tail.poll()
