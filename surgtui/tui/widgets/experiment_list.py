"""The experiment files: name, variant, and the best mAP50-95 of each one's latest run."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from rich.text import Text

from surgtui.runs.metrics import BEST_METRIC, METRIC_LABELS
from surgtui.tui.catalog import ExperimentInfo
from surgtui.tui.widgets.keyed_list import KeyedList

COLUMN_KEYS = ("mark", "name", "variant", "best")


class ExperimentList(KeyedList):
    """Rows keyed by file path; the screen reacts to RowHighlighted."""

    COLUMN_KEYS = COLUMN_KEYS

    def on_mount(self) -> None:
        for key, label in zip(COLUMN_KEYS, (" ", "experiment", "variant", METRIC_LABELS[BEST_METRIC])):
            self.add_column(label, key=key, width=1 if key == "mark" else None)

    def show(self, infos: Sequence[ExperimentInfo], modified: Collection[Path]) -> None:
        """Update in place, keeping the cursor on the same file."""
        self.show_rows([(str(i.path), *_cells(i, i.path in modified)) for i in infos])

    @property
    def selected_path(self) -> Path | None:
        key = self.cursor_key
        return Path(key) if key is not None else None


def _cells(info: ExperimentInfo, modified: bool) -> tuple:
    # Unsaved edits matter more here than a running run (the runs screen shows those).
    mark = (
        Text("*", style="bold yellow")
        if modified
        else Text("●", style="bold green")
        if info.last_status == "running"
        else Text("")
    )
    best = f"{info.best_map:.4f}" if info.best_map is not None else ""
    name = Text(info.name, style="red" if info.error else "")
    return mark, name, info.variant.removeprefix("YOLOv5-"), Text(best, justify="right")
