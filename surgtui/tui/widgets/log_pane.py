"""The run's log events (warnings and errors stand out), appended as they arrive."""

from __future__ import annotations

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from surgtui.tui.follower import RunView

LEVEL_STYLE = {"info": "dim", "warning": "yellow", "error": "bold red"}


class LogPane(RichLog):
    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=500, min_width=20, wrap=True, markup=False, auto_scroll=True)
        self._seen = 0
        self._counts = {"warning": 0, "error": 0}

    def on_resize(self, event: Resize) -> None:
        # RichLog scrolls to the end on write only: after the pane changes height the newest lines
        # would sit below the fold. (RichLog's own on_resize still runs: Textual calls both.)
        if self.auto_scroll:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def show(self, view: RunView) -> None:
        new = view.log_count - self._seen
        if new <= 0:
            return
        self._seen = view.log_count
        for level, message in view.logs[-min(new, len(view.logs)) :]:
            if level == "debug":
                continue
            if level in self._counts:
                self._counts[level] += 1
            prefix = "" if level == "info" else f"{level}: "
            self.write(Text(prefix + message, style=LEVEL_STYLE.get(level, "")))
        self.border_subtitle = ", ".join(_count(n, level) for level, n in self._counts.items())


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
