"""Runs: every run directory, sortable, filterable, refreshed every two seconds; mark runs to compare."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input
from textual.worker import Worker, WorkerState

from surgtui.errors import UserError
from surgtui.runs.metrics import BEST_METRIC, METRIC_LABELS
from surgtui.runs.rows import COLUMNS, column, sort_runs
from surgtui.runs.store import Run, list_runs
from surgtui.tui import keymap
from surgtui.tui.messages import CompareRuns, OpenRun, StopRun
from surgtui.tui.screens.confirm import ConfirmScreen
from surgtui.tui.screens.prompt import PromptScreen
from surgtui.tui.widgets.runs_table import RunsTable
from surgtui.tui.workers import background

REFRESH_S = 2.0


class RunsScreen(Screen):
    BINDINGS = keymap.RUNS
    AUTO_FOCUS = "#runs-table"

    def __init__(self, runs_dir: Path, refresh_s: float = REFRESH_S) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.refresh_s = refresh_s
        self.runs: list[Run] = []
        self.marked: list[str] = []  # in marking order: compare shows them that way
        self.sort_key = "id"
        self.descending = True  # newest first
        self.filter = ""
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="/ filter by run id, experiment or status", id="runs-filter", compact=True)
        yield RunsTable(id="runs-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = str(self.runs_dir)
        self._timer = self.set_interval(self.refresh_s, self.refresh_runs)

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
        self.refresh_runs()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()  # nobody is looking: no need to read every run's files

    @background(group="runs", what="listing runs")
    def refresh_runs(self) -> list[Run]:
        """Statuses come from run.json, summary.json and /proc: I/O, so off the UI thread."""
        return list_runs(self.runs_dir)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "runs" and event.state is WorkerState.SUCCESS:
            self._show(event.worker.result)

    def _show(self, runs: list[Run] | None = None) -> None:
        if runs is not None:
            self.runs = runs
        needle = self.filter.lower()
        visible = [
            r
            for r in self.runs
            if not needle or any(needle in s.lower() for s in (r.id, r.experiment, r.status))
        ]
        self.query_one(RunsTable).show(
            sort_runs(visible, self.sort_key, self.descending), self.marked, self.sort_key, self.descending
        )
        # The metric columns are one epoch's values, not each metric's best (compare shows those).
        table = self.query_one(RunsTable)
        best = METRIC_LABELS[BEST_METRIC]
        table.border_title = (
            f"{len(visible)} of {len(self.runs)} runs: metrics at each run's best {best} epoch"
        )
        table.border_subtitle = f"{len(self.marked)} marked" if self.marked else ""

    def _run(self, run_id: str | None) -> Run | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter = event.value.strip()
        self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(RunsTable).focus()

    def action_filter(self) -> None:
        self.query_one("#runs-filter", Input).focus()

    def action_leave_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        if box.has_focus:
            self.query_one(RunsTable).focus()
        else:
            box.value = ""

    def _sort_by(self, key: str) -> None:
        if key == self.sort_key:
            self.descending = not self.descending
        else:
            self.sort_key, self.descending = key, column(key).numeric  # numbers: best first
        self._show()

    def action_sort(self) -> None:
        key = self.query_one(RunsTable).cursor_column_key
        if key is not None:
            self._sort_by(key)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        if event.column_key.value not in (None, "mark"):
            self._sort_by(event.column_key.value)

    def action_mark(self) -> None:
        table = self.query_one(RunsTable)
        run_id = table.cursor_run
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked.append(run_id)
        self._show()
        table.action_cursor_down()

    def action_compare(self) -> None:
        runs = [r for r in map(self._run, self.marked) if r is not None]
        if len(runs) < 2:
            self.notify("mark two or more runs with space first", severity="warning")
            return
        self.post_message(CompareRuns([r.path for r in runs]))

    def action_open(self) -> None:
        run = self._run(self.query_one(RunsTable).cursor_run)
        if run is not None:
            self.post_message(OpenRun(run.path))

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        self.action_open()

    def action_follow_latest(self) -> None:
        self.app.action_follow_latest()

    def action_stop(self) -> None:
        run = self._run(self.query_one(RunsTable).cursor_run)
        if run is None or run.status != "running":
            self.notify("that run is not running", severity="warning")
            return
        self.post_message(StopRun(run.path))

    def _targets(self) -> list[Run]:
        """The marked runs, else the one under the cursor."""
        ids = self.marked or [self.query_one(RunsTable).cursor_run]
        return [r for r in map(self._run, ids) if r is not None]

    def action_trash(self) -> None:
        runs = self._targets()
        if not runs:
            return
        if running := [r.id for r in runs if r.status == "running"]:
            self.notify(f"{', '.join(running)} still running: stop it first (x)", severity="warning")
            return
        body = (
            "\n".join(r.id for r in runs)
            + "\n\n`surgtui restore RUN` brings a run back; `surgtui rm --purge` deletes the trash."
        )

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            from surgtui.runs.housekeeping import trash_runs

            try:
                moved = trash_runs(self.runs_dir, [r.id for r in runs])
            except (UserError, OSError) as exc:
                self.notify(str(exc), severity="error")
                return
            self.marked = [m for m in self.marked if m not in moved]
            self.notify(f"moved {len(moved)} run{'s' if len(moved) > 1 else ''} to the trash")
            self.refresh_runs()

        self.app.push_screen(
            ConfirmScreen(
                f"Move {len(runs)} run{'s' if len(runs) > 1 else ''} to the trash?", body, yes="Move"
            ),
            answered,
        )

    def action_note(self) -> None:
        from surgtui.runs.housekeeping import read_note, write_note

        run = self._run(self.query_one(RunsTable).cursor_run)
        if run is None:
            return

        def answered(text: str | None) -> None:
            if text is None:
                return
            try:
                write_note(run.path, text)
            except OSError as exc:
                self.notify(f"{run.id}: cannot write the note ({exc.strerror or exc})", severity="error")
                return
            self.notify(f"{run.id}: note {'saved' if text.strip() else 'removed'}")
            self.refresh_runs()

        self.app.push_screen(
            PromptScreen(f"Note on {run.id}", read_note(run.path), "free text; empty removes the note"),
            answered,
        )

    def action_tag(self) -> None:
        from surgtui.runs.tags import parse_tag, set_tags

        run = self._run(self.query_one(RunsTable).cursor_run)
        if run is None:
            return

        def answered(text: str | None) -> None:
            if not text or not text.strip():
                return
            try:
                tags = dict(parse_tag(t) for t in text.split())
                set_tags(run.path, tags)
            except (UserError, OSError) as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"{run.id}: tagged {text.strip()}")
            self.refresh_runs()

        current = " ".join(f"{k}={v}" for k, v in run.tags.items())
        self.app.push_screen(
            PromptScreen(
                f"Add tags to {run.id}", "", "key=value key2=value2", hint=f"now: {current or 'no tags'}"
            ),
            answered,
        )

    def palette_commands(self) -> list[keymap.PaletteCommand]:
        commands = [
            ("Compare marked runs", "Configs, metrics and curves side by side", self.action_compare),
            ("Follow run under cursor", "Open the monitor", self.action_open),
            (
                "Move runs to the trash",
                "The marked runs, or the one under the cursor (asks first)",
                self.action_trash,
            ),
            ("Note on the run", "Write the note of the run under the cursor", self.action_note),
            ("Tag the run", "Add key=value tags to the run under the cursor", self.action_tag),
        ]
        commands += [
            (
                f"Sort runs by {c.label}",
                f"Sort by the {c.key} column (again to reverse)",
                lambda key=c.key: self._sort_by(key),
            )
            for c in COLUMNS
        ]
        return commands
