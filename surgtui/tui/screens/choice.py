"""A dialog with more than two answers (quit with unsaved edits, launch with unsaved edits).

The answers are the screen's bindings (keymap data): each becomes a button labelled
with its key, and the dialog is dismissed with the chosen action's value.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import Button

from surgtui.tui import keymap
from surgtui.tui.screens.dialog import DialogScreen


class ChoiceScreen(DialogScreen):
    """Dismissed with the value of `choose(value)` in the chosen binding; None for cancel."""

    def buttons(self) -> Iterable[Button]:
        for i, binding in enumerate(self.BINDINGS):
            value = binding.action.removeprefix("choose('").removesuffix("')")
            key = binding.key.split(",")[0]
            yield Button(
                f"{binding.description} ({key})",
                id=f"choice-{value}",
                variant="primary" if i == 0 else "default",
            )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose((event.button.id or "").removeprefix("choice-"))

    def action_choose(self, value: str) -> None:
        self.dismiss(None if value == "cancel" else value)


class QuitScreen(ChoiceScreen):
    BINDINGS = keymap.QUIT


class LaunchEditedScreen(ChoiceScreen):
    BINDINGS = keymap.LAUNCH_EDITED
