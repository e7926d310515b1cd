"""The sweeps of the runs dir: id, state, members done of all, the best configuration's mean."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from surgtui.runs.metrics import METRIC_LABELS
from surgtui.tui.sweep_view import SweepItem
from surgtui.tui.widgets.run_progress import status_text

COLUMNS = (("id", "sweep"), ("state", "state"), ("members", "members done"), ("best", "best mean"))


class SweepList(DataTable):
    """Rows keyed by sweep id; the screen reacts to RowHighlighted."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._shown: list[tuple] = []

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, items: Sequence[SweepItem]) -> None:
        """Update in place, keeping the cursor on the same sweep; RowHighlighted only when that changed."""
        rows = [(i.id, *_cells(i)) for i in items]
        if rows == self._shown:
            return
        current = self.cursor_sweep
        with self.prevent(DataTable.RowHighlighted):
            if [r[0] for r in rows] == [r[0] for r in self._shown]:
                for (key, *cells), (_, *old) in zip(rows, self._shown):
                    for (column, _), cell, was in zip(COLUMNS, cells, old):
                        if cell != was:
                            self.update_cell(key, column, cell, update_width=True)
            else:
                self.clear()
                for key, *cells in rows:
                    self.add_row(*cells, key=key)
                if current in {r[0] for r in rows}:
                    self.move_cursor(row=self.get_row_index(current), animate=False)
        self._shown = rows
        if rows and self.cursor_sweep != current:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
            self.post_message(DataTable.RowHighlighted(self, self.cursor_row, key))

    @property
    def cursor_sweep(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value


def _cells(item: SweepItem) -> tuple[str | Text, ...]:
    if item.error:
        return item.id, status_text(item.state), "", Text("✗ cannot read it", style="bold red")
    label = METRIC_LABELS.get(item.metric, item.metric)
    best = f"{label} {item.best:.4f}" if item.best is not None else Text("-", style="dim")
    return item.id, status_text(item.state), Text(f"{item.done}/{item.total}", justify="right"), best
