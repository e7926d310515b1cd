"""Ask for the name of a new experiment file."""

from __future__ import annotations

import re
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from surgtui.tui import keymap

NAME = re.compile(r"[A-Za-z0-9_.-]+")  # the schema's rule: the name becomes part of run ids


class SaveAsScreen(ModalScreen[Path | None]):
    BINDINGS = keymap.SAVE_AS

    def __init__(self, directory: Path, suggestion: str) -> None:
        super().__init__()
        self.directory = directory
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Save as a new experiment in {self.directory}/", id="dialog-question", markup=False)
            yield Input(self.suggestion, placeholder="name (letters, digits, - _ .)", id="save-as-name")
            yield Static("enter to save, escape to cancel", id="save-as-error", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip().removesuffix(".toml")
        problem = ""
        if not NAME.fullmatch(name):
            problem = "use letters, digits, '-', '_' and '.' only"
        elif (self.directory / f"{name}.toml").exists():
            problem = f"{name}.toml already exists"
        if problem:
            self.query_one("#save-as-error", Static).update(f"✗ {problem}")
            return
        self.dismiss(self.directory / f"{name}.toml")

    def action_cancel(self) -> None:
        self.dismiss(None)
