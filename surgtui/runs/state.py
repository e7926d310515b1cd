"""Live state of one run, folded from its events: what a progress view shows.

Shared by the headless live view and the TUI monitor; pure (no I/O, no torch).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from surgtui.runs.metrics import BEST_METRIC
from surgtui.runs.summary import rewind_point


@dataclass
class RunState:
    run_id: str = ""
    experiment: str = ""
    device: str = ""
    epochs: int = 0
    steps_per_epoch: int = 0
    total_steps: int = 0
    grad_clip: float = 0.0
    epoch: int = 0
    step: int = 0
    epochs_done: int = 0
    lr: dict[str, float] = field(default_factory=dict)
    grad_norm: float | None = None
    clipped: bool = False
    clipped_steps: int = 0
    steps_seen: int = 0
    loss: dict[str, float | None] = field(default_factory=dict)
    imgs_per_s: float | None = None
    val: dict[str, Any] = field(default_factory=dict)
    val_loss: dict[str, float | None] = field(default_factory=dict)  # empty in runs from before it
    val_epoch: int | None = None
    best: dict[str, Any] | None = None
    logs: deque = field(default_factory=lambda: deque(maxlen=200))
    end: dict[str, Any] | None = None
    started: float | None = None
    last_time: float | None = None
    # (time, step) at the latest run_start: the ETA uses this segment's own pace.
    _segment: tuple[float, int] | None = None
    _vals: list[tuple[int, float]] = field(default_factory=list)  # (epoch, mAP50-95), refolded on a rewind

    def add(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        t = e.get("time")
        self.last_time = t if t is not None else self.last_time
        if kind == "run_start":
            cfg = e.get("config") or {}
            self.run_id = e.get("run_id", self.run_id)
            self.experiment = e.get("experiment", self.experiment)
            self.device = e.get("device", "")
            self.epochs = e.get("epochs", 0)
            self.steps_per_epoch = e.get("steps_per_epoch", 0)
            self.total_steps = e.get("total_steps", 0)
            self.grad_clip = float((cfg.get("optim") or {}).get("grad_clip") or 0.0)
            self.started = self.started or t
            self.end = None
            point = rewind_point(e)
            if point is not None and point[0] < self.step:  # resumed after a crash: the redo replaces
                self.step, self.epochs_done = point
                self._vals = [v for v in self._vals if v[0] <= point[1]]
                self.best = None
                for epoch, value in self._vals:
                    self._track_best(epoch, value)
            self._segment = (t, e.get("resumed_from_step") or self.step) if t is not None else None
        elif kind == "step":
            self.epoch = e.get("epoch", self.epoch)
            self.step = e.get("step", self.step)
            self.lr = e.get("lr") or {}
            self.grad_norm = e.get("grad_norm")
            self.clipped = bool(e.get("clipped"))
            self.clipped_steps += self.clipped
            self.steps_seen += 1
            self.loss = e.get("loss") or {}
            self.imgs_per_s = e.get("imgs_per_s")
        elif kind == "epoch_end":
            self.epochs_done = e.get("epoch", self.epochs_done)
        elif kind == "val":
            self.val = e.get("metrics") or {}
            self.val_loss = e.get("loss") or {}
            self.val_epoch = e.get("epoch")
            value = self.val.get(BEST_METRIC)
            if value is not None and self.val_epoch is not None:
                self._vals.append((self.val_epoch, value))
                self._track_best(self.val_epoch, value)
        elif kind == "log":
            self.logs.append((e.get("level", "info"), e.get("message", "")))
        elif kind == "run_end":
            self.end = {"status": e.get("status"), "reason": e.get("reason", "")}

    def _track_best(self, epoch: int, value: float) -> None:
        if self.best is None or value > self.best["value"]:
            self.best = {"epoch": epoch, "value": value}

    def add_many(self, events: list[dict[str, Any]]) -> None:
        """Fold a batch: the same state as `add` on each, but a run of step events costs one `add`.

        Only the last step of a run shows; the others only count (steps seen, steps clipped).
        Opening a run with a long history spends most of its time here otherwise.
        """
        start = 0
        for i, e in enumerate(events):
            if e.get("type") == "step" and i + 1 < len(events) and events[i + 1].get("type") == "step":
                continue  # not the last of its run of steps
            skipped = events[start:i] if e.get("type") == "step" else []
            self.steps_seen += len(skipped)
            self.clipped_steps += sum(bool(s.get("clipped")) for s in skipped)
            self.add(e)
            start = i + 1

    def eta_s(self) -> float | None:
        """Seconds left at the pace of the current segment (since the last start or resume)."""
        if not self._segment or not self.total_steps or self.last_time is None:
            return None
        t0, s0 = self._segment
        done = self.step - s0
        if done <= 0 or self.last_time <= t0:
            return None
        return (self.total_steps - self.step) * (self.last_time - t0) / done

    @property
    def clip_share(self) -> float:
        return self.clipped_steps / self.steps_seen if self.steps_seen else 0.0


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
