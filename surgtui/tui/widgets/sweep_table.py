"""One sweep as a table, like `surgtui sweep show`: a row per configuration, its parameters, each seed's
member, mean ± std of the metric over the finished seeds; the best configuration starred, pruned and
failed members dimmed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

from surgtui.runs.metrics import METRIC_LABELS
from surgtui.tui.sweep_view import SweepDetail

if TYPE_CHECKING:
    from surgtui.sweeps.table import ConfigRow

BEST = "★"
# A symbol and a style per member state: readable without colour too; pruned and failed recede.
MEMBER_STYLE: dict[str, tuple[str, str]] = {
    "finished": ("✓", "cyan"),
    "running": ("●", "bold green"),
    "waiting": ("○", "dim"),
    "pruned": ("✂", "dim"),
    "failed": ("✗", "dim red"),
}
GONE = ("pruned", "failed")


class SweepTable(DataTable):
    """Rows keyed by configuration number; columns `seed-<s>` hold the members."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="cell", zebra_stripes=True)
        self.detail: SweepDetail | None = None
        self._shown: tuple = ()

    def show(self, detail: SweepDetail) -> None:
        """Redraw when anything visible changed; the cursor stays on the same configuration and column."""
        label = METRIC_LABELS.get(detail.item.metric, detail.item.metric)
        header = (
            ("mark", " "),
            ("config", "config"),
            *((f"param-{k}", k) for k in detail.keys),
            *((f"seed-{s}", f"seed {s}") for s in detail.seeds),
            ("mean", f"{label} mean ± std"),
        )
        rows = tuple((str(r.config), *_cells(r, detail)) for r in detail.rows)
        self.detail = detail
        shown = (header, rows)
        if shown == self._shown:
            return
        self._shown = shown
        row_key, column = self.cursor_config, self.cursor_column
        self.clear(columns=True)
        for i, (key, text) in enumerate(header):
            width = max([cell_len(text), *(_width(r[i + 1]) for r in rows)])
            self.add_column(text, key=key, width=1 if key == "mark" else width)
        for key, *cells in rows:
            self.add_row(*cells, key=key)
        if row_key in {r[0] for r in rows}:
            self.move_cursor(row=self.get_row_index(row_key), column=column, animate=False)
        elif rows:
            self.move_cursor(row=0, column=max(1, column), animate=False)

    @property
    def cursor_config(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def cursor_member(self) -> str | None:
        """The run under the cursor: on a seed's column that seed's member, else the configuration's
        first member that has a run."""
        config = self.cursor_config
        detail = self.detail
        if config is None or detail is None:
            return None
        row = next((r for r in detail.rows if str(r.config) == config), None)
        if row is None:
            return None
        column = self.coordinate_to_cell_key(self.cursor_coordinate).column_key.value or ""
        if column.startswith("seed-"):
            return row.members.get(int(column.removeprefix("seed-")), ("", None, None))[1]
        return next(
            (run for _, run, _ in (row.members.get(s, ("", None, None)) for s in detail.seeds) if run), None
        )


def _cells(row: ConfigRow, detail: SweepDetail) -> tuple[Text | str, ...]:
    """mark, config, parameters, a cell per seed, mean ± std; the row dimmed when no member is left."""
    members = [row.members.get(s) for s in detail.seeds]
    gone = all(m is not None and m[0] in GONE for m in members)
    style = "dim" if gone else ""
    mean = (
        Text(f"{row.mean:.4f} ± {row.std:.4f}", justify="right", style="bold green" if row.best else style)
        if row.mean is not None
        else Text("-", justify="right", style="dim")
    )
    return (
        Text(BEST, style="bold green") if row.best else "",
        Text(str(row.config), justify="right", style=style),
        *(Text(_param(row.params.get(k)), style=style) for k in detail.keys),
        *(_member(m) for m in members),
        mean,
    )


def _member(member: tuple[str, str | None, float | None] | None) -> Text:
    if member is None:
        return Text("-", style="dim")
    state, _, value = member
    symbol, style = MEMBER_STYLE.get(state, ("?", ""))
    if state == "finished" and value is not None:
        return Text(f"{symbol} {value:.4f}", style=style)
    return Text(f"{symbol} {state}", style=style)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _width(cell: Text | str) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)
