"""A list with one row per key (a file, a sweep), updated in place as it is re-read."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable


class KeyedList(DataTable):
    """Rows `(key, *cells)` in the order of COLUMN_KEYS. A re-read changes only the cells that changed and
    keeps the cursor on its key; RowHighlighted is posted only when the highlighted key really changed (a
    rebuild that passed over row 0 used to show another row's detail for a moment and take the focus)."""

    COLUMN_KEYS: tuple[str, ...] = ()

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._shown: list[tuple] = []

    @property
    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show_rows(self, rows: Sequence[tuple]) -> None:
        rows = list(rows)
        if rows == self._shown:
            return
        current = self.cursor_key
        with self.prevent(DataTable.RowHighlighted):
            if [r[0] for r in rows] == [r[0] for r in self._shown]:
                for (key, *cells), (_, *old) in zip(rows, self._shown):
                    for column, cell, was in zip(self.COLUMN_KEYS, cells, old):
                        if cell != was:
                            self.update_cell(key, column, cell, update_width=True)
            else:
                self.clear()
                for key, *cells in rows:
                    self.add_row(*cells, key=key)
                if current in {r[0] for r in rows}:
                    self.move_cursor(row=self.get_row_index(current), animate=False)
        self._shown = rows
        if rows and self.cursor_key != current:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
            self.post_message(DataTable.RowHighlighted(self, self.cursor_row, key))
