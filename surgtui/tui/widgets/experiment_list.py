"""The experiment files: name, variant, and the best mAP50-95 of each one's latest run."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from surgtui.runs.metrics import BEST_METRIC, METRIC_LABELS
from surgtui.tui.catalog import ExperimentInfo

COLUMN_KEYS = ("mark", "name", "variant", "best")


class ExperimentList(DataTable):
    """Rows keyed by file path; the screen reacts to RowHighlighted."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._shown: list[tuple] = []

    def on_mount(self) -> None:
        for key, label in zip(COLUMN_KEYS, (" ", "experiment", "variant", METRIC_LABELS[BEST_METRIC])):
            self.add_column(label, key=key, width=1 if key == "mark" else None)

    def show(self, infos: Sequence[ExperimentInfo], modified: Collection[Path]) -> None:
        """Update in place, keeping the cursor on the same file.

        No RowHighlighted is posted unless the highlighted file really changed: a rebuild that
        passed over row 0 used to show another file's draft for a moment and take the focus away.
        """
        rows = [(str(i.path), *_cells(i, i.path in modified)) for i in infos]
        if rows == self._shown:
            return
        current = self.selected_path
        with self.prevent(DataTable.RowHighlighted):
            if [r[0] for r in rows] == [r[0] for r in self._shown]:
                for (key, *cells), (_, *old) in zip(rows, self._shown):
                    for column, cell, was in zip(COLUMN_KEYS, cells, old):
                        if cell != was:
                            self.update_cell(key, column, cell, update_width=True)
            else:
                self.clear()
                for key, *cells in rows:
                    self.add_row(*cells, key=key)
                if current is not None and str(current) in {r[0] for r in rows}:
                    self.move_cursor(row=self.get_row_index(str(current)))
        self._shown = rows
        if rows and self.selected_path != current:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
            self.post_message(DataTable.RowHighlighted(self, self.cursor_row, key))

    @property
    def selected_path(self) -> Path | None:
        if not self.row_count:
            return None
        return Path(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value or "")


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
