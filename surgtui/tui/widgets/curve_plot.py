"""A PlotextPlot whose figure is built in a thread, and only when its data or size changed.

Building a plotext figure costs 10-20 ms of pure Python; done on the UI thread for
four plots it would stall key presses. Here `render` only returns the last built
text, and at most one build per plot is in flight.
"""

from __future__ import annotations

import threading

from plotext._dict import color_codes
from plotext._dict import themes as plotext_themes
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from surgtui.tui.follower import Curves
from surgtui.tui.workers import guarded

# plotext palette names: they map to the 16 standard colours, so lines stay apart in any terminal.
COLORS = ("cyan", "orange", "green", "magenta", "blue", "red")
# Canvas, axes and ticks in the terminal's own default colours: readable with any app theme and
# in 16 colours (textual-plotext's "auto" theme turns ANSI theme colours into black on black).
THEME = "surgtui"
# plotext keeps module-level state while it builds: two plots built at once in two threads
# drew each other's braille dots. One build at a time, still off the UI thread.
_BUILD_LOCK = threading.Lock()
plotext_themes[THEME] = ("default", "default", "default", "default", list(COLORS))


class CurvePlot(PlotextPlot):
    """Lines for named curves; set them with `show` (attribute down)."""

    def __init__(self, title: str, *, log10_y: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.theme = THEME
        self.border_title = title  # says what x is: an axis label would cost a row of a small plot
        self.log10_y = log10_y  # the data are log10 values: label the ticks as powers of ten
        self.curves: Curves = {}
        self._version = 0  # bumped by every new set of curves
        self._text: Text | None = None
        self._built_for: tuple | None = None
        self._building = False

    def show(self, curves: Curves) -> None:
        if curves != self.curves:
            self.curves = curves
            self._version += 1
            self._request()

    @property
    def ready(self) -> bool:
        """True when what is on screen is the current data at the current size."""
        return not self._building and self._built_for == self._wanted()

    def on_resize(self) -> None:
        self._request()

    def _wanted(self) -> tuple:
        return (self.size.width, self.size.height, self._version)

    def _request(self) -> None:
        if self._building or not self.is_mounted or self.size.width < 8 or self.size.height < 3:
            return
        wanted = self._wanted()
        if wanted == self._built_for:
            return
        self._building = True
        curves = self.curves
        job = guarded(self.app, f"drawing {self.border_title}", lambda: self._build(wanted, curves))
        self.run_worker(job, thread=True, group="plot", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "plot" or event.worker.node is not self:
            return
        event.stop()
        if event.state is WorkerState.SUCCESS:
            self._built(*event.worker.result)
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._building = False

    def _build(self, wanted: tuple, curves: Curves) -> tuple[tuple, Text]:
        """Runs in a worker thread, on a figure of its own."""
        with _BUILD_LOCK:
            return self._build_locked(wanted, curves)

    def _build_locked(self, wanted: tuple, curves: Curves) -> tuple[tuple, Text]:
        width, height = wanted[0], wanted[1]
        if not curves:
            return wanted, Text("waiting for data", style="dim")
        named = list(zip(curves.items(), COLORS * 3))
        # The legend gets a line of its own above the canvas: plotext's sits on the first steps.
        legend = Text()
        for (name, _), color in named:
            legend.append("━ ", style=Style(color=Color.from_ansi(color_codes[color]), bold=True))
            legend.append(f"{name} ")
        legend.truncate(width, overflow="ellipsis")
        # A fresh figure each time: plotext keeps state across clear_figure() (a plot built
        # first at another size drew different braille afterwards).
        plt = Plot()
        plt.theme(THEME)
        plt.plotsize(width, height - 1)
        plt._set_size(width, height - 1)  # as PlotextPlot.render does: plotsize alone does not stick
        all_x, all_y = [], []
        for (_, (xs, ys)), color in named:
            plt.plot(xs, ys, color=color, marker="braille")
            all_x.extend(xs)
            all_y.extend(ys)
        if all_x and all(float(x).is_integer() for x in (min(all_x), max(all_x))):
            lo, hi = int(min(all_x)), int(max(all_x))
            ticks = integer_ticks(lo, hi, max(2, (width - 8) // (len(_tick_label(hi)) + 4)))
            plt.xticks(ticks, [_tick_label(t) for t in ticks])  # epochs and steps: no "2.5"
        if self.log10_y and all_y:
            lo, hi = min(all_y), max(all_y)
            ticks = [lo + (hi - lo) * i / 3 for i in range(4)] if hi > lo else [lo]
            plt.yticks(ticks, [f"{10**t:.1e}".replace("e-0", "e-") for t in ticks])
        legend.rstrip()
        text = legend.append("\n")
        text.append_text(Text.from_ansi(plt.build().rstrip("\n")))
        return wanted, text

    def _built(self, wanted: tuple, text: Text) -> None:
        self._text, self._built_for, self._building = text, wanted, False
        self.refresh()
        self._request()  # the data or size may have moved on while building

    def render(self) -> RenderResult:
        return self._text if self._text is not None else Text("loading", style="dim")


def integer_ticks(lo: int, hi: int, most: int) -> list[int]:
    """At most `most` round whole numbers from lo to hi (1, 2 or 5 times a power of ten apart)."""
    if hi <= lo:
        return [lo]
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            first = -(-lo // step) * step
            if (hi - first) // step + 1 <= most:
                return list(range(first, hi + 1, step))
        magnitude *= 10


def _tick_label(value: int) -> str:
    return f"{value / 1000:g}k" if abs(value) >= 10_000 else str(value)
