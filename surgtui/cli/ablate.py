"""`surgtui ablate EXPERIMENT --seeds N`: the seed's improvements switched off one at a time, as a sweep.

Only typer at import time; the ablation runs on the sweep scheduler (docs/sweeps.md, "Ablations").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from surgtui.sweeps.spec import SweepSpec
    from surgtui.sweeps.table import ConfigRow


def ablate_command(
    experiment: Path = typer.Argument(..., help="The base experiment (all improvements as it sets them)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Runs per arm (seeds 0..N-1)."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE for every run (as for `run`)."),
    parallel: int | None = typer.Option(None, "--parallel", help="Runs at once [default: 1]."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Print the sweep id and return at once."),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help="Runs directory (default: ./runs)."),
) -> None:
    """Measure each of the seed's improvements on EXPERIMENT: legacy, all, and each one switched off alone.

    Prints mAP50 and mAP50-95 per arm (mean ± std over seeds) and the change against all improvements,
    paired by seed. `surgtui sweep show ID` prints the table again; `sweep stop`/`resume` work as for sweeps.
    """
    from surgtui.cli.sweep import follow_sweep, with_parallel
    from surgtui.runs.store import default_runs_dir
    from surgtui.sweeps.ablation import ablation_spec
    from surgtui.sweeps.store import create_sweep_dir, start_scheduler

    spec, skipped = ablation_spec(experiment, seeds, set_)
    spec = with_parallel(spec, parallel)
    for note in skipped:
        typer.echo(f"not ablated: {note}", err=True)
    sweep_dir = create_sweep_dir(spec, runs_dir or default_runs_dir(), set_)
    proc = start_scheduler(sweep_dir)
    if detach:
        typer.echo(sweep_dir.name)
        return
    typer.echo(
        f"ablation {sweep_dir.name}: {len(spec.arms)} arms x {seeds} seeds = {spec.n_members()} runs, "
        f"{spec.parallel} at a time, in {sweep_dir}",
        err=True,
    )
    raise typer.Exit(follow_sweep(sweep_dir, proc))


def _mean(ms: tuple[float, float] | None, signed: bool = False) -> str:
    if ms is None:
        return "-"
    return f"{ms[0]:+.3f}±{ms[1]:.3f}" if signed else f"{ms[0]:.3f}±{ms[1]:.3f}"


def ablation_dicts(spec: SweepSpec, configs: list[ConfigRow], runs_dir: Path) -> list[dict[str, Any]]:
    """The table as plain data (for `sweep show --json`)."""
    from surgtui.sweeps.ablation import ALL, METRICS, ablation_rows, arm_label

    rows = ablation_rows(spec, configs, runs_dir)
    ref = next(r for r in rows if r.arm == ALL)
    out = []
    for r in rows:
        entry: dict[str, Any] = {"arm": r.arm, "label": arm_label(r.arm), "runs": r.runs, "states": r.states}
        for m in METRICS:
            entry[m] = r.values.get(m, {})
            entry[f"{m}_mean_std"] = r.mean_std(m)
            entry[f"delta_{m}"] = r.delta(m, ref) if r is not ref else None
        out.append(entry)
    return out


def print_ablation(title: str, spec: SweepSpec, configs: list[ConfigRow], runs_dir: Path) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from surgtui.runs.metrics import METRIC_LABELS
    from surgtui.sweeps.ablation import ALL, LEGACY, METRICS, ablation_rows, arm_label

    rows = ablation_rows(spec, configs, runs_dir)
    ref = next(r for r in rows if r.arm == ALL)
    labels = [METRIC_LABELS.get(m, m) for m in METRICS]
    table = Table(
        title=f"{title}\nmean±std over seeds; Δ = arm − all, paired by seed",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    table.add_column("arm", no_wrap=True)
    table.add_column("n", no_wrap=True)  # members finished of seeds
    for label in labels:  # widths that fit "0.412±0.010" and "+0.012±0.005": 80 columns hold the table
        table.add_column(label, no_wrap=True, min_width=11)
        table.add_column(f"Δ {label}", no_wrap=True, min_width=12)
    for r in rows:
        done = sum(s == "finished" for s in r.states.values())
        cells = [
            c
            for m in METRICS
            for c in (_mean(r.mean_std(m)), "" if r is ref else _mean(r.delta(m, ref), signed=True))
        ]
        style = "bold" if r is ref else ""
        table.add_row(r.arm, f"{done}/{len(spec.seeds)}", *cells, style=style)
    console = Console()
    console.print(table)
    for r in rows:
        console.print(f"  {r.arm}: {arm_label(r.arm)}", highlight=False)
    legacy = next((r for r in rows if r.arm == LEGACY), None)
    for m, label in zip(METRICS, labels):
        gain = legacy.delta(m, ref) if legacy else None
        base = legacy.mean_std(m) if legacy else None
        if gain is not None and base is not None and base[0] > 0:
            console.print(
                f"all improvements against legacy: {label} {-gain[0]:+.4f} ({-100 * gain[0] / base[0]:+.1f} %)"
            )
