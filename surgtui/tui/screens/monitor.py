"""Monitor: one run, live or finished: progress, loss / lr / validation curves, gradient gauge, log.

A thread worker tails the event file (a read of nothing, four times a second,
when the run is idle) and hands over an immutable RunView only after the UI took
the previous one: a fast writer can never queue up work for the UI thread. Text
widgets update with every view; plots get new curves at most once a second and
build their figures in their own threads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import get_current_worker

from surgtui.runs.layout import EVENTS_FILE
from surgtui.runs.metrics import BEST_METRIC, METRIC_LABELS
from surgtui.tui import keymap
from surgtui.tui.catch_up import caught_up
from surgtui.tui.follower import VAL_KEYS, RunFollower, RunView
from surgtui.tui.messages import StopRun
from surgtui.tui.widgets.curve_plot import CurvePlot
from surgtui.tui.widgets.grad_gauge import GradGauge
from surgtui.tui.widgets.log_pane import LogPane
from surgtui.tui.widgets.run_progress import RunProgress
from surgtui.tui.workers import background

POLL_S = 0.25
PLOT_S = 1.0
CATCH_UP_VIEW_S = 1.0  # while reading a long history, show progress this often


class MonitorScreen(Screen):
    BINDINGS = keymap.MONITOR
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-tall")]  # 24-line terminals get a tighter layout

    class ViewReady(Message):
        """From the follower thread: a new view is waiting."""

    def __init__(self, run_dir: Path, poll_s: float = POLL_S) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.poll_s = poll_s
        self.follower = RunFollower(self.run_dir)
        self.view: RunView | None = None
        # Handed from the follower thread to the UI thread: a view, and whether unread data remained.
        self._pending: tuple[RunView, bool] | None = None
        self._buckets = 100
        self._rebucket = False
        self._behind = True
        self._visible = True  # False while another screen covers this one: no views are made
        self._plotted: RunView | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunProgress(id="run-progress")
        with Grid(id="monitor-grid"):
            yield CurvePlot("loss by step", id="plot-loss")
            yield CurvePlot("learning rate by step", log10_y=True, id="plot-lr")
            with Vertical(id="val-panel"):
                yield CurvePlot("validation by epoch", id="plot-val")
                yield Static(Text("no validation yet", style="dim"), id="val-latest")
            with Vertical(id="monitor-side"):
                yield GradGauge(id="grad-gauge")
                yield LogPane(id="log-pane")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = self.run_dir.name
        self.query_one("#grad-gauge").border_title = "gradient norm"
        self.query_one("#log-pane").border_title = "log"
        self.set_interval(PLOT_S, self._push_plots)
        self._follow()

    def on_screen_suspend(self) -> None:
        self._visible = False

    def on_screen_resume(self) -> None:
        self._visible = True

    def on_resize(self) -> None:
        # About two points per column: each bucket gives its min and its max.
        buckets = max(10, max(p.size.width for p in self.query(CurvePlot)))
        if buckets != self._buckets:
            self._buckets = buckets
            self._rebucket = True  # a view made at the old width is redone even if no event came

    @background(group="follow", what="following the run")
    def _follow(self) -> None:
        worker = get_current_worker()
        events = self.run_dir / EVENTS_FILE
        self.follower = caught_up(self.run_dir)  # a long history folds on the other core
        dirty, shown_at = True, time.monotonic()
        while not worker.is_cancelled:
            dirty = self.follower.poll() or dirty
            if self._rebucket:
                self._rebucket, dirty = False, True
            behind = _size(events) > self.follower.tail.offset
            catching_up = behind and time.monotonic() - shown_at < CATCH_UP_VIEW_S
            if dirty and self._pending is None and not catching_up and self._visible:
                self._pending = (self.follower.view(self._buckets), behind)
                dirty, shown_at = False, time.monotonic()
                self.post_message(self.ViewReady())
            if not behind:
                worker.cancelled_event.wait(self.poll_s)

    def on_monitor_screen_view_ready(self, _: ViewReady) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        view, self._behind = pending
        if self.view is None or view.status != self.view.status:
            self.refresh_bindings()  # `s` stop is offered only while the run is running
        self.view = view
        self.query_one(RunProgress).show(view)
        self.query_one(GradGauge).show(view)
        self.query_one(LogPane).show(view)
        self.query_one("#val-latest", Static).update(_val_line(view))
        if view.best:
            best = f"best {METRIC_LABELS[BEST_METRIC]} {view.best['value']:.3f} @ epoch {view.best['epoch']}"
            self.query_one("#plot-val").border_subtitle = best
        if not self._behind and (self._plotted is None or view.status != "running"):
            self._push_plots()  # the first whole view, and the last, without waiting for the timer

    def _push_plots(self) -> None:
        view = self.view
        if view is None or view is self._plotted:
            return
        self._plotted = view
        self.query_one("#plot-loss", CurvePlot).show(view.loss_curves)
        self.query_one("#plot-lr", CurvePlot).show(view.lr_curves)
        self.query_one("#plot-val", CurvePlot).show({METRIC_LABELS[k]: v for k, v in view.val_curves.items()})

    @property
    def drawn(self) -> bool:
        """The whole file is read and every plot shows it (tests and benchmarks wait for this)."""
        return (
            self.view is not None
            and not self._behind
            and self._pending is None
            and not self._rebucket
            and self._plotted is self.view
            and all(p.ready for p in self.query(CurvePlot))
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.view is not None and self.view.status == "running"
        return True

    def action_stop(self) -> None:
        if self.view is None or self.view.status != "running":
            self.notify("this run is not running", severity="warning")
            return
        self.post_message(StopRun(self.run_dir))

    def palette_commands(self) -> list[keymap.PaletteCommand]:
        return [("Stop run", f"Stop {self.run_dir.name} cleanly (SIGINT)", self.action_stop)]


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _val_line(view: RunView) -> Text:
    """The latest validation, on two lines that fit half of an 80-column terminal."""
    if not view.val:
        return Text("no validation yet", style="dim")
    text = Text(f"epoch {view.val_epoch} ", style="dim")
    for i, k in enumerate(VAL_KEYS):
        value = view.val.get(k)
        text.append(("\n" if i == 2 else " ") + f"{METRIC_LABELS[k]} ", style="dim")
        text.append(f"{value:.3f}" if isinstance(value, (int, float)) else "--", style="bold")
    return text
