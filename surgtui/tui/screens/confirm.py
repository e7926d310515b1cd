"""A yes/no dialog, optionally with a body to read first (a diff, what a stop does)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import RenderableType
from textual.widgets import Button

from surgtui.tui import keymap
from surgtui.tui.screens.dialog import DialogScreen


class ConfirmScreen(DialogScreen):
    """Dismissed with True for yes, False for no."""

    BINDINGS = keymap.CONFIRM

    def __init__(
        self, question: str, body: RenderableType | None = None, yes: str = "Yes", no: str = "No"
    ) -> None:
        super().__init__(question, body)
        self.labels = (yes, no)

    def buttons(self) -> Iterable[Button]:
        yield Button(f"{self.labels[0]} (y)", id="yes", variant="primary")
        yield Button(f"{self.labels[1]} (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
