"""Experiments: the files on the left, the editor for the highlighted one on the right."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from surgtui.config.edit import save_as, set_fields
from surgtui.errors import ConfigError
from surgtui.runs.store import list_runs
from surgtui.tui import keymap
from surgtui.tui.catalog import ExperimentInfo, list_experiments
from surgtui.tui.form_model import ExperimentDraft
from surgtui.tui.messages import LaunchExperiment
from surgtui.tui.screens.choice import LaunchEditedScreen
from surgtui.tui.screens.confirm import ConfirmScreen
from surgtui.tui.screens.save_as import SaveAsScreen
from surgtui.tui.widgets.diff_text import diff_text
from surgtui.tui.widgets.experiment_form import ExperimentForm
from surgtui.tui.widgets.experiment_list import ExperimentList
from surgtui.tui.workers import background

REFRESH_S = 2.0


class ExperimentsScreen(Screen):
    BINDINGS = keymap.EXPERIMENTS
    AUTO_FOCUS = "#experiment-list"

    def __init__(self, experiments_dir: Path, runs_dir: Path) -> None:
        super().__init__()
        self.experiments_dir = experiments_dir
        self.runs_dir = runs_dir
        self.drafts: dict[Path, ExperimentDraft] = {}  # unsaved edits survive moving between files
        self.infos: dict[Path, ExperimentInfo] = {}
        self._select_after: Path | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="experiments-side"):
                yield ExperimentList(id="experiment-list")
                yield Static("", id="experiment-detail", markup=False)
            yield ExperimentForm(id="experiment-form")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = str(self.experiments_dir)
        self.query_one(ExperimentList).border_title = "experiments"
        self.query_one(ExperimentForm).empty_message = "reading the experiment files..."
        self.query_one(ExperimentForm).show(None)
        # A file made meanwhile (`surgtui new`, another editor) shows up without switching screens.
        self._timer = self.set_interval(REFRESH_S, self.refresh_list)

    def on_screen_resume(self) -> None:
        self._timer.resume()
        self.refresh_list()

    def on_screen_suspend(self) -> None:
        self._timer.pause()

    @background(group="catalog", what="listing experiments")
    def refresh_list(self) -> list[ExperimentInfo]:
        """Reading every file and run summary is I/O: off the UI thread."""
        return list_experiments(self.experiments_dir, list_runs(self.runs_dir))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A result arrives as a message: none is delivered to a screen that is closing.
        if event.worker.group == "catalog" and event.state is WorkerState.SUCCESS:
            self._show_list(event.worker.result)

    def _show_list(self, infos: list[ExperimentInfo]) -> None:
        self.infos = {i.path: i for i in infos}
        table = self.query_one(ExperimentList)
        form = self.query_one(ExperimentForm)
        form.empty_message = self.nothing_selected
        if not infos and form.draft is None:
            form.sync()
            self.query_one("#experiment-detail", Static).update(self.nothing_selected)
        self._show_modified()
        if self._select_after is not None and str(self._select_after) in table.rows:
            table.move_cursor(row=table.get_row_index(str(self._select_after)))
            self._select_after = None
        if table.selected_path is not None:
            self._select(table.selected_path)

    @property
    def nothing_selected(self) -> str:
        if self.infos:
            return "no experiment selected"
        return f"no experiments in {self.experiments_dir}: create one with `surgtui new NAME`"

    @property
    def draft(self) -> ExperimentDraft | None:
        return self.query_one(ExperimentForm).draft

    def _selected_draft(self) -> ExperimentDraft | None:
        """The draft an action works on; None (and why, said once) when there is none."""
        if self.draft is None:
            self.notify(self.nothing_selected, severity="warning", markup=False)
        return self.draft

    def unsaved(self) -> list[ExperimentDraft]:
        """Drafts with edits (valid or not) that are not in their file."""
        return [d for d in self.drafts.values() if d.dirty]

    def save_draft(self, draft: ExperimentDraft) -> bool:
        """Write a draft's edits now (no diff shown); False, with the reason said, when it cannot be."""
        try:
            draft.reload()
            draft.new_text()  # every edit valid, and valid together
            set_fields(draft.path, draft.edits)
        except ConfigError as exc:
            self.notify(f"{draft.path.name}: {exc}", title="not saved", severity="error", markup=False)
            saved = False
        else:
            draft.discard()
            saved = True
        if draft is self.draft:
            self.query_one(ExperimentForm).sync()
        if not saved:
            return False
        self._show_modified()
        self.notify(f"saved {draft.path.name}", markup=False)
        self.refresh_list()
        return True

    def save_all(self) -> bool:
        """Save every draft with edits; True when all of them are in their files now."""
        return all(
            [self.save_draft(d) for d in self.unsaved()]
        )  # a list: try every file, not up to the first failure

    def unsaved_diff(self) -> Text:
        """What saving every draft would change, file by file."""
        text = Text()
        for draft in self.unsaved():
            try:
                text.append_text(diff_text(draft.text, draft.new_text(), draft.path.name))
            except ConfigError as exc:
                text.append(f"{draft.path.name}: cannot be saved: {exc}\n", style="bold red")
        return text

    def _select(self, path: Path) -> None:
        draft = self.drafts.get(path)
        if draft is None:
            draft = self.drafts[path] = ExperimentDraft(path)
        elif draft is not self.draft:
            draft.reload()  # the file may have been edited outside meanwhile
        if draft is not self.draft:
            self.query_one(ExperimentForm).show(draft)
        info = self.infos.get(path)
        detail = info.error or info.description if info else ""
        if info and info.last_run:
            detail += f"\nlast run: {info.last_run} ({info.last_status})"
        self.query_one("#experiment-detail", Static).update(f"{path.name}\n{detail}".rstrip())

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._select(Path(event.row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one(ExperimentForm).focus_first()

    def on_experiment_form_changed(self, event: ExperimentForm.Changed) -> None:
        self._show_modified()

    def _show_modified(self) -> None:
        modified = {p for p, d in self.drafts.items() if d.dirty}
        self.query_one(ExperimentList).show(list(self.infos.values()), modified)

    def _edited_text(self) -> str | None:
        """The file's text with the edits applied, or None (and why) when there is nothing valid."""
        draft = self._selected_draft()
        if draft is None:
            return None
        try:
            draft.reload()
            return draft.new_text()
        except ConfigError as exc:
            self.notify(str(exc), title="not saved", severity="error", markup=False)
            return None
        finally:
            self.query_one(ExperimentForm).sync()

    def action_save(self) -> None:
        draft, new = self.draft, self._edited_text()
        if draft is None or new is None:
            return
        if not draft.edits:
            self.notify("nothing to save")
            return

        def saved(yes: bool | None) -> None:
            if not yes:
                return
            try:
                set_fields(draft.path, draft.edits)
            except ConfigError as exc:
                self.notify(str(exc), title="not saved", severity="error", markup=False)
                return
            draft.discard()
            self.query_one(ExperimentForm).sync()
            self.notify(f"saved {draft.path.name}", markup=False)
            self.refresh_list()

        diff = diff_text(draft.text, new, draft.path.name)
        self.app.push_screen(
            ConfirmScreen(f"Save these changes to {draft.path}?", diff, yes="Save", no="Cancel"), saved
        )

    def action_save_as(self) -> None:
        draft, new = self.draft, self._edited_text()
        if draft is None or new is None:
            return

        def chosen(dest: Path | None) -> None:
            if dest is None:
                return
            try:
                save_as(new, dest)
            except ConfigError as exc:
                self.notify(str(exc), title="not saved", severity="error", markup=False)
                return
            draft.discard()  # the edits now live in the new file; the original stays as saved
            self._select_after = dest
            self.notify(f"saved {dest.name}", markup=False)
            self.refresh_list()

        self.app.push_screen(SaveAsScreen(self.experiments_dir, f"{draft.path.stem}-2"), chosen)

    def action_launch(self) -> None:
        draft = self._selected_draft()
        if draft is None:
            return
        if draft.file_error:
            self.notify(draft.file_error, title="cannot launch", severity="error", markup=False)
            return
        if not draft.dirty:
            self.post_message(LaunchExperiment(draft.path))
            return

        def answered(choice: str | None) -> None:
            if choice == "saved" or (choice == "save" and self.save_draft(draft)):
                self.post_message(LaunchExperiment(draft.path))

        try:
            body = diff_text(draft.text, draft.new_text(), draft.path.name)
        except ConfigError as exc:
            body = Text(f"cannot be saved: {exc}", style="bold red")
        self.app.push_screen(LaunchEditedScreen(f"{draft.path.name} has unsaved edits.", body), answered)

    def action_save_and_launch(self) -> None:
        draft = self._selected_draft()
        if draft is not None and (not draft.dirty or self.save_draft(draft)):
            self.action_launch()

    def action_revert(self) -> None:
        if self._selected_draft() is not None:
            self.draft.discard()
            self.query_one(ExperimentForm).sync()
            self._show_modified()

    def action_focus_list(self) -> None:
        self.query_one(ExperimentList).focus()

    def palette_commands(self) -> list[keymap.PaletteCommand]:
        return [
            ("Save experiment", "Show the diff and write the edited keys", self.action_save),
            ("Save experiment as...", "Write the edits to a new experiment file", self.action_save_as),
            ("Launch experiment", "Start a run of the selected file and follow it", self.action_launch),
            (
                "Save and launch experiment",
                "Write the edits, then start a run and follow it",
                self.action_save_and_launch,
            ),
            ("Revert edits", "Drop the unsaved edits of the selected file", self.action_revert),
        ]
