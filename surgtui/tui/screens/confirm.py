"""A yes/no dialog, optionally with a body to read first (a diff, what a stop does)."""

from __future__ import annotations

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from surgtui.tui import keymap


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = keymap.CONFIRM

    def __init__(self, question: str, body: RenderableType | None = None,
                 yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.body = body
        self.labels = (yes, no)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="dialog-question", markup=False)
            if self.body is not None:
                with VerticalScroll(id="dialog-body"):
                    yield Static(self.body)
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.labels[0]} (y)", id="yes", variant="primary")
                yield Button(f"{self.labels[1]} (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
