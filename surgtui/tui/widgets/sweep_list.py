"""The sweeps of the runs dir: id, state, members done of all, the best configuration's mean."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from surgtui.runs.metrics import METRIC_LABELS
from surgtui.tui.sweep_view import SweepItem
from surgtui.tui.widgets.keyed_list import KeyedList
from surgtui.tui.widgets.run_progress import status_text

COLUMNS = (("id", "sweep"), ("state", "state"), ("members", "members done"), ("best", "best mean"))


class SweepList(KeyedList):
    """Rows keyed by sweep id; the screen reacts to RowHighlighted."""

    COLUMN_KEYS = tuple(key for key, _ in COLUMNS)

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, items: Sequence[SweepItem]) -> None:
        self.show_rows([(i.id, *_cells(i)) for i in items])


def _cells(item: SweepItem) -> tuple[str | Text, ...]:
    if item.error:
        return item.id, status_text(item.state), "", Text("✗ cannot read it", style="bold red")
    label = METRIC_LABELS.get(item.metric, item.metric)
    best = f"{label} {item.best:.4f}" if item.best is not None else Text("-", style="dim")
    return item.id, status_text(item.state), Text(f"{item.done}/{item.total}", justify="right"), best
