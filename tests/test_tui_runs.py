"""Runs screen: every run with `surgtui runs`' columns, sorting, filtering, marking, comparing."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import DataTable

from surgtui.runs.rows import STATUS_STYLE
from surgtui.runs.store import list_runs
from surgtui.tui.app import SurgApp
from surgtui.tui.screens.compare import CompareScreen
from surgtui.tui.screens.experiments import ExperimentsScreen
from surgtui.tui.screens.monitor import MonitorScreen
from surgtui.tui.screens.runs import RunsScreen
from surgtui.tui.widgets.curve_plot import CurvePlot
from surgtui.tui.widgets.runs_table import RunsTable
from test_tui_fixtures import T0, copy_experiments, wait_until, write_run, write_runs


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    runs = write_runs(tmp_path / "runs")
    return copy_experiments(tmp_path / "experiments"), tmp_path / "runs", runs


def _ids(table: RunsTable) -> list[str]:
    return [row.key.value for row in table.ordered_rows]


def _column(table: RunsTable, key: str) -> list[str]:
    return [str(table.get_cell(row.key, key)) for row in table.ordered_rows]


async def _runs_screen(pilot) -> tuple[RunsScreen, RunsTable]:
    await pilot.press("f3")
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    table = screen.query_one(RunsTable)
    await wait_until(pilot, lambda: table.row_count == 5, what="five runs")
    return screen, table


def test_table_has_every_run_with_derived_status(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            assert _ids(table) == [r.name for r in reversed(runs)]  # newest first
            assert _column(table, "status") == [
                "✗ crashed",
                "✗ failed",
                "■ stopped",
                "✓ finished",
                "✓ finished",
            ]
            assert _column(table, "epochs")[2] == "3/6"

    asyncio.run(scenario())


def test_sort_by_key_on_the_cursor_column_and_by_header_click(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            table.move_cursor(column=[c.value for c in table.columns].index("map50_95"))
            await pilot.press("s")  # numeric column: best first
            values = _column(table, "map50_95")
            assert values == sorted(values, reverse=True)
            assert _ids(table)[0] == runs[1].name  # the focal run has the best mAP50-95
            await pilot.press("s")  # again: reversed
            assert _column(table, "map50_95") == sorted(values)
            assert table.cursor_column_key == "map50_95"  # the cursor stays put
            table.post_message(
                DataTable.HeaderSelected(table, table.columns["experiment"].key, 2, "experiment")
            )
            await pilot.pause(0.1)
            assert _column(table, "experiment") == sorted(_column(table, "experiment"))
            assert "▲" in str(table.columns["experiment"].label)

    asyncio.run(scenario())


def test_filter_matches_id_experiment_or_status(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            await pilot.press("slash", *"smoke")
            assert sorted(_ids(table)) == [runs[0].name, runs[3].name]
            await pilot.press("ctrl+u", *"stopped")
            assert _ids(table) == [runs[2].name]
            await pilot.press("escape")  # out of the filter box
            assert pilot.app.focused is table
            await pilot.press("escape")  # and the filter cleared
            assert table.row_count == 5

    asyncio.run(scenario())


def test_statuses_refresh_on_a_timer(dirs, tmp_path: Path) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        app = SurgApp(exps, runs_dir)
        async with app.run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            (runs[4] / "events.jsonl").open("a").write(
                '{"v":1,"type":"run_end","time":1764014500,"status":"failed","reason":"x","best":null,'
                '"duration_s":1}\n'
            )
            (runs[4] / "summary.json").unlink()  # rebuilt from the events by Run.load
            await wait_until(
                pilot,
                lambda: _column(table, "status")[0] == "✗ failed",
                timeout=6,
                what="the refreshed status",
            )

    asyncio.run(scenario())


def test_mark_and_compare_shows_config_differences_best_metrics_and_curves(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            await pilot.press("c")
            assert isinstance(pilot.app.screen, RunsScreen)  # fewer than two marked: refused
            table.move_cursor(row=table.get_row_index(runs[0].name))
            await pilot.press("space")
            table.move_cursor(row=table.get_row_index(runs[1].name))
            await pilot.press("space")
            assert screen.marked == [runs[0].name, runs[1].name]
            assert str(table.get_cell(runs[0].name, "mark")) == "◆"
            await pilot.press("c")
            compare = pilot.app.screen
            assert isinstance(compare, CompareScreen)
            config = compare.query_one("#compare-config", DataTable)
            await wait_until(pilot, lambda: config.row_count > 0, what="the comparison")
            keys = [str(config.get_row_at(i)[0]) for i in range(config.row_count)]
            assert "optim.lr" in keys and "variant" in keys and "train.epochs" not in keys
            metrics = compare.query_one("#compare-metrics", DataTable)
            map_row = next(
                metrics.get_row_at(i)
                for i in range(metrics.row_count)
                if str(metrics.get_row_at(i)[0]) == "mAP50-95"
            )
            assert not map_row[1].plain.startswith("★") and map_row[2].plain.startswith("★")
            plot = compare.query_one("#compare-map", CurvePlot)
            assert sorted(plot.curves) == ["1 smoke", "2 focal"]
            assert plot.curves["2 focal"][0] == [1, 2, 3, 4, 5, 6]
            await pilot.press("escape")
            assert isinstance(pilot.app.screen, RunsScreen)

    asyncio.run(scenario())


def test_enter_opens_the_monitor_of_the_run_under_the_cursor(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            await pilot.press("down", "enter")
            assert isinstance(pilot.app.screen, MonitorScreen)
            assert pilot.app.screen.run_dir == runs[3]
            await pilot.press("escape")
            assert pilot.app.screen is screen

    asyncio.run(scenario())


def test_command_palette_offers_the_main_actions_and_runs_them(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        app = SurgApp(exps, runs_dir)
        async with app.run_test(size=(100, 30)) as pilot:
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for title in (
                "Experiments",
                "Runs",
                "Follow latest run",
                "Key bindings",
                "Save experiment",
                "Save experiment as...",
                "Launch experiment",
                "Revert edits",
            ):
                assert title in titles
            await pilot.press("ctrl+p")
            await pilot.pause(0.2)
            await pilot.press(*"Runs")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen), what="the runs screen")
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Compare marked runs" in titles and "Sort runs by mAP50-95" in titles

    asyncio.run(scenario())


def test_help_lists_every_binding_from_the_keymap(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        app = SurgApp(exps, runs_dir)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("question_mark")
            console = Console(width=100, file=io.StringIO(), record=True)
            console.print(app.screen.key_table())
            text = console.export_text()
            for words in ("^s", "Save: Show the diff", "Stop run", "Sort by the column", "f4", "^p"):
                assert words in text
            await pilot.press("escape")
            assert not app.screen.query("#help")

    asyncio.run(scenario())


def _fits(table: RunsTable) -> list[str]:
    """Columns that would be drawn narrower than their header or a cell."""
    too_narrow = []
    for column in table.ordered_columns:
        cells = [table.get_cell(row.key, column.key) for row in table.ordered_rows]
        widest = max([Text.from_markup(str(column.label)).cell_len] + [Text(str(c)).cell_len for c in cells])
        if column.get_render_width(table) - 2 * table.cell_padding < widest:
            too_narrow.append(str(column.key.value))
    return too_narrow


def test_columns_keep_their_width_when_runs_change_behind_a_monitor(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            await pilot.press("enter")
            write_run(runs_dir, "focal", start=T0 + 20_000)  # a run appears while the monitor is open
            await pilot.press("escape")
            await wait_until(pilot, lambda: table.row_count == 6, what="the new run")
            assert _fits(table) == []
            # The widths a draw uses right after an update, before any idle pass could measure cells:
            table.show(list_runs(runs_dir), [], "id", False)  # oldest first: every row redrawn
            assert _fits(table) == []

    asyncio.run(scenario())


def test_marked_is_not_the_finished_tick(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            await pilot.press("space")
            mark = str(table.get_cell(runs[-1].name, "mark"))
            assert mark and mark not in {symbol for symbol, _ in STATUS_STYLE.values()}

    asyncio.run(scenario())


def test_compare_at_80x24_shows_every_best_metric_uncut(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(80, 24)) as pilot:
            await pilot.app.push_screen(CompareScreen(runs[:3]))
            metrics = pilot.app.screen.query_one("#compare-metrics", DataTable)
            await wait_until(pilot, lambda: metrics.row_count == 5, what="the metrics")
            await wait_until(
                pilot,
                lambda: all(p.curves and p.ready for p in pilot.app.screen.query(CurvePlot)),
                what="the curves",
            )
            inside = metrics.scrollable_content_region
            assert metrics.virtual_size.width <= inside.width, "the metrics table is cut on the right"
            assert metrics.virtual_size.height <= inside.height, "the metrics table is cut at the bottom"
            for plot in pilot.app.screen.query(CurvePlot):
                assert plot.render().plain.splitlines()[-1].split() == ["1", "2", "3", "4", "5", "6"]
            await pilot.app.pop_screen()
            # Two runs: each one's config values show too (shortened, numbered as in the legend).
            await pilot.app.push_screen(CompareScreen(runs[:2]))
            config = pilot.app.screen.query_one("#compare-config", DataTable)
            await wait_until(pilot, lambda: config.row_count > 0, what="the config table")
            await pilot.pause(0.1)
            assert config.virtual_size.width <= config.scrollable_content_region.width, (
                "a run's config is cut"
            )

    asyncio.run(scenario())


def test_the_two_kinds_of_best_metric_say_which_they_are(dirs) -> None:
    exps, runs_dir, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(100, 30)) as pilot:
            screen, table = await _runs_screen(pilot)
            assert "metrics at each run's best mAP50-95 epoch" in table.border_title
            await pilot.app.push_screen(CompareScreen(runs[:2]))
            assert "each metric's own best" in pilot.app.screen.query_one("#compare-metrics").border_title

    asyncio.run(scenario())


def test_a_worker_that_fails_says_why_and_the_app_keeps_running(dirs) -> None:
    exps, runs_dir, runs = dirs
    with (runs[1] / "events.jsonl").open("a") as fh:  # a run written by a newer surgtui
        fh.write('{"v":99,"type":"log","time":1764003700,"level":"info","message":"from the future"}\n')

    async def scenario() -> None:
        app = SurgApp(exps, runs_dir)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await app.push_screen(CompareScreen(runs[:2]))
            await wait_until(
                pilot,
                lambda: any("failed" in (n.title or "") for n in app._notifications),
                what="the error notification",
            )
            note = next(n for n in app._notifications if "failed" in (n.title or ""))
            assert "newer than this surgtui understands" in note.message
            await pilot.pause(0.2)
            assert app.is_running and isinstance(app.screen, CompareScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, ExperimentsScreen)

    asyncio.run(scenario())
