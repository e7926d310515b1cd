"""Terminal output of `runs`, `show`, `compare` and `export` (Rich tables, JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surgtui.errors import UserError
from surgtui.fileio import write_text_atomic
from surgtui.runs.layout import BEST_WEIGHTS, LAST_WEIGHTS, MODEL_WEIGHTS, WEIGHTS_DIR
from surgtui.runs.metrics import (
    LOSS_COMPONENTS,
    METRIC_LABELS,
    PER_CLASS_LABELS,
    TRAIN_PREFIX,
    VAL_PREFIX,
    YOLOV5_COLUMNS,
)
from surgtui.runs.rows import (
    COLUMN_KEYS,
    COLUMNS,
    STATUS_STYLE,
    Column,
    config_diff,
    epoch_rows,
    metric_comparison,
    sort_runs,
)
from surgtui.runs.store import STATUSES, Run, list_runs


def _status(status: str) -> str:
    """`✓ finished` with its style, as Rich markup."""
    symbol, style = STATUS_STYLE.get(status, ("?", ""))
    return f"[{style}]{symbol} {status}[/]" if style else f"{symbol} {status}"


def _console() -> Any:
    from rich.console import Console

    return Console()


def print_runs(
    runs_dir: Path,
    fmt: str,
    sort: str,
    status: str | None,
    where: Sequence[str] = (),
    columns: str | None = None,
    trash: bool = False,
) -> None:
    from surgtui.runs.filters import extra_columns, parse_where
    from surgtui.runs.housekeeping import trash_root

    if fmt not in ("table", "json", "csv"):
        raise UserError(f"--format: {fmt!r} is not one of table, json, csv")
    if sort not in COLUMN_KEYS:
        raise UserError(f"--sort: unknown column {sort!r}; allowed: {', '.join(COLUMN_KEYS)}")
    if status is not None and status not in STATUSES:
        raise UserError(f"--status: {status!r} is not one of {', '.join(STATUSES)}")
    filters = [parse_where(w) for w in where]
    shown = [*COLUMNS, *extra_columns(columns or "")]
    listed = trash_root(runs_dir) if trash else runs_dir
    runs = [
        r
        for r in list_runs(listed)
        if (status is None or r.status == status) and all(f.matches(r) for f in filters)
    ]
    for r in runs:
        if r.error:  # listed all the same; one line on stderr says why its numbers are missing
            print(f"surgtui: warning: run {r.id}: {r.error}", file=sys.stderr)
    runs = sort_runs(runs, sort, descending=False if sort == "id" else None)
    data = [{c.key: c.get(r) for c in shown} for r in runs]
    if fmt == "json":
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=[c.key for c in shown], lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)
        return
    if not runs:
        if trash:
            print(f"the trash is empty ({listed})")
        elif filters or status:
            print(f"no runs in {runs_dir} match")
        else:
            print(f"no runs in {runs_dir} (start one with `surgtui run experiments/smoke.toml`)")
        return
    _console().print(_aligned_table(runs, shown), no_wrap=True, overflow="ignore", crop=False, soft_wrap=True)


def _aligned_table(runs: list[Run], columns: Sequence[Column] = COLUMNS) -> Any:
    """The runs table as one styled Text: Rich's Table measures every cell and takes seconds for 1,000 runs."""
    from rich.text import Text

    cells = [[c.label for c in columns]] + [[c.fmt(c.get(r)) for c in columns] for r in runs]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    status_col = COLUMN_KEYS.index("status")
    text = Text()
    for n, row in enumerate(cells):
        for i, (c, value) in enumerate(zip(columns, row)):
            padded = value.rjust(widths[i]) if c.numeric else value.ljust(widths[i])
            style = "bold" if n == 0 else (STATUS_STYLE.get(value, ("", ""))[1] if i == status_col else "")
            text.append(padded, style=style)
            text.append("  " if i < len(columns) - 1 else "\n")
    return text


def print_show(run_dir: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from surgtui.runs.housekeeping import read_note

    run = Run.load(run_dir)
    s = run.summary
    console = _console()
    console.print(f"[bold]{run.id}[/]  {run.experiment}  {_status(run.status)}")
    if run.error:
        console.print(f"[red]error:[/] {escape(run.error)}")
    end = s.get("end") or {}
    if end.get("reason"):
        console.print(f"reason: {end['reason']}")
    meta = run.meta
    console.print(
        f"directory: {run.path}\nhost: {meta.get('host')}  pid: {meta.get('pid')}  "
        f"command: {meta.get('command')}"
    )
    if meta.get("wandb_url") or meta.get("wandb_dir"):
        console.print(f"W&B: {meta.get('wandb_url') or meta.get('wandb_dir')}")
    if run.tags:
        console.print("tags: " + escape("  ".join(f"{k}={v}" for k, v in run.tags.items())))
    if note := read_note(run.path):
        console.print("note: " + escape(note))
    hp = s.get("hparams") or {}
    if hp:
        console.print("hparams: " + "  ".join(f"{k}={v}" for k, v in hp.items()))
    console.print(
        f"epochs: {s.get('epoch', 0)}/{s.get('epochs')}  steps: {s.get('step')}/{s.get('total_steps')}  "
        f"warnings: {s.get('warnings', 0)}"
    )
    last = s.get("last") or {}
    for label, loss, epoch in (
        ("train loss", last.get("epoch_loss"), s.get("epoch")),
        ("val loss", last.get("val_loss"), last.get("val_epoch")),
    ):
        if loss:
            console.print(f"{label} (epoch {epoch}): {_losses(loss)}")
    best = s.get("best")
    if best:
        console.print(
            f"best {METRIC_LABELS.get(best['metric'], best['metric'])} {best['value']:.4f} "
            f"at epoch {best['epoch']}"
        )
        table = Table(box=None, header_style="bold")
        table.add_column("class")
        for label in PER_CLASS_LABELS.values():
            table.add_column(label, justify="right")
        for name, m in (best.get("per_class") or {}).items():
            table.add_row(name, *(f"{m.get(k, 0):.4f}" for k in PER_CLASS_LABELS))
        console.print(table)
    weights = run.path / WEIGHTS_DIR
    for f in (BEST_WEIGHTS, LAST_WEIGHTS, MODEL_WEIGHTS):
        if (weights / f).exists():
            console.print(f"weights: {weights / f}")


def _losses(loss: dict[str, Any]) -> str:
    """`coord 0.0123  conf 0.2000  class 0.0100  total 0.2223`; `--` for a value not recorded."""
    return "  ".join(
        f"{k} {loss[k]:.4f}" if isinstance(loss.get(k), (int, float)) else f"{k} --"
        for k in LOSS_COMPONENTS
        if k in loss
    )


def print_compare(run_dirs: list[Path], all_keys: bool) -> None:
    from rich.table import Table

    from surgtui.runs.housekeeping import read_note

    if len(run_dirs) < 2:
        raise UserError("compare needs at least two runs")
    runs = [Run.load(p) for p in run_dirs]
    console = _console()
    cfg = Table(title="config" + ("" if all_keys else " (keys that differ)"), box=None, header_style="bold")
    cfg.add_column("key")
    for r in runs:
        cfg.add_column(r.id)
    diff = config_diff(runs, all_keys)
    notes = [read_note(r.path) for r in runs]
    labels = [" ".join(f"{k}={v}" for k, v in r.tags.items()) for r in runs]
    for key, values in (("note", notes), ("tags", labels)):
        if any(values):  # what the user wrote about the runs, above the keys
            cfg.add_row(key, *values)
    for key, values in diff:
        cfg.add_row(key, *(json.dumps(v) if not isinstance(v, str) else v for v in values))
    if diff or any(notes) or any(labels):
        console.print(cfg)
    else:
        console.print("config: identical")
    met = Table(title="metrics: best (epoch) / last   * best run", box=None, header_style="bold")
    met.add_column("metric")
    for r in runs:
        met.add_column(r.id, justify="right")
    for row in metric_comparison(runs):
        cells = []
        for i, c in enumerate(row["runs"]):
            if c["best"] is None:
                cells.append("--")
                continue
            mark = "[bold green]*[/] " if i in row["best_run"] and len(runs) > 1 else ""
            last = f"{c['last']:.4f}" if c["last"] is not None else "--"
            cells.append(f"{mark}{c['best']:.4f} ({c['epoch']}) / {last}")
        met.add_row(row["label"], *cells)
    console.print(met)


EXPORT_FORMATS = ("ours", "yolov5")


def export_csv(run_dir: Path, out: Path | None, fmt: str = "ours") -> None:
    """One row per epoch: our columns (`ours`), or YOLOv5's results.csv (`yolov5`)."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"--format {fmt!r}: allowed: {', '.join(EXPORT_FORMATS)}")
    data = epoch_rows(run_dir)
    if not data:
        raise UserError(f"run {run_dir.name}: no epochs recorded yet in {run_dir / 'events.jsonl'}")
    text, epochs = _yolov5_csv(data) if fmt == "yolov5" else (_our_csv(data), len(data))
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, text)
        print(f"wrote {epochs} epochs to {out}")


def _our_csv(data: list[dict[str, Any]]) -> str:
    fields: list[str] = []
    for row in data:
        fields.extend(k for k in row if k not in fields)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    return buf.getvalue()


def _yolov5_csv(data: list[dict[str, Any]]) -> tuple[str, int]:
    """YOLOv5's results.csv as its logger writes it: `%20s` names, `%20.5g` values, epochs counted from 0.

    One row per finished epoch (its `epoch_end`); like YOLOv5, an epoch without validation repeats the
    last validation's values (nan before the first, and for a loss the run did not record).
    """
    lines = [",".join(f"{name:>20}" for name in ("epoch", *(c for c, _ in YOLOV5_COLUMNS)))]
    val: dict[str, Any] = {}
    for row in data:
        val.update({k: v for k, v in row.items() if k.startswith(VAL_PREFIX)})
        if not any(k.startswith(TRAIN_PREFIX) for k in row):  # not finished (stopped mid-epoch)
            continue
        merged = {**row, **val}
        values = [row["epoch"] - 1, *(merged.get(key) for _, key in YOLOV5_COLUMNS)]
        lines.append(",".join(f"{float('nan') if v is None else v:20.5g}" for v in values))
    return "\n".join(lines) + "\n", len(lines) - 1
