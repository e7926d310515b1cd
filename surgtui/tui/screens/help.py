"""Every key, listed from the keymap data."""

from __future__ import annotations

from dataclasses import replace

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from surgtui.tui import keymap


class HelpScreen(ModalScreen[None]):
    BINDINGS = keymap.HELP

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self.key_table())

    def on_mount(self) -> None:
        self.query_one("#help").border_title = "keys (escape closes)"

    def key_table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold")
        table.add_column()
        for title, bindings in keymap.SCOPES:
            table.add_row(Text(title, style="bold underline"), "")
            for b in bindings:
                keys = " / ".join(
                    self.app.get_key_display(replace(b, key=k, key_display=None)) for k in b.key.split(",")
                )
                table.add_row(keys, f"{b.description}: {b.tooltip}" if b.tooltip else b.description)
            table.add_row("", "")
        return table
