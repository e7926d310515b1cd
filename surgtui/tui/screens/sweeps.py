"""Sweeps: every sweep of the runs dir and, for the highlighted one, its table (one row per
configuration) and its members' validation curves, refreshed every two seconds."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from surgtui.runs.metrics import METRIC_LABELS
from surgtui.tui import keymap
from surgtui.tui.messages import OpenRun, StopSweep
from surgtui.tui.sweep_view import SweepDetail, SweepItem, SweepsReader, SweepsView
from surgtui.tui.widgets.curve_plot import CurvePlot
from surgtui.tui.widgets.sweep_list import SweepList
from surgtui.tui.widgets.sweep_table import SweepTable
from surgtui.tui.workers import background

REFRESH_S = 2.0
EXAMPLE = "surgtui sweep experiments/sweep-lr.toml"


class SweepsScreen(Screen):
    BINDINGS = keymap.SWEEPS
    AUTO_FOCUS = "#sweep-list"

    def __init__(self, runs_dir: Path, refresh_s: float | None = None) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.refresh_s = refresh_s or REFRESH_S  # read when made: a test can shorten it
        self.reader = SweepsReader(self.runs_dir)
        self.selected: str | None = None  # the highlighted sweep's id
        self.view: SweepsView | None = None
        self._timer: Timer | None = None
        self._reading: Worker | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield SweepList(id="sweep-list")
        yield Static("", id="sweeps-message", markup=False)
        yield SweepTable(id="sweep-table")
        yield CurvePlot("validation by epoch, one line per member", id="sweep-curves")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        from surgtui.sweeps.store import sweeps_root  # no Optuna behind it

        self.sub_title = str(sweeps_root(self.runs_dir))
        self.query_one(SweepList).border_title = "sweeps"
        self._timer = self.set_interval(self.refresh_s, self._tick)

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
        self._read()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()  # nobody is looking: no need to open every study

    def _tick(self) -> None:
        # A read slower than the timer (Optuna's first import on a busy machine) is not cut short.
        if self._reading is None or self._reading.is_finished:
            self._read()

    def _read(self) -> None:
        self._reading = self.refresh_sweeps()

    @background(group="sweeps", what="reading sweeps")
    def refresh_sweeps(self) -> SweepsView:
        """Opens each running sweep's study (SQLite, Optuna) and tails its members' events: off the UI thread."""
        return self.reader.read(self.selected)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "sweeps" and event.state is WorkerState.SUCCESS:
            self._show(event.worker.result)

    def _show(self, view: SweepsView) -> None:
        self.view = view
        sweeps = self.query_one(SweepList)
        sweeps.show(view.items)
        n = len(view.items)
        sweeps.border_title = f"{n} sweep{'s' * (n != 1)}, newest first" if n else "no sweeps"
        detail = view.detail
        if detail is not None and self.selected not in (None, detail.item.id):
            if any(i.id == self.selected for i in view.items):
                self._read()  # read for a sweep highlighted before: read the one highlighted now
                return
        if detail is not None:
            self.selected = detail.item.id  # the newest at first, or the one that took a gone one's place
        message = self.query_one("#sweeps-message", Static)
        self.set_class(detail is None or bool(detail.item.error), "-message")
        self.set_class(detail is not None and bool(detail.item.error), "-error")
        if detail is None:
            message.update(
                f"No sweeps in {self.sub_title} yet. Start one from a shell:\n\n    {EXAMPLE}\n\n"
                "A sweep file names a base experiment, the values to try and the seeds "
                "(docs/sweeps.md). The sweep shows up here as soon as it starts."
            )
        elif detail.item.error:
            message.update(f"sweep {detail.item.id} cannot be read:\n{detail.item.error}")
        else:
            self._show_detail(detail)
        self.refresh_bindings()  # `x` stop is offered only while the sweep runs

    def _show_detail(self, detail: SweepDetail) -> None:
        item = detail.item
        label = METRIC_LABELS.get(item.metric, item.metric)
        table = self.query_one(SweepTable)
        table.show(detail)
        table.border_title = (
            f"{item.id} ({item.state}): {label}, {detail.direction}, "
            f"{len(detail.rows)}/{detail.n_configs} configurations"
        )
        counts = [(sum(r.count(s) for r in detail.rows), s) for s in ("pruned", "failed")]
        table.border_subtitle = ", ".join(f"{n} {s}" for n, s in counts if n) or (
            "" if detail.rows else "no members yet"
        )
        plot = self.query_one("#sweep-curves", CurvePlot)
        plot.border_title = f"val {label} by epoch, one line per member (c<config> s<seed>)"
        plot.show(detail.curves)

    def _item(self) -> SweepItem | None:
        if self.view is None:
            return None
        return next((i for i in self.view.items if i.id == self.selected), None)

    def _detail(self) -> SweepDetail | None:
        detail = self.view.detail if self.view is not None else None
        if detail is None or detail.item.error or detail.item.id != self.selected:
            return None
        return detail

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not isinstance(event.data_table, SweepList) or event.row_key.value == self.selected:
            return
        self.selected = event.row_key.value
        detail = self.view.detail if self.view is not None else None
        if detail is None or detail.item.id != self.selected:
            self._read()
        self.refresh_bindings()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, SweepList):
            self.query_one(SweepTable).focus()

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        if isinstance(event.data_table, SweepTable):
            self.action_open()

    def action_open(self) -> None:
        detail = self._detail()
        run_id = self.query_one(SweepTable).cursor_member() if detail is not None else None
        if detail is None or run_id is None:
            self.notify("no member run here yet", severity="warning")
            return
        run_dir = detail.run_dir(run_id)
        if not run_dir.is_dir():  # a shared study's member that another machine runs
            self.notify(f"{run_id} is not in {run_dir.parent}", severity="warning", markup=False)
            return
        self.post_message(OpenRun(run_dir))

    def action_focus_list(self) -> None:
        self.query_one(SweepList).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            item = self._item()
            return item is not None and item.state == "running"
        if action == "open":  # nothing to open without a readable sweep with members
            detail = self._detail()
            return detail is not None and bool(detail.rows)
        return True

    def action_stop(self) -> None:
        item = self._item()
        if item is None or item.state != "running":
            self.notify("that sweep is not running", severity="warning")
            return
        self.post_message(StopSweep(item.path))

    def palette_commands(self) -> list[keymap.PaletteCommand]:
        return [
            ("Follow sweep member under cursor", "Open the monitor of that member's run", self.action_open),
            (
                "Stop sweep",
                "Stop the highlighted sweep's scheduler and its running members",
                self.action_stop,
            ),
        ]
