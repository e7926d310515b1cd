"""Sweeps screen (F5): a real sweep directory and Optuna study, members as run dirs written by the
EventWriter, trials recorded as the scheduler records them; a scheduler-like child process holds the lock."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from rich.console import Console

from conftest import one_line_error, surgtui, tiny_experiment
from surgtui.cli.sweep import create_sweep
from surgtui.runs.events import read_events
from surgtui.sweeps import study as st
from surgtui.sweeps.spec import SweepSpec
from surgtui.sweeps.store import STATUS_JSON, STUDY_DB, SWEEP_JSON
from surgtui.tui.app import SurgApp
from surgtui.tui.screens import sweeps as sweeps_screen
from surgtui.tui.screens.confirm import ConfirmScreen
from surgtui.tui.screens.monitor import MonitorScreen
from surgtui.tui.screens.sweeps import SweepsScreen
from surgtui.tui.widgets.curve_plot import CurvePlot
from surgtui.tui.widgets.sweep_list import SweepList
from surgtui.tui.widgets.sweep_table import SweepTable
from test_tui_fixtures import T0, copy_experiments, wait_until, write_run

SWEEP_FILE = '[sweep]\nexperiment = "tiny.toml"\nname = "lr"\nseeds = [0, 1]\n[sweep.space]\n"optim.lr" = [0.003, 0.01, 0.03]\n'
# (quality of the fixture run, what becomes of the member), in the order the scheduler launches them:
# c0 s0, c0 s1, c1 s0, c1 s1, c2 s0; c2 s1 stays waiting.
PLAN = [(1.0, "finished"), (1.1, "finished"), (1.3, "finished"), (0.5, "pruned"), (0.8, "running")]
EPOCHS = {"finished": 3, "pruned": 1, "running": 2}
ENDS = {"finished": "finished", "pruned": "stopped", "running": None}

# A stand-in scheduler: holds the sweep's lock as the real one does, ends `stopped` on SIGINT.
SCHEDULER = """
import os, signal, sys, time
from pathlib import Path
from surgtui.sweeps.store import claim_sweep, set_status
sweep_dir = Path(sys.argv[1])
lock = claim_sweep(sweep_dir)
def stop(*_):
    set_status(sweep_dir, "stopped")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def build_sweep(root: Path) -> tuple[Path, Path, dict[tuple[int, int], tuple[Path, list[float]]]]:
    """(runs dir, sweep dir, (config, seed) -> (member run dir, its mAP50-95 per epoch))."""
    tiny_experiment(root)
    (root / "sweep.toml").write_text(SWEEP_FILE)
    runs = root / "runs"
    sweep_dir = create_sweep(root / "sweep.toml", [], None, runs, None)
    info = json.loads((sweep_dir / SWEEP_JSON).read_text())
    spec = SweepSpec.from_dict(info["spec"])
    study = st.open_study(spec, info["storage"], info["study"])
    members = {}
    for i, (quality, fate) in enumerate(PLAN):
        trial = st.next_trial(study, spec, st.configs_made(study))
        config, seed = trial.user_attrs[st.CONFIG_ATTR], trial.user_attrs[st.SEED_ATTR]
        run_dir = write_run(
            runs,
            "smoke",
            overrides=(f'name="lr-c{config}-s{seed}"',),
            epochs=3,
            steps_per_epoch=2,
            done_epochs=EPOCHS[fate],
            end=ENDS[fate],
            start=T0 + 60 * i,
            quality=quality,
        )
        trial.set_user_attr(st.RUN_ATTR, run_dir.name)
        values = [
            e["metrics"]["map50_95"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "val"
        ]
        for epoch, value in enumerate(values, 1):
            trial.report(value, epoch)
        if fate == "finished":
            study.tell(trial, max(values))
        elif fate == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        members[(config, seed)] = (run_dir, values)
    return runs, sweep_dir, members


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """Read-only for the tests that share it (`copy_of` for one that changes it)."""
    root = tmp_path_factory.mktemp("sweep")
    return (copy_experiments(root / "experiments", ("smoke",)), *build_sweep(root))


def copy_of(runs: Path, sweep_dir: Path, dest: Path) -> tuple[Path, Path]:
    """The runs dir with its sweep and members, copied: faster than making a study again."""
    shutil.copytree(runs, dest / "runs")
    copy = dest / "runs" / "sweeps" / sweep_dir.name
    info = json.loads((copy / SWEEP_JSON).read_text())
    info["storage"] = f"sqlite:///{copy / STUDY_DB}"
    (copy / SWEEP_JSON).write_text(json.dumps(info))
    return dest / "runs", copy


def _cell(table: SweepTable, config: int, column: str) -> str:
    return str(table.get_cell(str(config), column))


async def _sweeps_screen(pilot, rows: int = 3) -> tuple[SweepsScreen, SweepTable]:
    await pilot.press("f5")
    screen = pilot.app.screen
    assert isinstance(screen, SweepsScreen)
    table = screen.query_one(SweepTable)
    await wait_until(pilot, lambda: table.row_count == rows, what=f"{rows} configurations")
    return screen, table


def test_f5_shows_the_sweep_with_mean_std_per_configuration_best_pruned_and_curves(built) -> None:
    exps, runs, sweep_dir, members = built
    result = {key: max(values) for key, (_, values) in members.items()}

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen, table = await _sweeps_screen(pilot)
            sweeps = screen.query_one(SweepList)
            assert sweeps.row_count == 1
            assert [c.plain if hasattr(c, "plain") else c for c in sweeps.get_row(sweep_dir.name)] == [
                sweep_dir.name,
                "✗ crashed",  # no scheduler holds the lock and none recorded an end
                "4/6",  # finished, finished, finished, pruned of 3 configurations x 2 seeds
                f"mAP50-95 {result[1, 0]:.4f}",
            ]
            c0 = [result[0, 0], result[0, 1]]
            assert _cell(table, 0, "mean") == f"{statistics.fmean(c0):.4f} ± {statistics.stdev(c0):.4f}"
            assert _cell(table, 1, "mean") == f"{result[1, 0]:.4f} ± 0.0000"  # the pruned seed is left out
            assert _cell(table, 2, "mean") == "-"
            assert [_cell(table, c, "mark") for c in range(3)] == ["", "★", ""]  # c1 beats c0's mean
            assert _cell(table, 0, "param-optim.lr") == "0.003"
            assert _cell(table, 0, "seed-1") == f"✓ {result[0, 1]:.4f}"
            assert _cell(table, 1, "seed-1") == "✂ pruned"
            assert table.get_cell("1", "seed-1").style == "dim"
            assert [_cell(table, 2, f"seed-{s}") for s in (0, 1)] == ["● running", "○ waiting"]
            assert "3/3 configurations" in table.border_title and table.border_subtitle == "1 pruned"
            plot = screen.query_one("#sweep-curves", CurvePlot)
            assert plot.curves == {
                f"c{c} s{s}": (list(range(1, len(values) + 1)), values)
                for (c, s), (_, values) in members.items()
            }
            assert "mAP50-95" in plot.border_title

    asyncio.run(scenario())


def test_enter_on_a_member_opens_its_monitor(built) -> None:
    exps, runs, sweep_dir, members = built

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen, table = await _sweeps_screen(pilot)
            await pilot.press("enter")  # from the sweep list into its table
            assert pilot.app.focused is table
            table.move_cursor(row=0, column=table.get_column_index("seed-1"))
            await pilot.press("enter")
            assert isinstance(pilot.app.screen, MonitorScreen)
            assert pilot.app.screen.run_dir == members[0, 1][0]
            await pilot.press("escape")
            assert pilot.app.screen is screen
            table.move_cursor(row=1, column=table.get_column_index("mean"))  # not on a seed: the first
            await pilot.press("o")
            assert pilot.app.screen.run_dir == members[1, 0][0]

    asyncio.run(scenario())


def test_stop_asks_then_signals_the_scheduler_and_the_table_is_live(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeps_screen, "REFRESH_S", 0.5)  # the timer, four times as often
    exps, runs, sweep_dir, _ = built
    runs, sweep_dir = copy_of(runs, sweep_dir, tmp_path)
    scheduler = subprocess.Popen(
        [sys.executable, "-c", SCHEDULER, str(sweep_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert scheduler.stdout.readline().strip() == "ready"

        async def scenario() -> None:
            app = SurgApp(exps, runs)
            async with app.run_test(size=(100, 30), notifications=True) as pilot:
                screen, table = await _sweeps_screen(pilot)
                assert "running" in table.border_title
                footer = {b.binding.description for b in screen.active_bindings.values() if b.enabled}
                assert "Stop sweep" in footer
                # The running member finishes; the scheduler tells the study: the screen follows.
                info = json.loads((sweep_dir / SWEEP_JSON).read_text())
                spec = SweepSpec.from_dict(info["spec"])
                study = st.open_study(spec, info["storage"], info["study"])
                (running,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                study.tell(running.number, 0.25)
                await wait_until(
                    pilot, lambda: _cell(table, 2, "seed-0") == "✓ 0.2500", timeout=8, what="the new result"
                )
                await pilot.press("x")
                assert isinstance(app.screen, ConfirmScreen)
                await pilot.press("n")
                await pilot.pause(0.3)
                assert scheduler.poll() is None  # no: nothing sent, the scheduler goes on
                await pilot.press("x", "y")
                assert scheduler.wait(timeout=10) == 0
                assert json.loads((sweep_dir / STATUS_JSON).read_text())["state"] == "stopped"
                await wait_until(pilot, lambda: "(stopped)" in table.border_title, timeout=8, what="stopped")
                assert not screen.check_action("stop", ())  # x leaves the footer with the scheduler
                assert any("stopping sweep" in n.message for n in app._notifications)

        asyncio.run(scenario())
    finally:
        scheduler.kill()
        scheduler.wait()


def test_the_cli_stops_a_sweep_the_same_way(built, tmp_path: Path) -> None:
    _, runs, sweep_dir, _ = built
    runs, sweep_dir = copy_of(runs, sweep_dir, tmp_path)
    assert "is not running (crashed)" in one_line_error(
        surgtui("sweep", "stop", sweep_dir.name, "--runs-dir", str(runs))
    )
    scheduler = subprocess.Popen(
        [sys.executable, "-c", SCHEDULER, str(sweep_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert scheduler.stdout.readline().strip() == "ready"
        r = surgtui("sweep", "stop", "latest", "--runs-dir", str(runs))
        assert r.returncode == 0 and r.stdout.strip() == f"stopping {sweep_dir.name}", r.stderr
        assert scheduler.wait(timeout=10) == 0
    finally:
        scheduler.kill()
        scheduler.wait()


def test_no_sweeps_says_how_to_start_one_and_help_lists_f5(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments", ("smoke",))

    async def scenario() -> None:
        app = SurgApp(exps, tmp_path / "runs")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f5")
            screen = app.screen
            assert isinstance(screen, SweepsScreen)
            await wait_until(pilot, lambda: screen.view is not None, what="the sweeps read")
            message = str(screen.query_one("#sweeps-message").render())
            assert "surgtui sweep experiments/sweep-lr.toml" in message
            assert not screen.query_one(SweepTable).display
            assert "Stop sweep" not in {
                b.binding.description for b in screen.active_bindings.values() if b.enabled
            }
            await pilot.press("question_mark")
            console = Console(width=100, file=io.StringIO(), record=True)
            console.print(app.screen.key_table())
            text = console.export_text()
            assert "f5" in text and "Sweeps" in text and "Stop sweep: Confirm" in text

    asyncio.run(scenario())


def test_a_broken_sweep_shows_its_error_not_a_traceback(built, tmp_path: Path) -> None:
    exps, good_runs, good_sweep, _ = built
    runs = tmp_path / "runs"
    bad = runs / "sweeps" / "20990101-000001-bad"
    bad.mkdir(parents=True)
    (bad / SWEEP_JSON).write_text("{not json")
    gone = runs / "sweeps" / "20990101-000000-gone"
    gone.mkdir()
    info = json.loads((good_sweep / SWEEP_JSON).read_text())
    info["storage"] = f"sqlite:///{gone / STUDY_DB}"
    (gone / SWEEP_JSON).write_text(json.dumps(info))

    async def scenario() -> None:
        app = SurgApp(exps, runs)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await pilot.press("f5")
            screen = app.screen
            sweeps = screen.query_one(SweepList)
            await wait_until(pilot, lambda: sweeps.row_count == 2, what="both sweeps")
            message = screen.query_one("#sweeps-message")
            await wait_until(pilot, lambda: "not readable as JSON" in str(message.render()), what="the error")
            assert "bad/sweep.json" in str(message.render())
            assert sweeps.get_row(bad.name)[3].plain == "✗ cannot read it"
            await pilot.press("down")
            await wait_until(pilot, lambda: "database is missing" in str(message.render()), what="the error")
            assert str(gone / STUDY_DB) in str(message.render())
            assert not (gone / STUDY_DB).exists()  # reading made no empty study
            assert not [n for n in app._notifications if n.severity == "error"]
            assert app.is_running

    asyncio.run(scenario())
