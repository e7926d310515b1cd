"""`surgtui queue [add FILE... | rm N... | start | stop]` and `surgtui run FILE --queue`. Only typer at import time."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from surgtui.cli.options import RunsDirOpt, SetOpt, runs_dir_of
from surgtui.errors import UserError

queue_app = typer.Typer(
    help="Experiments to run one after another (one per GPU on a GPU box), by a detached worker.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def enqueue(files: list[Path], overrides: list[str], runs_dir: Path) -> None:
    """Queue each file as it resolves now, then make sure the worker runs."""
    from surgtui.sweeps.queue import add_entry, list_entries, start_worker

    for file in files:
        ahead = sum(e.state(runs_dir) in ("waiting", "running") for e in list_entries(runs_dir))
        entry = add_entry(runs_dir, file, overrides)
        typer.echo(f"queued #{entry.number} {entry.name} ({ahead} ahead)")
    start_worker(runs_dir)


@queue_app.callback()
def queue_list(ctx: typer.Context, runs_dir: Path | None = RunsDirOpt) -> None:
    """Show the queue: waiting entries, and the runs the started ones became."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from surgtui.sweeps.queue import list_entries, worker_alive

    rd = runs_dir_of(runs_dir)
    entries = list_entries(rd)
    table = Table("#", "experiment", "state", "run", "queued")
    now = time.time()
    for e in entries:
        ago = int(now - float(e.data.get("added", now)))
        table.add_row(
            str(e.number),
            e.name,
            e.state(rd),
            e.run_id or e.data.get("error", "")[:60],
            f"{ago // 60} min ago",
        )
    console = Console()
    if entries:
        console.print(table)
    waiting = sum(e.state(rd) == "waiting" for e in entries)
    if worker_alive(rd):
        console.print(f"worker running; {waiting} waiting")
    elif waiting:
        console.print(f"worker stopped; {waiting} waiting: `surgtui queue start` starts them")
    else:
        console.print("queue empty: `surgtui run FILE --queue` or `surgtui queue add FILE` adds to it")


@queue_app.command("add")
def queue_add(
    files: list[Path] = typer.Argument(..., help="Experiment files, run in this order."),
    set_: list[str] | None = SetOpt,
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Queue experiments (resolved now: later edits of the files do not change them)."""
    enqueue(files, list(set_ or ()), runs_dir_of(runs_dir))


@queue_app.command("rm")
def queue_rm(
    numbers: list[int] = typer.Argument(..., help="Entry numbers (see `surgtui queue`)."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Take waiting entries off the queue."""
    from surgtui.sweeps.queue import remove_entry

    for n in numbers:
        entry = remove_entry(runs_dir_of(runs_dir), n)
        typer.echo(f"removed #{n} {entry.name}")


@queue_app.command("clear")
def queue_clear(runs_dir: Path | None = RunsDirOpt) -> None:
    """Forget entries whose runs have ended (the runs stay in `surgtui runs`)."""
    from surgtui.sweeps.queue import clear_ended

    typer.echo(f"cleared {len(clear_ended(runs_dir_of(runs_dir)))} ended entries")


@queue_app.command("start")
def queue_start(runs_dir: Path | None = RunsDirOpt) -> None:
    """Start the worker (after `queue stop`); it exits by itself when the queue is empty."""
    from surgtui.sweeps.queue import start_worker

    if start_worker(runs_dir_of(runs_dir)) is None:
        raise UserError("queue: the worker is already running")
    typer.echo("worker started")


@queue_app.command("stop")
def queue_stop(runs_dir: Path | None = RunsDirOpt) -> None:
    """Stop starting queued runs; runs already started keep training (`surgtui stop RUN`)."""
    from surgtui.sweeps.queue import stop_worker

    if not stop_worker(runs_dir_of(runs_dir)):
        raise UserError("queue: no worker is running")
    typer.echo("worker stopping: no more queued runs start")
