"""Monitor: min/max downsampling, the batch tail, folding events, and the screen on finished and live runs."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
from pathlib import Path

import pytest

from surgtui.runs.events import EventWriter
from surgtui.runs.lock import proc_start_time
from surgtui.runs.store import create_run, update_run_json
from surgtui.tui.app import SurgApp
from surgtui.tui.follower import RunFollower
from surgtui.tui.screens.monitor import MonitorScreen
from surgtui.tui.series import MinMaxSeries
from surgtui.tui.widgets.curve_plot import CurvePlot
from surgtui.tui.widgets.log_pane import LogPane
from surgtui.tui.widgets.run_progress import RunProgress
from test_tui_fixtures import (
    DEAD_PID,
    EXPERIMENTS,
    T0,
    FrozenClock,
    copy_experiments,
    frozen_events_clock,
    stand_in_start,
    stand_in_step,
    wait_until,
    write_run,
    write_runs,
)

# ---------------------------------------------------------------- pure parts


def test_series_keeps_memory_flat_and_every_extreme() -> None:
    s = MinMaxSeries(capacity=64)
    ys = [math.sin(i / 50) for i in range(100_000)]
    ys[12_345], ys[67_890] = 50.0, -50.0  # two single-step spikes
    for i in range(0, 100_000, 777):  # uneven batches, as polls deliver them
        s.extend(list(range(i, min(i + 777, 100_000))), ys[i : i + 777])
    assert len(s) == 100_000 and len(s._buckets) <= 64
    xs, out = s.points(40)
    assert len(out) <= 80 and xs == sorted(xs)
    assert max(out) == 50.0 and min(out) == -50.0
    assert xs[out.index(50.0)] == 12_345 and xs[out.index(-50.0)] == 67_890


def test_series_skips_gaps_and_keeps_small_data_exact() -> None:
    s = MinMaxSeries()
    s.extend([1, 2, 3], [0.5, None, 0.25])
    assert s.points(100) == ([1, 3], [0.5, 0.25]) and s.last == 0.25


def test_series_truncate_forgets_points_past_a_step() -> None:
    s = MinMaxSeries(capacity=4)
    s.extend(list(range(1, 101)), [float(x) for x in range(1, 101)])
    s.truncate(60)
    xs, ys = s.points(10)
    assert max(xs) <= 60 and xs == sorted(xs) and s.last == max(ys)
    s.extend([61, 62], [-1.0, -2.0])  # the redone steps follow on
    assert s.points(10)[0][-1] == 62 and s.last == -2.0


def test_follower_after_a_crash_and_resume_shows_each_step_once(tmp_path: Path) -> None:
    """The crashed attempt's steps past the checkpoint are dropped when the resume's run_start arrives."""
    run = write_run(tmp_path, "smoke", end=None, done_epochs=2, pid=DEAD_PID)  # 40 steps logged
    with EventWriter(run) as w:  # the resume: from epoch 1's checkpoint, redoing steps 21..40 with new values
        w.run_start(run.name, "smoke", {}, "cpu", 1, {}, 6, 20, 120, resumed_from_step=20)
        for step in range(21, 41):
            w.step(
                2,
                step,
                {"head": 0.001},
                1.0,
                False,
                {"coord": 0.0, "conf": 0.0, "class": 0.0, "total": 9.0},
                1.0,
            )
    f = RunFollower(run)
    while f.poll():
        pass
    v = f.view(buckets=200)
    xs, ys = v.loss_curves["total"]
    assert xs == sorted(set(xs)) and max(xs) == 40  # no step drawn twice, none going back
    assert all(y == 9.0 for x, y in zip(xs, ys) if x > 20)  # the redone values, not the dead attempt's
    assert v.val_curves["map50_95"][0] == [1]  # epoch 2's validation was the dead attempt's
    assert v.best["epoch"] == 1


def _lines(*events: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def test_follower_folds_a_finished_run(tmp_path: Path) -> None:
    run = write_run(tmp_path, "smoke")
    f = RunFollower(run)
    while f.poll():
        pass
    v = f.view(buckets=30)
    assert (v.status, v.epoch, v.epochs, v.step, v.total_steps) == ("finished", 6, 6, 120, 120)
    assert sorted(v.loss_curves) == ["class", "conf", "coord", "total"]
    assert sorted(v.lr_curves) == ["backbone", "head"]
    assert all(len(xs) <= 60 for xs, _ in v.loss_curves.values())
    head = v.lr_curves["head"][1]
    assert max(head) == pytest.approx(math.log10(0.002), abs=0.02)  # log10 of the peak lr
    assert v.val_curves["map50_95"][0] == [1, 2, 3, 4, 5, 6]
    assert v.best == {"epoch": 6, "value": pytest.approx(0.45 * (1 - math.exp(-2)))}
    assert v.clip_share == pytest.approx(7 / 120)
    assert ("warning", "learning rate warmup ends at step 12") in v.logs


def test_follower_reports_a_crash_with_the_engine_stderr(tmp_path: Path) -> None:
    run = write_run(tmp_path, "smoke", end=None, done_epochs=1)
    f = RunFollower(run)
    while f.poll():
        pass
    assert f.status == "created"  # never started by a launcher: not a crash
    assert not [m for _, m in f.view(10).logs if "without run_end" in m]
    run = write_run(tmp_path / "b", "smoke", end=None, done_epochs=1, pid=DEAD_PID)
    (run / "stderr.log").write_text("Traceback (most recent call last):\nRuntimeError: boom\n")
    f = RunFollower(run)
    while f.poll():
        pass
    v = f.view(10)
    assert v.status == "crashed"
    assert ("error", "stderr: RuntimeError: boom") in v.logs
    assert not f.poll()  # reported once


# ---------------------------------------------------------------- the screen


def _log_text(screen: MonitorScreen) -> str:
    return "".join(str(line.text) for line in screen.query_one(LogPane).lines)


async def _monitor(pilot, run_dir: Path) -> MonitorScreen:
    screen = MonitorScreen(run_dir, poll_s=0.05)
    await pilot.app.push_screen(screen)
    await wait_until(pilot, lambda: screen.drawn, what="the plots")
    return screen


def test_monitor_shows_a_finished_run(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments")
    run = write_run(tmp_path / "runs", "smoke")

    async def scenario() -> None:
        async with SurgApp(exps, tmp_path / "runs").run_test(size=(100, 30)) as pilot:
            screen = await _monitor(pilot, run)
            progress = screen.query_one(RunProgress)
            assert "✓ finished" in str(progress.query_one("#run-title").render())
            assert "epoch 6/6  step 120/120" in str(progress.query_one("#run-stats").render())
            assert "mAP50-95 0.389" in str(screen.query_one("#val-latest").render())
            assert "clipped 5.8% of 120 logged steps" in str(screen.query_one("#grad-text").render())
            assert "warning: learning rate warmup ends at step" in _log_text(screen)
            plot = screen.query_one("#plot-loss", CurvePlot)
            legend, *canvas = plot.render().plain.splitlines()
            assert legend.split() == ["━", "coord", "━", "conf", "━", "class", "━", "total"]
            assert not [line for line in canvas if "total" in line]  # the legend covers no curve
            assert canvas[-1].split() == ["50", "100"]  # step ticks: whole numbers
            await pilot.press("s")  # a finished run cannot be stopped: nothing to confirm
            assert pilot.app.screen is screen

    asyncio.run(scenario())


def test_monitor_follows_a_live_run_as_events_arrive(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments")
    run = write_run(tmp_path / "runs", "smoke", end=None, done_epochs=1)

    async def scenario() -> None:
        async with SurgApp(exps, tmp_path / "runs").run_test(size=(100, 30)) as pilot:
            screen = await _monitor(pilot, run)
            assert screen.view.step == 20
            clock = FrozenClock(T0 + 100)
            with frozen_events_clock(clock), EventWriter(run) as w, (run / "events.jsonl").open("a") as raw:
                stand_in_step(w, 2, 21, 25.0, True, {"coord": 0.1, "conf": 0.2, "class": 0.1, "total": 0.4})
                raw.write('{"v":1,"type":"log","time":1764000101,"level":"error","mes')  # half a line
                raw.flush()
                await wait_until(pilot, lambda: screen.view.step == 21, what="step 21")
                raw.write('sage":"data loader stalled"}\n')
                raw.flush()
                await wait_until(
                    pilot,
                    lambda: ("error", "data loader stalled") in screen.view.logs,
                    what="the completed log line",
                )
            assert "(last step clipped)" in str(screen.query_one("#grad-text").render())
            assert "error: data loader stalled" in _log_text(screen)
            await wait_until(pilot, lambda: screen.drawn, what="the plots to catch up")
            assert screen.query_one("#plot-loss", CurvePlot).curves["total"][0][-1] == 21

    asyncio.run(scenario())


def test_a_long_history_folded_in_a_child_process_gives_the_same_view(tmp_path: Path) -> None:
    from surgtui.tui.catch_up import fold, fold_in_child

    run = write_run(tmp_path, "smoke")
    child = fold_in_child(run, 1024)
    here = fold(run, 1024)
    assert child.tail.offset == here.tail.offset > 0
    assert child.view(40) == here.view(40)
    child.poll()  # and it keeps following from where the child stopped


def test_a_monitor_open_across_stop_and_resume_ends_finished_without_a_false_crash(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments")
    run = write_run(tmp_path / "runs", "smoke", done_epochs=3, end="stopped", pid=DEAD_PID)

    async def scenario() -> None:
        async with SurgApp(exps, tmp_path / "runs").run_test(size=(100, 30)) as pilot:
            screen = await _monitor(pilot, run)
            assert screen.view.status == "stopped"
            engine = subprocess.Popen(
                ["sleep", "60"]
            )  # `surgtui resume`: a new engine, a new pid in run.json
            try:
                update_run_json(run, pid=engine.pid, pgid=engine.pid, proc_start=proc_start_time(engine.pid))
                with EventWriter(run) as w:
                    stand_in_start(w, run, "smoke", epochs=6, steps_per_epoch=20, resumed_from_step=60)
                    await wait_until(pilot, lambda: screen.view.status == "running", what="the resumed run")
                    await pilot.pause(1.5)  # a liveness check or two with the new engine
                    assert screen.view.status == "running"
                    stand_in_step(w, 4, 61)
                    w.run_end("finished", "", None, 10.0)
            finally:
                engine.kill()
                engine.wait()
            await wait_until(pilot, lambda: screen.view.status == "finished", what="finished")
            await pilot.pause(1.5)
            assert screen.view.status == "finished"
            assert "without run_end" not in _log_text(screen)
            assert "resumed at step 60 on cpu" in _log_text(screen)
            assert "✓ finished" in str(screen.query_one("#run-title").render())

    asyncio.run(scenario())


def test_the_log_tells_the_story_of_the_run(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments")
    runs = write_runs(tmp_path / "runs")

    async def scenario() -> None:
        async with SurgApp(exps, tmp_path / "runs").run_test(size=(100, 30)) as pilot:
            screen = await _monitor(pilot, runs[0])
            log = _log_text(screen)
            for words in (
                "started on cpu: 6 epochs, 120 steps",
                "epoch 1/6 done in 0:10, loss",
                "validation, epoch 1: mAP50 0.227 mAP50-95 0.128",
                "saved weights/last.pt (new best)",
                "run finished after 1:00",
            ):
                assert words in log
            assert screen.query_one(LogPane).border_subtitle == "1 warning, 0 errors"
            await pilot.app.pop_screen()
            screen = await _monitor(pilot, runs[4])  # crashed: one warning, one error
            assert screen.query_one(LogPane).border_subtitle == "1 warning, 1 error"

    asyncio.run(scenario())


def test_a_starting_run_shows_its_planned_epochs_not_zero_of_zero(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments")
    run = create_run(tmp_path / "runs", "smoke", EXPERIMENTS["smoke"])  # no events yet: torch is importing
    engine = subprocess.Popen(["sleep", "60"])
    update_run_json(run, pid=engine.pid, pgid=engine.pid, proc_start=proc_start_time(engine.pid))

    async def scenario() -> None:
        async with SurgApp(exps, tmp_path / "runs").run_test(size=(100, 30)) as pilot:
            screen = MonitorScreen(run, poll_s=0.05)
            await pilot.app.push_screen(screen)
            await wait_until(pilot, lambda: screen.view is not None, what="the first view")
            stats = str(screen.query_one("#run-stats").render())
            assert "epoch 0/6" in stats and "0/0" not in stats and "step --" in stats
            assert screen.view.status == "running"

    try:
        asyncio.run(scenario())
    finally:
        engine.kill()
        engine.wait()


def test_at_80x24_every_plot_has_its_legend_above_it_and_whole_epochs(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments")
    run = write_run(tmp_path / "runs", "smoke")

    async def scenario() -> None:
        async with SurgApp(exps, tmp_path / "runs").run_test(size=(80, 24)) as pilot:
            screen = await _monitor(pilot, run)
            for plot_id, names in (
                ("plot-loss", ["coord", "conf", "class", "total"]),
                ("plot-lr", ["backbone", "head"]),
                ("plot-val", ["mAP50", "mAP50-95", "P", "R", "IoU"]),
            ):
                legend, *canvas = screen.query_one(f"#{plot_id}", CurvePlot).render().plain.splitlines()
                assert legend.split()[1::2] == names, plot_id
                assert not [line for line in canvas[:-1] if any(n in line.split() for n in names)], plot_id
            ticks = screen.query_one("#plot-val", CurvePlot).render().plain.splitlines()[-1].split()
            assert ticks and all(t.isdigit() for t in ticks), ticks  # epochs: no 2.5

    asyncio.run(scenario())
