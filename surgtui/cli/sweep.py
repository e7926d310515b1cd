"""`surgtui sweep FILE | show ID | stop ID | resume ID` and `surgtui sweeps`. Only typer at import time."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from surgtui.errors import ExitCode, UserError

if TYPE_CHECKING:
    from surgtui.sweeps.spec import SweepSpec

ACTIONS = ("show", "stop", "resume")


def create_sweep(
    file: Path,
    overrides: list[str],
    parallel: int | None,
    runs_dir: Path,
    storage: str | None,
    study: str | None = None,
) -> Path:
    """Validate the sweep file, make its directory and study; the sweep directory."""
    from surgtui.sweeps.spec import load_sweep
    from surgtui.sweeps.store import create_sweep_dir

    return create_sweep_dir(
        with_parallel(load_sweep(file, overrides), parallel), runs_dir, overrides, storage, study
    )


def with_parallel(spec: SweepSpec, parallel: int | None) -> SweepSpec:
    """The spec with `--parallel` applied (None: as the spec says)."""
    if parallel is None:
        return spec
    if parallel < 1:
        raise UserError(f"--parallel {parallel}: expected at least 1")
    return dataclasses.replace(spec, parallel=parallel)


def follow_sweep(sweep_dir: Path, proc: subprocess.Popen | None) -> int:
    """Print the scheduler's log as it grows until it ends; then the table. Ctrl-C stops the sweep."""
    from surgtui.sweeps.store import SCHEDULER_LOG, Sweep, scheduler_alive

    log, pos = sweep_dir / SCHEDULER_LOG, 0
    try:
        while True:
            text = log.read_text(encoding="utf-8") if log.exists() else ""
            if len(text) > pos:
                typer.echo(text[pos:], nl=False)
                pos = len(text)
            ended = proc.poll() is not None if proc is not None else not scheduler_alive(sweep_dir)
            if ended:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait()
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    typer.echo(text[pos:], nl=False)
    print_sweep(sweep_dir)
    state = Sweep.load(sweep_dir).state
    return {"finished": ExitCode.OK, "stopped": ExitCode.STOPPED}.get(state, ExitCode.FAILED)


def print_sweep(sweep_dir: Path, as_json: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    from surgtui.cli.ablate import ablation_dicts, print_ablation
    from surgtui.runs.metrics import METRIC_LABELS
    from surgtui.sweeps.store import Sweep
    from surgtui.sweeps.table import sweep_rows

    spec, rows = sweep_rows(sweep_dir)
    sweep = Sweep.load(sweep_dir)
    runs_dir = Path(sweep.info["runs_dir"])
    if as_json:
        out = {
            "id": sweep.id,
            "state": sweep.state,
            "metric": spec.metric,
            "configs": [r.to_dict() for r in rows],
        }
        if spec.arms:
            out["arms"] = ablation_dicts(spec, rows, runs_dir)
        typer.echo(json.dumps(out, indent=2))
        return
    if spec.arms:
        print_ablation(f"ablation {sweep.id} ({sweep.state}) of {spec.experiment.name}", spec, rows, runs_dir)
        return
    label = METRIC_LABELS.get(spec.metric, spec.metric)
    table = Table(
        title=f"sweep {sweep.id} ({sweep.state}): {label}, {spec.direction}, {len(rows)}/{spec.n_configs()} configurations"
    )
    keys = [p.key for p in spec.space]
    for col in [
        "",
        "config",
        *keys,
        *(f"seed {s}" for s in spec.seeds),
        f"{label} mean ± std",
        "pruned",
        "failed",
    ]:
        table.add_column(col)
    for r in rows:
        mean = f"{r.mean:.4f} ± {r.std:.4f}" if r.mean is not None else "-"
        seeds = [r.members.get(s, ("-", None, None)) for s in spec.seeds]
        table.add_row(
            "*" if r.best else "",
            str(r.config),
            *(repr(r.params.get(k)) for k in keys),
            *(f"{state} {value:.4f}" if value is not None else state for state, _, value in seeds),
            mean,
            str(r.count("pruned")),
            str(r.count("failed")),
            style="dim" if r.count("pruned") == len(spec.seeds) else "",
        )
    Console().print(table)


def sweep_command(
    target: str = typer.Argument(..., metavar="FILE | show ID | stop ID | resume ID"),
    ref: str | None = typer.Argument(None, metavar="[ID]"),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE for every member (as for `run`)."),
    parallel: int | None = typer.Option(None, "--parallel", help="Members at once (default: the file's)."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Print the sweep id and return at once."),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Optuna storage URL (postgresql://...) for the study [default: SQLite in the sweep directory].",
    ),
    study: str | None = typer.Option(
        None,
        "--study",
        help="Join (or start) the study of this name in --storage: schedulers on several machines share it.",
    ),
    json_: bool = typer.Option(False, "--json", help="show: print the table as JSON."),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help="Runs directory (default: ./runs)."),
) -> None:
    """Run a hyper-parameter sweep (Optuna) from a sweep file, or show, stop or resume one."""
    from surgtui.runs.store import default_runs_dir
    from surgtui.sweeps.store import Sweep, resolve_sweep, scheduler_alive, start_scheduler, stop_sweep

    rd = runs_dir or default_runs_dir()
    if target in ACTIONS:
        if ref is None:
            raise UserError(f"sweep {target}: which sweep? give its id (see `surgtui sweeps`) or `latest`")
        sweep = resolve_sweep(ref, rd)
        if target == "show":
            print_sweep(sweep.path, json_)
        elif target == "stop":
            if not stop_sweep(sweep.path):
                raise UserError(f"sweep {sweep.id} is not running ({sweep.state})")
            typer.echo(f"stopping {sweep.id}")
        else:
            if scheduler_alive(sweep.path):
                raise UserError(f"sweep {sweep.id} is still running")
            proc = start_scheduler(sweep.path)
            if detach:
                typer.echo(sweep.id)
                return
            raise typer.Exit(follow_sweep(sweep.path, proc))
        return
    sweep_dir = create_sweep(Path(target), set_, parallel, rd, storage, study)
    proc = start_scheduler(sweep_dir)
    if detach:
        typer.echo(sweep_dir.name)
        return
    typer.echo(f"sweep {sweep_dir.name} in {sweep_dir}", err=True)
    raise typer.Exit(follow_sweep(Sweep.load(sweep_dir).path, proc))


def sweeps_command(
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help="Runs directory (default: ./runs)."),
) -> None:
    """List sweeps: state, configurations done, members pruned or failed, the best mean."""
    from rich.console import Console
    from rich.table import Table

    from surgtui.runs.metrics import METRIC_LABELS
    from surgtui.runs.store import default_runs_dir
    from surgtui.sweeps.store import list_sweeps
    from surgtui.sweeps.table import sweep_rows

    table = Table("id", "state", "sampler", "configs done", "pruned", "failed", "best mean")
    for s in list_sweeps(runs_dir or default_runs_dir()):
        try:
            spec, rows = sweep_rows(s.path)
        except UserError as exc:  # one damaged sweep directory: say so in its row, list the others
            table.add_row(s.id, s.state, "", "", "", "", f"cannot read: {exc}")
            continue
        done = sum(all(m[0] in ("finished", "pruned", "failed") for m in r.members.values()) for r in rows)
        best = next((r for r in rows if r.best), None)
        label = METRIC_LABELS.get(spec.metric, spec.metric)
        table.add_row(
            s.id,
            s.state,
            spec.sampler,
            f"{done}/{spec.n_configs()}",
            str(sum(r.count("pruned") for r in rows)),
            str(sum(r.count("failed") for r in rows)),
            f"{label} {best.mean:.4f} (config {best.config})" if best and best.mean is not None else "-",
        )
    Console().print(table)
