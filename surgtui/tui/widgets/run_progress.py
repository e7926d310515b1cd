"""Status, epoch/step progress, ETA and throughput of one run."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from surgtui.runs.rows import STATUS_STYLE
from surgtui.runs.state import fmt_duration
from surgtui.tui.follower import RunView


def status_text(status: str) -> Text:
    symbol, style = STATUS_STYLE.get(status, ("?", ""))
    return Text(f"{symbol} {status}", style=style)


class RunProgress(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="run-title")
        with Horizontal(id="run-bar"):
            yield ProgressBar(total=1, show_eta=False, id="run-progress-bar")
            yield Static("", id="run-stats")

    def show(self, view: RunView) -> None:
        title = status_text(view.status)
        title.append(f"  {view.run_id}", style="bold")
        title.append(f"  {view.experiment}  {view.device}".rstrip(), style="dim")
        if view.reason:
            title.append(f"  {view.reason}", style="italic")
        self.query_one("#run-title", Static).update(title)
        if view.total_steps:
            self.query_one(ProgressBar).update(total=view.total_steps, progress=view.step)
        speed = f"{view.imgs_per_s:.1f} img/s" if view.imgs_per_s else "-- img/s"
        eta = "" if view.status != "running" else f"  ETA {fmt_duration(view.eta_s)}"
        # Totals unknown (the engine is still starting and no config says): "--", never "0/0".
        epochs = f"epoch {view.epoch}/{view.epochs}" if view.epochs else "epoch --"
        steps = f"step {view.step}/{view.total_steps}" if view.total_steps else "step --"
        self.query_one("#run-stats", Static).update(f"{epochs}  {steps}{eta}  {speed}")
