"""Ask for one line of text (a run's note, tags to add); enter gives it, escape cancels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from surgtui.tui import keymap


class PromptScreen(ModalScreen[str | None]):
    """Dismissed with the text as typed (enter), or None (escape)."""

    BINDINGS = keymap.PROMPT

    def __init__(self, question: str, value: str = "", placeholder: str = "", hint: str = "") -> None:
        super().__init__()
        self.question, self.value, self.placeholder = question, value, placeholder
        self.hint = hint or "enter to save, escape to cancel"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="dialog-question", markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static(self.hint, id="prompt-hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
