"""The editor for one experiment file: every field of `form_model.SECTIONS`."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Label, Static

from surgtui.tui.form_model import FIELDS, SECTIONS, ExperimentDraft
from surgtui.tui.widgets.field_row import FieldRow


class ExperimentForm(VerticalScroll):
    """Shows a draft (attribute down); folds field edits into it and posts `Changed` up."""

    @dataclass
    class Changed(Message):
        """The draft after the user's edit."""

        draft: ExperimentDraft

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.draft: ExperimentDraft | None = None
        self.empty_message = "no experiment selected"  # what a form without a draft says (set by the screen)

    def compose(self) -> ComposeResult:
        yield Static("", id="form-problem", markup=False)
        for title, fields in SECTIONS:
            yield Label(title, classes="form-section")
            for spec in fields:
                yield FieldRow(spec)

    def show(self, draft: ExperimentDraft | None) -> None:
        self.draft = draft
        self.sync()

    def sync(self) -> None:
        """Push the draft's values, errors and edit marks down to every row."""
        draft = self.draft
        problem = self.empty_message if draft is None else draft.file_error and f"✗ {draft.file_error}"
        # An unreadable file has no values to show: its fields are hidden, not filled with blanks.
        self.disabled = bool(problem)
        self.query_one("#form-problem", Static).update(problem)
        self.set_class(bool(problem), "-problem")
        self.border_title = draft.path.name if draft else ""
        self.border_subtitle = "invalid file: fix it in an editor" if problem and draft else ""
        if draft is None or problem:
            return
        name = draft.path.name
        self.border_title = f"{name} (modified)" if draft.dirty else name
        n_err = len(draft.errors)
        self.border_subtitle = f"{n_err} invalid field{'s' * (n_err != 1)}: not saved" if n_err else ""
        for spec in FIELDS:
            self.query_one(f"#field-{spec.key.replace('.', '-')}", FieldRow).show(
                draft.value(spec.key),
                draft.errors.get(spec.key, ""),
                draft.edited(spec.key),
                typed=spec.key in draft.raw,
            )

    def focus_first(self) -> None:
        if not self.disabled:
            self.query_one(FieldRow).control.focus()

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        event.stop()
        if self.draft is None:
            return
        self.draft.set(event.key, event.raw)
        self.sync()
        self.post_message(self.Changed(self.draft))

    def on_field_row_left(self, event: FieldRow.Left) -> None:
        event.stop()
        if self.draft is not None and not self.disabled:
            self.draft.settle(event.key)
            self.sync()
