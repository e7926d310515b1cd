"""Gradient norm against the clip threshold: current value, share of clipped steps, recent history."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from surgtui.tui.follower import RunView


def gauge_text(view: RunView, width: int) -> Text:
    """Two lines: `norm 3.214 / 10 ━━━━────` and `clipped 4.1% of 1,234 steps`."""
    norm, clip = view.grad_norm, view.grad_clip
    if norm is None:
        return Text("no steps yet", style="dim")
    text = Text.assemble(("norm ", "dim"), (f"{norm:.3f}", "bold"), (f" / {clip:g} " if clip else "", "dim"))
    if not clip:
        return text.append("  clipping off", style="dim")
    bar = max(4, width - len(text))
    filled = min(bar, round(bar * norm / clip))
    text.append("━" * filled, style="bold red" if norm > clip else "green")
    text.append("─" * (bar - filled), style="dim")
    text.append(f"\nclipped {view.clip_share:.1%} of {view.steps_seen:,} logged steps")
    if view.clipped:
        text.append("  (last step clipped)", style="bold red")
    return text


class GradGauge(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(Text("no steps yet", style="dim"), id="grad-text")
        yield Sparkline([], id="grad-spark")

    def show(self, view: RunView) -> None:
        self.query_one("#grad-text", Static).update(gauge_text(view, self.size.width))
        self.query_one("#grad-spark", Sparkline).data = list(view.grad_recent)
