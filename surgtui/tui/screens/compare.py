"""Compare: the config keys that differ, metrics side by side (best marked), curves overlaid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from surgtui.runs.metrics import BEST_METRIC, METRIC_LABELS, TRAIN_PREFIX, VAL_PREFIX
from surgtui.runs.rows import config_diff, epoch_rows, metric_comparison
from surgtui.runs.store import Run
from surgtui.tui import keymap
from surgtui.tui.follower import Curves
from surgtui.tui.widgets.curve_plot import CurvePlot
from surgtui.tui.workers import background


def run_labels(runs: list[Run]) -> list[str]:
    """Short names for headers and legends: `1 smoke`, `2 focal`."""
    return [f"{i} {r.experiment or r.id}" for i, r in enumerate(runs, 1)]


class CompareScreen(Screen):
    BINDINGS = keymap.COMPARE

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = run_dirs

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="compare-legend", markup=False)
        with Horizontal(id="compare-tables"):
            yield DataTable(id="compare-config", cursor_type="row")
            yield DataTable(id="compare-metrics", cursor_type="row")
        with Horizontal(id="compare-plots"):
            yield CurvePlot(f"val {METRIC_LABELS[BEST_METRIC]} by epoch", id="compare-map")
            yield CurvePlot("train loss (total) by epoch", id="compare-loss")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"comparing {len(self.run_dirs)} runs"
        self.query_one("#compare-config").border_title = "config: keys that differ"
        self.query_one("#compare-metrics").border_title = "each metric's own best (★ top)"
        self.load()

    @background(group="compare", what="reading the runs to compare")
    def load(self) -> tuple:
        """Reads every config and event file: off the UI thread."""
        runs = [Run.load(d) for d in self.run_dirs]
        labels = run_labels(runs)
        per_epoch = [epoch_rows(r.path) for r in runs]
        return (
            runs,
            labels,
            config_diff(runs),
            metric_comparison(runs),
            _curves(labels, per_epoch, VAL_PREFIX + BEST_METRIC),
            _curves(labels, per_epoch, TRAIN_PREFIX + "total"),
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "compare" and event.state is WorkerState.SUCCESS:
            self._show(*event.worker.result)

    def _show(
        self,
        runs: list[Run],
        labels: list[str],
        diff: list,
        metrics: list[dict[str, Any]],
        map_curves: Curves,
        loss_curves: Curves,
    ) -> None:
        self.query_one("#compare-legend", Static).update(
            "   ".join(f"{lab}: {r.id}" for lab, r in zip(labels, runs))
        )
        table = self.query_one("#compare-metrics", DataTable)
        table.add_columns("metric", *labels)
        for m in metrics:
            table.add_row(m["label"], *(_metric_cell(c, i in m["best_run"]) for i, c in enumerate(m["runs"])))
        self.query_one("#compare-map", CurvePlot).show(map_curves)
        self.query_one("#compare-loss", CurvePlot).show(loss_curves)
        # The config table gets the width the metrics leave: fill it once that is laid out.
        self.call_after_refresh(self._show_config, labels, diff)

    def _show_config(self, labels: list[str], diff: list) -> None:
        config = next(self.query("#compare-config").results(DataTable), None)
        if config is None:  # the user left the screen before it was laid out
            return
        width = _value_width(config.content_region.width, [k for k, _ in diff], len(labels))
        # Narrow: the legend above names the runs, so the columns need only their numbers.
        config.add_columns("key", *(lab if len(lab) <= width else lab.split(" ", 1)[0] for lab in labels))
        for key, values in diff:
            config.add_row(key, *(_value(v, width) for v in values))
        if not diff:
            config.add_row(Text("identical configs", style="dim"), *([""] * len(labels)))


def _curves(labels: list[str], per_epoch: list[list[dict[str, Any]]], key: str) -> Curves:
    out: Curves = {}
    for label, rows in zip(labels, per_epoch):
        points = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            out[label] = ([p[0] for p in points], [p[1] for p in points])
    return out


def _value_width(table_width: int, keys: list[str], n_runs: int) -> int:
    """Characters per run's value so every run's column fits beside the keys (80x24: about 6), at most 14."""
    key_width = max([3, *map(len, keys)])
    per_run = (table_width - 2 - (key_width + 2)) // max(1, n_runs) - 2  # 2: the scrollbar, then cell padding
    return max(5, min(14, per_run))


def _value(v: Any, width: int = 14) -> str:
    """A config value, cut to `width` so several runs fit side by side."""
    if isinstance(v, bool):
        text = "true" if v else "false"
    else:
        text = "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def _metric_cell(cell: dict[str, Any], best: bool) -> Text:
    if cell["best"] is None:
        return Text("--", style="dim")
    text = f"{cell['best']:.4f} @{cell['epoch']}"
    return Text(f"★ {text}", style="bold green") if best else Text(f"  {text}")
