"""Launch and stop from the UI, end to end: a run directory appears, the monitor follows it, stop ends it.

The fast tests swap the engine for a stand-in process (test_tui_fixtures.py run as a
script: same events, same SIGINT contract, no torch); the slow one runs the real engine.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

import pytest

from surgtui.config.edit import set_fields
from surgtui.runs import launcher
from surgtui.runs.store import Run, list_runs
from surgtui.tui.app import SurgApp
from surgtui.tui.screens.confirm import ConfirmScreen
from surgtui.tui.screens.monitor import MonitorScreen
from test_tui_fixtures import ROOT, copy_experiments, stand_in, wait_until  # noqa: F401  (stand_in: a fixture)


async def _launch_first_experiment(pilot, runs_dir: Path) -> MonitorScreen:
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.draft is not None, what="the experiment list")
    await pilot.press("ctrl+l")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen), what="the monitor")
    assert len(list_runs(runs_dir)) == 1
    return pilot.app.screen


async def _stop(pilot, monitor: MonitorScreen, timeout: float) -> None:
    await pilot.press("s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="the stop dialog")
    await pilot.press("y")
    await wait_until(pilot, lambda: monitor.view.status == "stopped", timeout=timeout, what="status stopped")


@pytest.mark.usefixtures("stand_in")
def test_launch_follow_and_stop(tmp_path: Path) -> None:
    exps, runs_dir = copy_experiments(tmp_path / "experiments", ("smoke",)), tmp_path / "runs"

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            monitor = await _launch_first_experiment(pilot, runs_dir)
            run_dir = monitor.run_dir
            assert (run_dir / "config.toml").read_text().startswith("# surgtui resolved experiment")
            await wait_until(pilot, lambda: monitor.view is not None and monitor.view.step >= 3, what="steps")
            assert monitor.view.status == "running"
            await _stop(pilot, monitor, timeout=10)
            await wait_until(pilot, lambda: not pilot.app.engines, what="the engine to be reaped")
        run = Run.load(run_dir)
        assert run.status == "stopped" and run.meta["exit_code"] == 130

    asyncio.run(scenario())


@pytest.mark.usefixtures("stand_in")
def test_quitting_leaves_the_run_running_and_reopening_follows_it(tmp_path: Path) -> None:
    exps, runs_dir = copy_experiments(tmp_path / "experiments", ("smoke",)), tmp_path / "runs"

    async def first_session() -> Path:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            monitor = await _launch_first_experiment(pilot, runs_dir)
            await wait_until(
                pilot, lambda: monitor.view is not None and monitor.view.step >= 1, what="a step"
            )
            return monitor.run_dir

    async def second_session(run_dir: Path) -> None:
        app = SurgApp(exps, runs_dir)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await wait_until(
                pilot,
                lambda: any("1 run running," in n.message for n in app._notifications),
                what="the note that a run is running",
            )
            await pilot.press("f4")
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen) and monitor.run_dir == run_dir
            await wait_until(
                pilot,
                lambda: monitor.view is not None and monitor.view.status == "running",
                what="the running run",
            )
            step = monitor.view.step
            await wait_until(pilot, lambda: monitor.view.step > step, what="new steps")
            await _stop(pilot, monitor, timeout=10)

    run_dir = asyncio.run(first_session())
    try:
        assert Run.load(run_dir).status == "running"  # quitting the UI did not stop it
        asyncio.run(second_session(run_dir))
    finally:
        launcher.signal_run(Run.load(run_dir), signal.SIGKILL)
    assert Run.load(run_dir).status == "stopped"


@pytest.mark.slow
def test_launch_and_stop_the_real_engine(tmp_path: Path) -> None:
    exps = tmp_path / "experiments"
    exps.mkdir()
    tiny = exps / "tiny.toml"
    shutil.copy(ROOT / "experiments" / "smoke.toml", tiny)
    set_fields(
        tiny,
        {
            "name": "tiny",
            "train.epochs": 500,
            "data.synthetic.train": 16,
            "data.synthetic.val": 4,
            "model.img_size": 64,
            "logging.log_every": 1,
            "train.val_every": 500,
        },
    )
    runs_dir = tmp_path / "runs"

    async def scenario() -> Path:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            monitor = await _launch_first_experiment(pilot, runs_dir)
            await wait_until(
                pilot,
                lambda: monitor.view is not None and monitor.view.step >= 2,
                timeout=240,
                what="the engine's first steps (importing torch takes a while)",
            )
            assert monitor.view.run_id == monitor.run_dir.name and monitor.view.device == "cpu"
            # Plots redraw on a timer: the loss curves follow the steps within a second or so.
            await wait_until(
                pilot,
                lambda: bool(monitor.query_one("#plot-loss").curves),
                timeout=10,
                what="the loss curves on screen",
            )
            await _stop(pilot, monitor, timeout=120)
            return monitor.run_dir

    try:
        run_dir = asyncio.run(scenario())
    finally:  # a failed check must not leave a 500-epoch engine running
        for run in list_runs(runs_dir):
            launcher.signal_run(run, signal.SIGKILL)
    assert Run.load(run_dir).status == "stopped"
    assert (run_dir / "weights" / "last.pt").is_file()


def test_launch_refuses_a_data_source_that_is_a_file_and_keeps_running(tmp_path: Path) -> None:
    exps, runs_dir = copy_experiments(tmp_path / "experiments", ("smoke",)), tmp_path / "runs"
    a_file = tmp_path / "frames.zip"
    a_file.write_bytes(b"PK")
    set_fields(exps / "smoke.toml", {"data.source": str(a_file)})

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen = pilot.app.screen
            await wait_until(pilot, lambda: screen.draft is not None, what="the experiment list")
            await pilot.press("ctrl+l")
            await wait_until(
                pilot,
                lambda: any("a file, not a directory" in n.message for n in pilot.app._notifications),
                what="the refusal",
            )
            assert pilot.app.screen is screen and pilot.app.is_running
        assert not runs_dir.exists() or list_runs(runs_dir) == []

    asyncio.run(scenario())
