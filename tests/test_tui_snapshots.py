"""Screenshots of every screen at 100x30 (and the main two at 80x24) on fixed fixture runs.

Baselines live in tests/snapshots/. Update with `pytest tests/test_tui_snapshots.py --snapshot-update`,
then LOOK at each changed SVG: a baseline recorded from a broken screen passes forever.
Everything is deterministic: fixed run times, relative paths, no clock in the header,
no blinking cursor, and each shot waits until the plots are drawn.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_textual_snapshot
from textual.widgets import Input

from surgtui.tui.app import SurgApp
from surgtui.tui.screens.monitor import MonitorScreen
from surgtui.tui.widgets.log_pane import LogPane
from surgtui.tui.widgets.runs_table import RunsTable
from test_tui_fixtures import copy_experiments, type_into, wait_until, write_runs

WIDE, NARROW = (100, 30), (80, 24)


class _TestsSnapshotsDir(pytest_textual_snapshot.SVGImageExtension):
    @classmethod
    def dirname(cls, *, test_location) -> str:
        return str(Path(test_location.filepath).parent / "snapshots" / test_location.basename)


@pytest.fixture(autouse=True)
def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # snap_compare looks the extension up by name when called: point it at tests/snapshots/.
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", _TestsSnapshotsDir)
    monkeypatch.chdir(tmp_path)  # relative paths: the header shows the same text on every machine
    copy_experiments(Path("experiments"))
    write_runs(Path("runs"))


def _app() -> SurgApp:
    return SurgApp(Path("experiments"), Path("runs"))


async def _experiments_ready(pilot) -> None:
    await wait_until(
        pilot,
        lambda: (
            pilot.app.screen.draft is not None
            and pilot.app.screen.query_one("#experiment-list").row_count == 3
        ),
        what="the experiments",
    )


async def _freeze_cursors(pilot) -> None:
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False


async def _monitor(pilot, index: int = 0) -> None:
    run = sorted(Path("runs").iterdir())[index]
    screen = MonitorScreen(run)
    await pilot.app.push_screen(screen)
    await wait_until(pilot, lambda: screen.drawn, what="the plots")
    log = screen.query_one(LogPane)  # wrapped lines are laid out a frame later, then it scrolls to the end
    await wait_until(pilot, lambda: log.lines and log.scroll_y == log.max_scroll_y, what="the log at its end")


async def _runs(pilot) -> None:
    await pilot.press("f3")
    table = pilot.app.screen.query_one(RunsTable)
    await wait_until(pilot, lambda: table.row_count == 5, what="the runs")


def test_experiments(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=WIDE, run_before=_experiments_ready)


def test_experiments_80x24(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=NARROW, run_before=_experiments_ready)


def test_experiments_invalid_field(snap_compare) -> None:
    async def edit(pilot) -> None:
        await _experiments_ready(pilot)
        await _freeze_cursors(pilot)
        await type_into(pilot, "#field-model-img_size Input", "100")
        await type_into(pilot, "#field-optim-lr Input", "0.002")

    assert snap_compare(_app(), terminal_size=WIDE, run_before=edit)


def test_save_diff_dialog(snap_compare) -> None:
    async def edit_and_save(pilot) -> None:
        await _experiments_ready(pilot)
        await _freeze_cursors(pilot)
        await type_into(pilot, "#field-optim-lr Input", "0.002")
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)

    assert snap_compare(_app(), terminal_size=WIDE, run_before=edit_and_save)


def test_monitor_finished_run(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=WIDE, run_before=_monitor)


def test_monitor_80x24(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=NARROW, run_before=_monitor)


def test_monitor_crashed_run(snap_compare) -> None:
    async def crashed(pilot) -> None:
        await _monitor(pilot, 4)

    assert snap_compare(_app(), terminal_size=WIDE, run_before=crashed)


def test_runs(snap_compare) -> None:
    async def marked(pilot) -> None:
        await _runs(pilot)
        await pilot.press("space", "down", "space")

    assert snap_compare(_app(), terminal_size=WIDE, run_before=marked)


async def _compare_two(pilot) -> None:
    await _runs(pilot)
    await pilot.press("down", "down", "down", "space", "down", "space", "c")
    screen = pilot.app.screen
    await wait_until(
        pilot,
        lambda: all(p.curves and p.ready for p in screen.query("CurvePlot")),
        what="the overlaid curves",
    )


def test_compare(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=WIDE, run_before=_compare_two)


def test_help(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=WIDE, press=["f1"], run_before=_experiments_ready)


def test_compare_80x24(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=NARROW, run_before=_compare_two)


def test_quit_with_unsaved_edits_80x24(snap_compare) -> None:
    async def edit_and_quit(pilot) -> None:
        await _experiments_ready(pilot)
        await _freeze_cursors(pilot)
        await type_into(pilot, "#field-optim-lr Input", "0.002")
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)

    assert snap_compare(_app(), terminal_size=NARROW, run_before=edit_and_quit)
