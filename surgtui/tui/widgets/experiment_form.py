"""The editor for one experiment file: every field of `form_model.SECTIONS`."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Label, Static

from surgtui.tui.form_model import FIELDS, SECTIONS, ExperimentDraft
from surgtui.tui.widgets.field_row import FieldRow


class ExperimentForm(VerticalScroll):
    """Shows a draft (attribute down); folds field edits into it and posts `Changed` up."""

    class Changed(Message):
        def __init__(self, draft: ExperimentDraft) -> None:
            super().__init__()
            self.draft = draft

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.draft: ExperimentDraft | None = None

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
        self.disabled = draft is None or bool(draft.file_error)
        self.query_one("#form-problem", Static).update(draft.file_error if draft else "no experiment selected")
        self.set_class(bool(draft is None or draft.file_error), "-problem")
        if draft is None:
            return
        name = draft.path.name
        self.border_title = f"{name} (modified)" if draft.dirty else name
        n_err = len(draft.errors)
        self.border_subtitle = f"{n_err} invalid field{'s' * (n_err != 1)}: not saved" if n_err else ""
        for spec in FIELDS:
            self.query_one(f"#field-{spec.key.replace('.', '-')}", FieldRow).show(
                draft.value(spec.key), draft.errors.get(spec.key, ""), spec.key in draft.raw)

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
