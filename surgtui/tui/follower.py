"""Follow one run: tail its events.jsonl, fold the events, hand out immutable views.

Pure and synchronous (no Textual): the monitor screen runs `poll()` in a thread
worker and renders `view()`s on the UI thread, so the two never share mutable state.
Memory stays flat however long the run: curves are min/max buckets, logs a ring.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from surgtui.config import toml as tomllib
from surgtui.runs.events import EventTail, EventVersionError
from surgtui.runs.layout import CONFIG_FILE, EVENTS_FILE, RUN_JSON, STDERR_LOG
from surgtui.runs.lock import engine_running, engine_started
from surgtui.runs.metrics import MAP50, MAP50_95, METRIC_LABELS, METRICS
from surgtui.runs.state import RunState, fmt_duration
from surgtui.runs.store import read_json
from surgtui.runs.summary import rewind_point
from surgtui.tui.series import MinMaxSeries

LOSS_KEYS = ("coord", "conf", "class", "total")
VAL_KEYS = METRICS
GRAD_HISTORY = 120
LIVENESS_EVERY_S = 1.0
STDERR_LINES = 6
LOG_LINES = 200

Curves = dict[str, tuple[list[float], list[float]]]


@dataclass(frozen=True)
class RunView:
    """What the monitor shows at one moment; built off the UI thread, never mutated."""

    run_id: str
    experiment: str = ""
    device: str = ""
    status: str = "created"
    reason: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    eta_s: float | None = None
    imgs_per_s: float | None = None
    lr: dict[str, float] = field(default_factory=dict)
    grad_norm: float | None = None
    grad_clip: float = 0.0
    clipped: bool = False
    clip_share: float = 0.0
    steps_seen: int = 0
    grad_recent: tuple[float, ...] = ()
    loss: dict[str, Any] = field(default_factory=dict)
    val: dict[str, Any] = field(default_factory=dict)
    val_epoch: int | None = None
    best: dict[str, Any] | None = None
    logs: tuple[tuple[str, str], ...] = ()
    log_count: int = 0
    loss_curves: Curves = field(default_factory=dict)
    lr_curves: Curves = field(default_factory=dict)
    val_curves: Curves = field(default_factory=dict)


class RunFollower:
    """Incremental state of one run directory."""

    def __init__(self, run_dir: Path, capacity: int = 1024) -> None:
        self.run_dir = Path(run_dir)
        self.tail = EventTail(self.run_dir / EVENTS_FILE)
        self.state = RunState(run_id=self.run_dir.name)
        self.capacity = capacity
        self.loss: dict[str, MinMaxSeries] = {k: MinMaxSeries(capacity) for k in LOSS_KEYS}
        self.lr: dict[str, MinMaxSeries] = {}
        self.val: dict[str, MinMaxSeries] = {k: MinMaxSeries(capacity) for k in VAL_KEYS}
        self.grad_recent: deque[float] = deque(maxlen=GRAD_HISTORY)
        # The log pane's lines: the engine's log events and a line for every milestone (start,
        # resume, epoch, validation, checkpoint, end), in the order they happened.
        self.logs: deque[tuple[str, str]] = deque(maxlen=LOG_LINES)
        self.log_count = 0
        self._planned_epochs: int | None = None
        self.alive = False
        self.error = ""
        self._meta: dict[str, Any] = {}
        self._checked_at = -math.inf
        self._crash_reported = False

    def poll(self, max_bytes: int = 4 << 20) -> bool:  # caps the transient memory of one read
        """Read what was appended since the last call; True when anything changed."""
        if self.error:
            return False
        was_alive = self.alive
        now = time.monotonic()
        if now - self._checked_at >= LIVENESS_EVERY_S:
            # Liveness before reading: a process found dead has written all it ever will.
            self._checked_at = now
            self.alive = self._check_alive()
        try:
            events = self.tail.poll(max_bytes)
        except EventVersionError as exc:
            self.error = str(exc)
            self._log("error", self.error)
            return True
        self._fold(events)
        if self.status == "crashed" and self._checked_at != now:
            # Never call a crash on a liveness check older than what was just read: a resume's
            # run_start comes from a new engine that a check made a moment ago did not know.
            self._checked_at = now
            self.alive = self._check_alive()
        if self.status == "crashed" and not events and not self._crash_reported:
            self._report_crash()  # everything is read: say so once, with the engine's last words
            return True
        return bool(events) or was_alive != self.alive

    @property
    def status(self) -> str:
        if self.state.end:
            return self.state.end.get("status") or "finished"
        if self.alive:
            return "running"
        return "crashed" if engine_started(self.run_dir, self._meta) else "created"

    def _check_alive(self) -> bool:
        # Re-read: the launcher fills the pid in after the spawn, and a resume starts another engine.
        self._meta = read_json(self.run_dir / RUN_JSON) or self._meta
        return engine_running(self.run_dir, self._meta)

    def _fold(self, events: list[dict[str, Any]]) -> None:
        """Fold in order; a resume after a crash (a rewinding run_start) first drops the redone points."""
        cuts = [i for i, e in enumerate(events) if e["type"] == "run_start"]
        for start, end in zip([0, *cuts], [*cuts, len(events)]):
            segment = events[start:end]
            if segment and (point := rewind_point(segment[0])) is not None and point[0] < self.state.step:
                step, epoch = point
                for series in (*self.loss.values(), *self.lr.values()):
                    series.truncate(step)
                for series in self.val.values():
                    series.truncate(epoch)
            self._fold_segment(segment)

    def _fold_segment(self, events: list[dict[str, Any]]) -> None:
        self.state.add_many(events)
        steps = [e for e in events if e["type"] == "step"]
        if steps:
            xs = _column(steps, "step", 0)
            losses = _column(steps, "loss", {})
            for k, column in zip(LOSS_KEYS, _columns(losses, LOSS_KEYS)):
                self.loss[k].extend(xs, column)
            lrs = _column(steps, "lr", {})
            groups = sorted({g for d in lrs[:1] + lrs[-1:] for g in d})
            for group, column in zip(groups, _columns(lrs, groups)):
                # log10 by hand: plotext's log scale breaks when a plot is rebuilt.
                self._lr_series(group).extend(xs, _log10_all(column))
            self.grad_recent.extend(g for e in steps[-GRAD_HISTORY:] if (g := e.get("grad_norm")) is not None)
        for e in events:
            kind = e["type"]
            if kind == "step":
                continue
            if kind == "run_start":
                self._crash_reported = False  # a new engine (a resume): a crash of its own is reported again
            elif kind == "val":
                metrics = e.get("metrics") or {}
                for k, series in self.val.items():
                    series.extend([e.get("epoch", 0)], [metrics.get(k)])
            line = milestone(e, self.state.epochs)
            if line is not None:
                self._log(*line)

    def _lr_series(self, group: str) -> MinMaxSeries:
        series = self.lr.get(group)
        if series is None:
            series = self.lr[group] = MinMaxSeries(self.capacity)
        return series

    def _log(self, level: str, message: str) -> None:
        self.logs.append((level, message))
        self.log_count += 1

    def _epochs(self) -> int:
        """Epochs from run_start; before it comes (the engine imports torch), from config.toml."""
        if self.state.epochs:
            return self.state.epochs
        if self._planned_epochs is None:
            try:
                with open(self.run_dir / CONFIG_FILE, "rb") as fh:
                    epochs = tomllib.load(fh).get("train", {}).get("epochs")
            except (OSError, tomllib.TOMLDecodeError):
                epochs = None
            self._planned_epochs = epochs if isinstance(epochs, int) else 0
        return self._planned_epochs

    def _report_crash(self) -> None:
        self._crash_reported = True
        self._log("error", "the engine exited without run_end: it crashed or was killed")
        try:
            lines = (self.run_dir / STDERR_LOG).read_text(errors="replace").splitlines()
        except OSError:
            return
        for line in lines[-STDERR_LINES:]:
            self._log("error", f"stderr: {line}")

    def view(self, buckets: int) -> RunView:
        """An immutable snapshot; curves downsampled to `buckets` min/max pairs."""
        s = self.state
        return RunView(
            run_id=s.run_id or self.run_dir.name,
            experiment=s.experiment or self._meta.get("experiment", ""),
            device=s.device,
            status=self.status,
            reason=(s.end or {}).get("reason") or self.error,
            epoch=s.epoch,
            epochs=self._epochs(),
            step=s.step,
            total_steps=s.total_steps,
            eta_s=None if s.end else s.eta_s(),
            imgs_per_s=s.imgs_per_s,
            lr=dict(s.lr),
            grad_norm=s.grad_norm,
            grad_clip=s.grad_clip,
            clipped=s.clipped,
            clip_share=s.clip_share,
            steps_seen=s.steps_seen,
            grad_recent=tuple(self.grad_recent),
            loss=dict(s.loss),
            val=dict(s.val),
            val_epoch=s.val_epoch,
            best=dict(s.best) if s.best else None,
            logs=tuple(self.logs),
            log_count=self.log_count,
            loss_curves=_curves(self.loss, buckets),
            lr_curves=_curves(self.lr, buckets),
            val_curves=_curves(self.val, buckets),
        )


def milestone(e: dict[str, Any], epochs: int) -> tuple[str, str] | None:
    """The log pane's line for one event (None for events it does not show)."""
    kind = e["type"]
    if kind == "log":
        return e.get("level", "info"), str(e.get("message", ""))
    if kind == "run_start":
        resumed = e.get("resumed_from_step")
        where = f"on {e.get('device') or '?'}"
        if resumed:
            return "info", f"resumed at step {resumed} {where}"
        return "info", f"started {where}: {e.get('epochs')} epochs, {e.get('total_steps')} steps"
    if kind == "epoch_end":
        total = (e.get("loss") or {}).get("total")
        loss = f", loss {total:.4f}" if isinstance(total, (int, float)) else ""
        return (
            "info",
            f"epoch {e.get('epoch')}/{epochs or '?'} done in {fmt_duration(e.get('duration_s'))}{loss}",
        )
    if kind == "val":
        metrics = e.get("metrics") or {}
        shown = " ".join(
            f"{METRIC_LABELS[k]} {metrics[k]:.3f}"
            for k in (MAP50, MAP50_95)
            if isinstance(metrics.get(k), (int, float))
        )
        return "info", f"validation, epoch {e.get('epoch')}: {shown or 'no metrics'}"
    if kind == "checkpoint":
        return "info", f"saved {e.get('path')}" + (" (new best)" if e.get("best") else "")
    if kind == "run_end":
        status = e.get("status") or "finished"
        reason = f": {e['reason']}" if e.get("reason") else ""
        level = {"finished": "info", "stopped": "warning"}.get(status, "error")
        return level, f"run {status} after {fmt_duration(e.get('duration_s'))}{reason}"
    return None


# A long history is folded column by column with map/itemgetter/zip, which run in C; any
# event missing a key (or holding an odd value) sends its batch down the careful path.


def _column(events: list[dict[str, Any]], key: str, default: Any) -> list[Any]:
    try:
        return list(map(itemgetter(key), events))
    except KeyError:
        return [e.get(key, default) for e in events]


def _columns(dicts: list[Any], keys: Sequence[str]) -> list[list[Any]]:
    try:
        return [list(map(itemgetter(k), dicts)) for k in keys]
    except (KeyError, TypeError):
        return [[d.get(k) if isinstance(d, dict) else None for d in dicts] for k in keys]


def _log10_all(values: list[Any]) -> list[float | None]:
    try:
        return list(map(math.log10, values))
    except (TypeError, ValueError):  # a zero, negative, null or odd lr: drop just those points
        return [math.log10(v) if isinstance(v, (int, float)) and v > 0 else None for v in values]


def _curves(series: dict[str, MinMaxSeries], buckets: int) -> Curves:
    return {name: s.points(buckets) for name, s in series.items() if len(s)}
