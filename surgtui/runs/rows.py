"""The runs table, run comparison and per-epoch export, as plain data.

The CLI renders these with Rich or as JSON/CSV; the TUI shows the same rows and
columns, so both views always agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgtui.config import toml as tomllib
from surgtui.runs.events import read_events
from surgtui.runs.housekeeping import read_note
from surgtui.runs.layout import CONFIG_FILE, EVENTS_FILE
from surgtui.runs.metrics import METRIC_LABELS, METRICS, TRAIN_PREFIX, VAL_PREFIX
from surgtui.runs.state import fmt_duration
from surgtui.runs.store import Run
from surgtui.runs.summary import rewind_point

# A symbol and a style per status, shared by the CLI and the TUI: readable without colour too.
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "running": ("●", "bold green"),
    "finished": ("✓", "bold cyan"),
    "stopped": ("■", "bold yellow"),
    "failed": ("✗", "bold red"),
    "crashed": ("✗", "bold red"),
    "created": ("○", "dim"),
}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    get: Callable[[Run], Any]
    fmt: Callable[[Any], str] = lambda v: "" if v is None else str(v)
    numeric: bool = False


def _f4(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else ""


def _g(v: Any) -> str:
    return (
        f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else ("" if v is None else str(v))
    )


def _hp(key: str) -> Callable[[Run], Any]:
    return lambda r: (r.summary.get("hparams") or {}).get(key)


def _metric(name: str) -> Callable[[Run], Any]:
    return lambda r: r.metric(name)


def _first_line(v: Any) -> str:
    """A note in a table cell: its first line, at most 40 characters."""
    line = str(v or "").splitlines()[0] if v else ""
    return line if len(line) <= 40 else line[:39] + "…"


def _best_epoch(r: Run) -> Any:
    return (r.summary.get("best") or {}).get("epoch")


def _epochs(r: Run) -> str:
    total = r.summary.get("epochs")
    return f"{r.summary.get('epoch', 0)}/{total}" if total else ""


COLUMNS: tuple[Column, ...] = (
    Column("id", "run", lambda r: r.id),
    Column("experiment", "experiment", lambda r: r.experiment),
    Column("variant", "variant", lambda r: r.summary.get("variant")),
    Column("status", "status", lambda r: r.status),
    Column("epochs", "epochs", _epochs),
    *(Column(m, METRIC_LABELS[m], _metric(m), _f4, True) for m in METRICS),
    Column("best_epoch", "best ep", _best_epoch, numeric=True),
    Column("lr", "lr", _hp("lr"), _g, True),
    Column(
        "loss_weights",
        "coord/conf/cls",
        lambda r: (
            "/".join(_g(_hp(k)(r)) for k in ("coord", "conf", "class"))
            if _hp("coord")(r) is not None
            else None
        ),
    ),
    Column("focal", "focal", _hp("focal")),
    Column("label_smoothing", "smooth", _hp("label_smoothing"), _g, True),
    Column("duration", "duration", lambda r: r.summary.get("duration_s") or _elapsed(r), fmt_duration, True),
    Column("tags", "tags", lambda r: " ".join(f"{k}={v}" for k, v in r.tags.items()) or None),
    Column("note", "note", lambda r: read_note(r.path) or None, _first_line),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def _elapsed(r: Run) -> float | None:
    s = r.summary
    if s.get("started") and s.get("updated"):
        return s["updated"] - s["started"]
    return None


def column(key: str) -> Column:
    for c in COLUMNS:
        if c.key == key:
            return c
    raise KeyError(key)


def sort_runs(runs: Sequence[Run], key: str, descending: bool | None = None) -> list[Run]:
    col = column(key)
    desc = col.numeric if descending is None else descending
    present = [r for r in runs if col.get(r) is not None]
    missing = [r for r in runs if col.get(r) is None]
    # Runs without a value go last whichever way the column sorts.
    return sorted(present, key=lambda r: col.get(r), reverse=desc) + missing


def flat_config(run_dir: Path) -> dict[str, Any]:
    """config.toml as dotted keys: `optim.lr` -> 0.001."""
    try:
        with open(run_dir / CONFIG_FILE, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return flatten(data)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys: {"optim": {"lr": 0.001}} -> {"optim.lr": 0.001}."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(runs: Sequence[Run], all_keys: bool = False) -> list[tuple[str, list[Any]]]:
    """(key, value per run) for every key whose value differs between runs (all keys with all_keys)."""
    configs = [flat_config(r.path) for r in runs]
    keys: list[str] = []
    for c in configs:
        keys.extend(k for k in c if k not in keys)
    out = []
    for k in keys:
        values = [c.get(k) for c in configs]
        if all_keys or any(v != values[0] for v in values[1:]):
            out.append((k, values))
    return out


def metric_comparison(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per metric: each run's best value, its epoch, its last value, and which run is best."""
    table = []
    for m in METRICS:
        cells = []
        for r in runs:
            best = (r.summary.get("best_per_metric") or {}).get(m) or {}
            last = ((r.summary.get("last") or {}).get("metrics") or {}).get(m)
            cells.append({"best": best.get("value"), "epoch": best.get("epoch"), "last": last})
        values = [c["best"] for c in cells if c["best"] is not None]
        top = max(values) if values else None
        table.append(
            {
                "metric": m,
                "label": METRIC_LABELS[m],
                "runs": cells,
                "best_run": [i for i, c in enumerate(cells) if top is not None and c["best"] == top],
            }
        )
    return table


def epoch_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One row per epoch, like Ultralytics' results.csv: losses (`train/…`, `val/…`), metrics, learning rates."""
    by_epoch: dict[int, dict[str, Any]] = {}
    for e in read_events(run_dir / EVENTS_FILE):
        if (point := rewind_point(e)) is not None:  # the redone epochs replace the crashed attempt's
            by_epoch = {k: v for k, v in by_epoch.items() if k <= point[1]}
        ep = e.get("epoch")
        if not isinstance(ep, int):
            continue
        row = by_epoch.setdefault(ep, {"epoch": ep})
        if e["type"] == "step":
            row["step"] = e.get("step")
            row.update({f"lr/{k}": v for k, v in (e.get("lr") or {}).items()})
            row["grad_norm"] = e.get("grad_norm")
        elif e["type"] == "epoch_end":
            row.update({TRAIN_PREFIX + k: v for k, v in (e.get("loss") or {}).items()})
            row["duration_s"] = e.get("duration_s")
        elif e["type"] == "val":
            row.update({VAL_PREFIX + k: v for k, v in (e.get("metrics") or {}).items()})
            # The validation loss: val/coord ... val/total (runs from before it have none).
            row.update({VAL_PREFIX + k: v for k, v in (e.get("loss") or {}).items()})
    return [by_epoch[k] for k in sorted(by_epoch)]
