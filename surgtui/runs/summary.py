"""summary.json: the last and best of every metric, folded from the event stream.

The engine's writer keeps it current; `Summary.from_events` rebuilds it for a run
whose engine died before writing it, so listing runs never needs the full stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from surgtui.runs.metrics import BEST_METRIC

HPARAM_KEYS = {
    "lr": ("optim", "lr"),
    "optimizer": ("optim", "optimizer"),
    "backbone": ("model", "backbone"),
    "img_size": ("model", "img_size"),
    "coord": ("loss", "coord"),
    "conf": ("loss", "conf"),
    "class": ("loss", "class"),
    "focal": ("loss", "focal"),
    "label_smoothing": ("loss", "label_smoothing"),
    "assignment": ("loss", "assignment"),
    "batch_size": ("train", "batch_size"),
}


def rewind_point(event: dict[str, Any]) -> tuple[int, int] | None:
    """(step, epochs complete) a resumed run restarts from, for a `run_start`; else None.

    After a crash the engine redoes the steps after its last checkpoint, so the stream holds
    them twice: readers drop earlier `step` events past this step and `epoch_end`/`val`
    events past this epoch (docs/events.md, "Resume").
    """
    step = event.get("resumed_from_step")
    if event.get("type") != "run_start" or not isinstance(step, int):
        return None
    per_epoch = event.get("steps_per_epoch") or 0
    return step, (step // per_epoch if per_epoch else 0)


class Summary:
    """Folds events one at a time into the summary.json dict."""

    def __init__(self) -> None:
        # What a rewind (a resume after a crash) must refold: val events and (step, clipped) per step.
        self._vals: list[dict[str, Any]] = []
        self._steps: list[tuple[int, bool]] = []
        self.data: dict[str, Any] = {
            "run_id": None,
            "experiment": None,
            "variant": None,
            "hparams": {},
            "started": None,
            "updated": None,
            "epochs": None,
            "total_steps": None,
            "epoch": 0,
            "step": 0,
            "last": {
                "loss": {},
                "lr": {},
                "grad_norm": None,
                "imgs_per_s": None,
                "metrics": {},
                "val_loss": {},
                "val_epoch": None,
            },
            "best": None,
            "best_per_metric": {},
            "steps_logged": 0,
            "clipped_steps": 0,
            "warnings": 0,
            "errors": 0,
            "end": None,
            "duration_s": None,
        }

    @classmethod
    def from_events(cls, events: Iterable[dict[str, Any]]) -> Summary:
        s = cls()
        for e in events:
            s.add(e)
        return s

    def add(self, e: dict[str, Any]) -> None:
        d = self.data
        kind = e.get("type")
        d["updated"] = e.get("time", d["updated"])
        if kind == "run_start":
            config = e.get("config") or {}
            d["run_id"] = e.get("run_id")
            d["experiment"] = e.get("experiment")
            d["variant"] = config.get("variant")
            d["hparams"] = {k: (config.get(a) or {}).get(b) for k, (a, b) in HPARAM_KEYS.items()}
            if d["started"] is None:
                d["started"] = e.get("time")
            d["epochs"] = e.get("epochs")
            d["total_steps"] = e.get("total_steps")
            d["end"] = None  # a resumed run is live again
            point = rewind_point(e)
            if point is not None and point[0] < d["step"]:
                self._rewind(*point)
        elif kind == "step":
            d["step"] = e.get("step", d["step"])
            d["epoch"] = max(d["epoch"], e.get("epoch", 0) - 1)
            last = d["last"]
            last["loss"] = e.get("loss") or {}
            last["lr"] = e.get("lr") or {}
            last["grad_norm"] = e.get("grad_norm")
            last["imgs_per_s"] = e.get("imgs_per_s")
            d["steps_logged"] += 1
            d["clipped_steps"] += bool(e.get("clipped"))
            self._steps.append((d["step"], bool(e.get("clipped"))))
        elif kind == "epoch_end":
            d["epoch"] = e.get("epoch", d["epoch"])
            d["last"]["epoch_loss"] = e.get("loss") or {}
        elif kind == "val":
            self._vals.append(e)
            self._add_val(e)
        elif kind == "log":
            level = e.get("level")
            d["warnings"] += level == "warning"
            d["errors"] += level == "error"
        elif kind == "run_end":
            d["end"] = {"status": e.get("status"), "reason": e.get("reason"), "time": e.get("time")}
            if d["started"] is not None and e.get("time") is not None:
                d["duration_s"] = round(e["time"] - d["started"], 3)

    def _rewind(self, step: int, epoch: int) -> None:
        """Forget what the crashed attempt did past the checkpoint the run resumed from."""
        d = self.data
        d["step"], d["epoch"] = step, epoch
        self._steps = [s for s in self._steps if s[0] <= step]
        d["steps_logged"], d["clipped_steps"] = len(self._steps), sum(c for _, c in self._steps)
        self._vals = [v for v in self._vals if (v.get("epoch") or 0) <= epoch]
        d["best"], d["best_per_metric"] = None, {}
        d["last"]["metrics"], d["last"]["val_loss"], d["last"]["val_epoch"] = {}, {}, None
        d["last"].pop("epoch_loss", None)  # the crashed attempt's; the redone epoch_end brings it back
        for v in self._vals:
            self._add_val(v)

    def _add_val(self, e: dict[str, Any]) -> None:
        d = self.data
        epoch = e.get("epoch")
        metrics = e.get("metrics") or {}
        d["last"]["metrics"] = metrics
        d["last"]["val_loss"] = e.get("loss") or {}  # absent in runs from before val events had it
        d["last"]["val_epoch"] = epoch
        for name, value in metrics.items():
            if not isinstance(value, (int, float)):
                continue
            cur = d["best_per_metric"].get(name)
            if cur is None or value > cur["value"]:
                d["best_per_metric"][name] = {"value": value, "epoch": epoch}
        value = metrics.get(BEST_METRIC)
        best = d["best"]
        if isinstance(value, (int, float)) and (best is None or value > best["value"]):
            d["best"] = {
                "epoch": epoch,
                "metric": BEST_METRIC,
                "value": value,
                "metrics": metrics,
                "per_class": e.get("per_class") or {},
            }

    def to_dict(self) -> dict[str, Any]:
        return self.data
