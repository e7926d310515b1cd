"""All runs, with the columns of `surgtui runs` (surgtui.runs.rows.COLUMNS); marks in the first column."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

from surgtui.runs.rows import COLUMNS, Column
from surgtui.runs.store import Run
from surgtui.tui.widgets.run_progress import status_text

MARK = "◆"  # marked for comparison; not ✓, which says "finished" in the status column


class RunsTable(DataTable):
    """Rows keyed by run id; header clicks are handled by the screen (HeaderSelected)."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="cell", zebra_stripes=True)
        self._shown: tuple = ()

    def show(self, runs: Sequence[Run], marked: Collection[str], sort_key: str, descending: bool) -> None:
        """Redraw when anything visible changed; the cursor stays on the same run and column."""
        rows = tuple((r.id, *(_cell(c, r) for c in COLUMNS)) for r in runs)
        arrow = " ▼" if descending else " ▲"
        header = tuple(c.label + (arrow if c.key == sort_key else "") for c in COLUMNS)
        shown = (header, rows, frozenset(marked))
        if shown == self._shown:
            return
        self._shown = shown
        row_key = self.cursor_run
        column = self.cursor_column
        self.clear(columns=True)
        self.add_column(MARK, key="mark", width=1)
        # Widths set here, not measured later on idle: a draw in between (returning from a monitor
        # while runs changed) showed every column cut to its header, and nothing redrew it.
        for i, (c, label) in enumerate(zip(COLUMNS, header), 1):
            self.add_column(label, key=c.key, width=max([cell_len(label), *(_width(r[i]) for r in rows)]))
        for run_id, *cells in rows:
            self.add_row(MARK if run_id in marked else "", *cells, key=run_id)
        if row_key in {r[0] for r in rows}:
            self.move_cursor(row=self.get_row_index(row_key), column=column, animate=False)
        elif rows:
            self.move_cursor(row=0, column=max(1, column), animate=False)  # not on the narrow mark column

    @property
    def cursor_run(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    @property
    def cursor_column_key(self) -> str | None:
        """The COLUMNS key under the cursor (None on the mark column)."""
        i = self.cursor_column - 1
        return COLUMNS[i].key if 0 <= i < len(COLUMNS) else None


def _width(cell: Text | str) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


def _cell(column: Column, run: Run) -> Text | str:
    if column.key == "status":
        return status_text(run.status)
    text = column.fmt(column.get(run))
    return Text(text, justify="right") if column.numeric else text
