"""The frame every dialog shares: a question, an optional body to read first (scrolls at 80x24), buttons."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class DialogScreen(ModalScreen):
    """Subclasses say which buttons (`buttons`) and what a press means (`on_button_pressed`)."""

    def __init__(self, question: str, body: RenderableType | None = None) -> None:
        super().__init__()
        self.question = question
        self.body = body

    def buttons(self) -> Iterable[Button]:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="dialog-question", markup=False)
            if self.body is not None:
                with VerticalScroll(id="dialog-body"):
                    yield Static(self.body)
            with Horizontal(id="dialog-buttons"):
                yield from self.buttons()
