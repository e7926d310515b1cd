"""The experiment files: name, variant, and the best mAP50-95 of each one's latest run."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from surgtui.tui.catalog import ExperimentInfo


class ExperimentList(DataTable):
    """Rows keyed by file path; the screen reacts to RowHighlighted."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._shown: list[tuple] = []

    def on_mount(self) -> None:
        self.add_column(" ", key="mark", width=1)
        self.add_column("experiment", key="name")
        self.add_column("variant", key="variant")
        self.add_column("mAP50-95", key="best")

    def show(self, infos: Sequence[ExperimentInfo], modified: Collection[Path]) -> None:
        """Rebuild only when something changed, keeping the cursor on the same file."""
        rows = [(str(i.path), *_cells(i, i.path in modified)) for i in infos]
        if rows == self._shown:
            return
        self._shown = rows
        current = self.selected_path
        self.clear()
        for key, *cells in rows:
            self.add_row(*cells, key=key)
        if current is not None and str(current) in {r[0] for r in rows}:
            self.move_cursor(row=self.get_row_index(str(current)))

    @property
    def selected_path(self) -> Path | None:
        if not self.row_count:
            return None
        return Path(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value or "")


def _cells(info: ExperimentInfo, modified: bool) -> tuple:
    # Unsaved edits matter more here than a running run (the runs screen shows those).
    mark = (Text("*", style="bold yellow") if modified
            else Text("●", style="bold green") if info.last_status == "running" else Text(""))
    best = f"{info.best_map:.4f}" if info.best_map is not None else ""
    name = Text(info.name, style="red" if info.error else "")
    return mark, name, info.variant.removeprefix("YOLOv5-"), Text(best, justify="right")
