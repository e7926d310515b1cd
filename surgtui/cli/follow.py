"""Follow a run's events.jsonl from the terminal: a Rich live view, plain lines, or raw JSON.

The event file is the source of truth, so attaching later shows the whole history.
Ctrl-C once stops the run cleanly (SIGINT to the engine's group); twice kills it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from surgtui.errors import exit_code_for
from surgtui.runs.events import EventTail
from surgtui.runs.launcher import Topology, signal_run, wait_exit
from surgtui.runs.layout import EVENTS_FILE, STDERR_LOG
from surgtui.runs.metrics import BEST_METRIC, METRIC_LABELS, METRICS, TOTAL
from surgtui.runs.state import RunState, fmt_duration
from surgtui.runs.store import Run


def plain_line(e: dict[str, Any], state: RunState) -> str | None:
    """The one-line-per-epoch (and per validation) format for logs and pipes."""
    kind = e["type"]
    if kind == "run_start":
        return (
            f"run {e.get('run_id')} started: {e.get('experiment')} on {e.get('device')}, "
            f"{e.get('epochs')} epochs x {e.get('steps_per_epoch')} steps"
        )
    if kind == "epoch_end":
        loss = e.get("loss") or {}
        parts = " ".join(f"{k}={v:.4f}" for k, v in loss.items() if isinstance(v, (int, float)))
        return (
            f"epoch {e.get('epoch')}/{state.epochs} {parts} lr={_fmt_lr(state.lr)} "
            f"grad_norm={_num(state.grad_norm)} {e.get('duration_s', 0):.1f}s"
        )
    if kind == "val":
        m = e.get("metrics") or {}
        total = (e.get("loss") or {}).get(TOTAL)  # absent from runs before val events had a loss
        loss = f" loss={_num(total)}" if "loss" in e else ""
        metrics = " ".join(f"{METRIC_LABELS[k]}={_num(m.get(k))}" for k in METRICS)
        return f"val   {e.get('epoch')} {metrics}{loss}"
    if kind == "log" and e.get("level") in ("warning", "error"):
        return f"{e['level']}: {e.get('message')}"
    if kind == "run_end":
        best = e.get("best") or {}
        tail = (
            f", best {best.get('metric')}={_num(best.get('value'))} at epoch {best.get('epoch')}"
            if best
            else ""
        )
        reason = f" ({e.get('reason')})" if e.get("reason") else ""
        return f"run {e.get('status')}{reason} after {fmt_duration(e.get('duration_s'))}{tail}"
    return None


def _num(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "--"


def _fmt_lr(lr: dict[str, float]) -> str:
    return "/".join(f"{v:.2e}" for v in lr.values()) if lr else "--"


def render(state: RunState, stopping: bool = False) -> Any:
    """The Rich live view of one run."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    title = Text.assemble(
        (f"{state.run_id or 'starting...'}", "bold"), f"  {state.experiment}  {state.device}"
    )
    if stopping and not state.end:
        title.append("  stopping (Ctrl-C again to kill)", style="yellow")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    total = state.total_steps or 1
    grid.add_row("epoch", f"{state.epoch}/{state.epochs}   step {state.step}/{state.total_steps}")
    grid.add_row("progress", ProgressBar(total=total, completed=min(state.step, total), width=40))
    speed = f"{state.imgs_per_s:.1f} img/s" if state.imgs_per_s else "--"
    grid.add_row("eta", f"{fmt_duration(state.eta_s())}   {speed}")
    grid.add_row("lr", "  ".join(f"{k} {v:.2e}" for k, v in state.lr.items()) or "--")
    if state.grad_norm is not None:
        clip = state.grad_clip or 0.0
        style = "red" if state.clipped else "green"
        gauge = Text(f"{state.grad_norm:.3f}", style=style)
        if clip:
            gauge.append(f" / clip {clip:g}   clipped in {state.clip_share:.0%} of logged steps", style="dim")
        grid.add_row("grad norm", gauge)
    grid.add_row("loss", "  ".join(f"{k} {_num(v)}" for k, v in state.loss.items()) or "--")
    if state.val_loss:
        grid.add_row(
            f"val loss (ep {state.val_epoch})", "  ".join(f"{k} {_num(v)}" for k, v in state.val_loss.items())
        )
    if state.val:
        m = state.val
        grid.add_row(
            f"val (ep {state.val_epoch})",
            "  ".join(f"{label} {_num(m.get(k))}" for k, label in METRIC_LABELS.items()),
        )
    if state.best:
        grid.add_row(
            "best", f"{METRIC_LABELS[BEST_METRIC]} {_num(state.best['value'])} at epoch {state.best['epoch']}"
        )
    parts: list[Any] = [title, grid]
    for level, message in list(state.logs)[-3:]:
        if level in ("warning", "error"):
            parts.append(Text(f"{level}: {message}", style="yellow" if level == "warning" else "red"))
    if state.end:
        parts.append(Text(f"run {state.end['status']}  {state.end.get('reason') or ''}", style="bold"))
    return Group(*parts)


def follow(
    run_dir: Path,
    mode: str = "auto",
    proc: subprocess.Popen | None = None,
    out: Callable[[str], None] | None = None,
    poll_s: float = 0.25,
    history_bytes: int = 0,
) -> int:
    """Follow until run_end (or the engine is gone); return the run's exit code.

    `history_bytes`: the size of events.jsonl before a resume started; those events
    are folded in quietly, and their old run_end does not end the following.
    """
    out = out or (lambda s: print(s, flush=True))
    if mode == "auto":
        mode = "live" if sys.stdout.isatty() else "plain"
    tail = EventTail(run_dir / EVENTS_FILE)
    state = RunState()
    if history_bytes:
        for e in tail.poll(max_bytes=history_bytes):
            state.add(e)
        state.end = None
    interrupts = 0
    live = None
    if mode == "live":
        from rich.live import Live

        live = Live(render(state), refresh_per_second=4, transient=False)
        live.start()
    try:
        while True:
            try:
                for e in tail.poll():
                    state.add(e)
                    if mode == "json":
                        out(json.dumps(e, separators=(",", ":")))
                    elif mode == "plain" and (line := plain_line(e, state)):
                        out(line)
                if live is not None:
                    live.update(render(state, stopping=interrupts > 0))
                if state.end is not None:
                    break
                if (proc.poll() is not None) if proc is not None else not Run.load(run_dir).alive:
                    # Gone: read what it wrote last, then stop following.
                    for e in tail.poll():
                        state.add(e)
                        if mode == "plain" and (line := plain_line(e, state)):
                            out(line)
                    break
                time.sleep(poll_s)
            except KeyboardInterrupt:
                interrupts += 1
                run = Run.load(run_dir)
                if interrupts == 1:
                    signal_run(run, signal.SIGINT)
                    if mode != "live":
                        print(
                            "stopping: the engine finishes its step and saves (Ctrl-C again to kill)",
                            file=sys.stderr,
                            flush=True,
                        )
                else:
                    signal_run(run, signal.SIGKILL)
                    print("killed", file=sys.stderr, flush=True)
                    break
    finally:
        if live is not None:
            live.update(render(state))
            live.stop()
    code = wait_exit(proc, run_dir, timeout=30)
    status = state.end["status"] if state.end else Run.load(run_dir).status
    if state.end is None and mode != "json":
        print(f"run {status}: the engine exited without run_end; see {run_dir / STDERR_LOG}", file=sys.stderr)
    # Our own engine's code: 2 tells a user error from a failure. torchrun's is 1 whenever a rank
    # exited non-zero, a stop included: there the status says it.
    if code is not None and code >= 0 and not (state.end and Topology.of(run_dir).distributed):
        return code
    return exit_code_for(status)
