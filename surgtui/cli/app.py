"""The `surgtui` command line. Imports stay light: `--help` must start in well under 0.3 s.

Command bodies import what they need (Rich, pydantic, Textual) when they run; none
imports torch: the engine is always a separate process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from surgtui import __version__
from surgtui.cli.ablate import ablate_command
from surgtui.cli.data import data_app
from surgtui.cli.export_model import export_model_command
from surgtui.cli.options import RunsDirOpt, SetOpt, runs_dir_of
from surgtui.cli.queue import enqueue, queue_app
from surgtui.cli.sweep import sweep_command, sweeps_command
from surgtui.config.device import DEVICE_CHOICES
from surgtui.errors import ExitCode, UserError

app = typer.Typer(
    name="surgtui",
    help="Terminal experiment manager for surgical-instrument detectors (YOLOv5 on a torchvision backbone).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = bool(os.environ.get("SURGTUI_DEBUG"))

DeviceOpt = typer.Option("auto", "--device", help=f"{DEVICE_CHOICES}.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"surgtui {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    global _debug
    _debug = _debug or debug


# ---------------------------------------------------------------- experiments


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Experiment TOML files."),
    set_: list[str] | None = SetOpt,
    resolved: bool = typer.Option(False, "--resolved", help="Print the fully resolved experiment as TOML."),
) -> None:
    """Check experiment files against the schema (and print them resolved); sweep files too."""
    from surgtui.config.load import load_experiment
    from surgtui.sweeps.spec import is_sweep_file, load_sweep

    for f in files:
        if is_sweep_file(f):
            s = load_sweep(f, set_ or ())
            typer.echo(
                f"{f}: ok (sweep {s.name}: {s.sampler}, {s.n_configs()} configurations x {len(s.seeds)} seeds "
                f"on {s.experiment.name})"
            )
            continue
        r = load_experiment(f, set_ or ())
        for note in r.notes:
            typer.echo(f"{f}: {note}", err=True)
        if resolved:
            typer.echo(r.to_toml(), nl=False)
        else:
            e = r.experiment
            typer.echo(
                f"{f}: ok ({e.variant}, {e.model.backbone}, {e.train.epochs} epochs, lr {e.optim.lr:g})"
            )


@app.command()
def new(
    name: str = typer.Argument(..., help="Experiment name; writes experiments/NAME.toml."),
    from_: Path | None = typer.Option(None, "--from", help="Copy this experiment file."),
    variant: str = typer.Option("YOLOv5-Small", "--variant", help="Variant preset for a fresh file."),
    directory: Path = typer.Option(Path("experiments"), "--dir", help="Where experiment files live."),
) -> None:
    """Create a new experiment file from a variant or a copy of another."""
    from surgtui.config.edit import save_as
    from surgtui.config.template import render_template
    from surgtui.config.variants import VARIANTS

    dest = directory / f"{name}.toml"
    if from_ is not None:
        try:
            text = from_.read_text(encoding="utf-8")
        except OSError:
            raise UserError(f"{from_}: no such experiment file") from None
    else:
        if variant not in VARIANTS:
            raise UserError(f"--variant: unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
        text = render_template(name, variant, str(dest))
    save_as(text, dest)
    typer.echo(f"wrote {dest}")


# ---------------------------------------------------------------- runs


@app.command()
def run(
    experiment: Path = typer.Argument(..., help="Experiment TOML file."),
    set_: list[str] | None = SetOpt,
    runs_dir: Path | None = RunsDirOpt,
    name: str | None = typer.Option(None, "--name", help="Run name (default: the experiment's name)."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Print the run id and return at once."),
    json_: bool = typer.Option(False, "--json", help="Print the events themselves, one JSON per line."),
    queue: bool = typer.Option(
        False,
        "--queue",
        "-q",
        help="Add it to the queue (`surgtui queue`): it starts when the runs before it end.",
    ),
) -> None:
    """Train an experiment headless: start the engine and follow it."""
    from surgtui.cli.follow import follow
    from surgtui.config.load import load_experiment
    from surgtui.runs.launcher import launch_run

    if queue:
        enqueue([experiment], list(set_ or ()) + ([f'name="{name}"'] if name else []), runs_dir_of(runs_dir))
        return
    resolved = load_experiment(experiment, list(set_ or ()) + ([f'name="{name}"'] if name else []))
    for note in resolved.notes:
        typer.echo(f"note: {note}", err=True)
    run_dir, proc = launch_run(
        resolved.experiment, resolved.to_toml(), runs_dir_of(runs_dir), str(experiment)
    )
    if detach:
        typer.echo(run_dir.name)
        return
    if not json_:
        typer.echo(f"run {run_dir.name} in {run_dir}", err=True)
    raise typer.Exit(follow(run_dir, "json" if json_ else "auto", proc))


@app.command()
def runs(
    runs_dir: Path | None = RunsDirOpt,
    format_: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    sort: str = typer.Option("id", "--sort", help="Column to sort by (e.g. map50_95, lr, duration)."),
    status: str | None = typer.Option(None, "--status", help="Only runs with this status."),
    where: list[str] = typer.Option(
        [],
        "--where",
        "-w",
        metavar="KEY OP VALUE",
        help="Only runs where this holds (repeatable, all must): 'map50_95>0.3', 'status=finished', "
        "'optim.lr<=0.001', 'tags.sweep=ID', 'note!='. OP: = != > < >= <=.",
    ),
    columns: str | None = typer.Option(
        None, "--columns", "-c", metavar="KEY,...", help="More columns: experiment keys, note, tags.NAME."
    ),
    trash: bool = typer.Option(False, "--trash", help="List the runs in the trash instead (`surgtui rm`)."),
) -> None:
    """List past and running runs with their best metrics."""
    from surgtui.cli.tables import print_runs

    print_runs(runs_dir_of(runs_dir), format_, sort, status, where, columns, trash)


@app.command()
def note(
    run_ref: str = typer.Argument(..., metavar="RUN"),
    text: str | None = typer.Argument(None, help="The note (replaces the old one; '' removes it)."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Write a note on a run (shown by `show`, `runs --columns note`, the UI); without TEXT, print it."""
    from surgtui.runs.housekeeping import read_note, write_note
    from surgtui.runs.store import resolve_run

    run_dir = resolve_run(run_ref, runs_dir_of(runs_dir))
    if text is not None:
        write_note(run_dir, text)
    typer.echo(read_note(run_dir) or f"{run_dir.name}: no note")


@app.command()
def rm(
    run_refs: list[str] = typer.Argument(None, metavar="RUN...", help="Runs to move to the trash."),
    purge: bool = typer.Option(
        False, "--purge", help="Delete for good: the RUNs named in the trash, or the whole trash."
    ),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Move runs to the trash (runs/.trash; `surgtui restore` brings them back); refuses a running one."""
    from surgtui.runs.housekeeping import purge_trash, trash_runs

    rd = runs_dir_of(runs_dir)
    if purge:
        gone = purge_trash(rd, run_refs or ())
        typer.echo(f"deleted {len(gone)} runs for good" + (f": {', '.join(gone)}" if gone else ""))
        return
    if not run_refs:
        raise UserError("rm: which runs? give run ids (see `surgtui runs`), or --purge to empty the trash")
    for run_id in trash_runs(rd, run_refs):
        typer.echo(f"moved {run_id} to the trash")


@app.command()
def restore(
    run_refs: list[str] = typer.Argument(..., metavar="RUN...", help="Runs in the trash (`runs --trash`)."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Bring runs back from the trash."""
    from surgtui.runs.housekeeping import restore_runs

    for run_id in restore_runs(runs_dir_of(runs_dir), run_refs):
        typer.echo(f"restored {run_id}")


@app.command()
def show(run_ref: str = typer.Argument(..., metavar="RUN"), runs_dir: Path | None = RunsDirOpt) -> None:
    """Show one run: status, config highlights, metrics per class, where its files are."""
    from surgtui.cli.tables import print_show
    from surgtui.runs.store import resolve_run

    print_show(resolve_run(run_ref, runs_dir_of(runs_dir)))


@app.command()
def compare(
    run_refs: list[str] = typer.Argument(..., metavar="RUN..."),
    all_: bool = typer.Option(False, "--all", help="Show every config key, not only those that differ."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Compare runs: config keys that differ, then metrics side by side."""
    from surgtui.cli.tables import print_compare
    from surgtui.runs.store import resolve_run

    rd = runs_dir_of(runs_dir)
    print_compare([resolve_run(r, rd) for r in run_refs], all_)


@app.command()
def tag(
    run_ref: str = typer.Argument(..., metavar="RUN"),
    tags: list[str] = typer.Argument(None, metavar="KEY=VALUE...", help="Tags to add or replace."),
    remove: list[str] = typer.Option([], "--rm", metavar="KEY", help="Drop a tag (repeatable)."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Label a run with key=value tags (shown by `runs` and `show`); with none, print its tags."""
    from surgtui.runs.store import resolve_run
    from surgtui.runs.tags import parse_tag, read_tags, set_tags

    run_dir = resolve_run(run_ref, runs_dir_of(runs_dir))
    new = dict(parse_tag(t) for t in tags or ())
    result = set_tags(run_dir, new, remove) if new or remove else read_tags(run_dir)
    typer.echo(" ".join(f"{k}={v}" for k, v in result.items()) or f"{run_dir.name}: no tags")


@app.command()
def stop(
    run_ref: str = typer.Argument(..., metavar="RUN"),
    kill: bool = typer.Option(False, "--kill", help="SIGKILL instead of a clean stop."),
    wait: bool = typer.Option(False, "--wait", help="Wait until the run has ended."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Stop a running run: it finishes its step, saves last.pt and ends `stopped`."""
    import signal
    import time

    from surgtui.runs.launcher import signal_run
    from surgtui.runs.store import Run, resolve_run

    run = Run.load(resolve_run(run_ref, runs_dir_of(runs_dir)))
    if not signal_run(run, signal.SIGKILL if kill else signal.SIGINT):
        raise UserError(f"run {run.id} is not running (status: {run.status})")
    typer.echo(f"{'killed' if kill else 'stopping'} {run.id}")
    while wait and Run.load(run.path).alive:  # until the process is gone, not only until run_end is written
        time.sleep(0.2)
    if wait:
        typer.echo(f"{run.id}: {Run.load(run.path).status}")


@app.command()
def resume(
    run_ref: str = typer.Argument(..., metavar="RUN"),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="Change KEY=VALUE on the way (train.epochs, train.patience, train.val_every, train.device, ...).",
    ),
    detach: bool = typer.Option(False, "--detach", "-d", help="Return at once."),
    json_: bool = typer.Option(False, "--json", help="Print the events, one JSON per line."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Continue a stopped or crashed run from its last checkpoint, in the same directory; with
    `--set train.epochs=N` also a finished one, for more epochs."""
    from surgtui.cli.follow import follow
    from surgtui.runs.extend import apply_resume_changes, resume_changes
    from surgtui.runs.inference import is_checkpoint_file
    from surgtui.runs.launcher import Topology, start_engine
    from surgtui.runs.layout import BEST_WEIGHTS, EVENTS_FILE, LAST_WEIGHTS, WEIGHTS_DIR
    from surgtui.runs.store import Run, resolve_run

    run = Run.load(resolve_run(run_ref, runs_dir_of(runs_dir)))
    if run.status == "running":
        raise UserError(f"run {run.id} is still running")
    changes = resume_changes(run, set_)
    if run.status == "finished" and not changes:
        raise UserError(f"run {run.id} already finished; to train it longer: --set train.epochs=N")
    # The engine resumes from the newer of last.pt and best.pt (a kill between their writes).
    saved = [p for p in (run.path / WEIGHTS_DIR / n for n in (LAST_WEIGHTS, BEST_WEIGHTS)) if p.is_file()]
    from_node_0 = Topology.of(run.path).node_rank > 0  # sent node 0's checkpoint when training starts
    if not saved and not from_node_0:
        raise UserError(f"run {run.id}: no checkpoint in {run.path / WEIGHTS_DIR} to resume from")
    if saved and not any(is_checkpoint_file(p) for p in saved):
        raise UserError(
            f"run {run.id}: {saved[0]} is not a checkpoint (damaged or not written by surgtui); "
            "it cannot be resumed"
        )
    apply_resume_changes(run, changes)
    for key, value in changes.items():
        typer.echo(f"note: --set {key}={value}", err=True)
    events_file = run.path / EVENTS_FILE
    history = events_file.stat().st_size if events_file.exists() else 0
    proc = start_engine(run.path, resume=True)  # UserError when another resume won the run's lock
    if detach:
        typer.echo(run.id)
        return
    raise typer.Exit(follow(run.path, "json" if json_ else "auto", proc, history_bytes=history))


@app.command()
def attach(
    run_ref: str = typer.Argument("latest", metavar="RUN"),
    json_: bool = typer.Option(False, "--json", help="Print the events, one JSON per line."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Follow a run started elsewhere, from its whole history on."""
    from surgtui.cli.follow import follow
    from surgtui.runs.store import resolve_run

    raise typer.Exit(follow(resolve_run(run_ref, runs_dir_of(runs_dir)), "json" if json_ else "auto"))


@app.command()
def export(
    run_ref: str = typer.Argument(..., metavar="RUN"),
    out: Path | None = typer.Option(None, "--out", "-o", help="CSV file to write [default: stdout]."),
    format_: str = typer.Option(
        "ours", "--format", "-f", help="ours, or yolov5 (YOLOv5's results.csv columns and layout)."
    ),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Write one CSV row per epoch: losses, metrics, learning rates."""
    from surgtui.cli.tables import export_csv
    from surgtui.runs.store import resolve_run

    export_csv(resolve_run(run_ref, runs_dir_of(runs_dir)), out, format_)


# ---------------------------------------------------------------- UI and inference


@app.command()
def launch(
    directory: Path = typer.Option(Path("experiments"), "--dir", help="Experiment files."),
    runs_dir: Path | None = RunsDirOpt,
    no_mouse: bool = typer.Option(False, "--no-mouse", help="Leave the mouse to the terminal."),
) -> None:
    """Open the full-screen experiment manager."""
    from surgtui.tui.app import run_app

    run_app(directory, runs_dir_of(runs_dir), mouse=not no_mouse)


@app.command()
def predict(
    weights: str = typer.Argument(
        ..., metavar="RUN|WEIGHTS", help="A run (its best.pt, else last.pt) or a .pt file."
    ),
    source: Path = typer.Argument(
        ...,
        metavar="SOURCE",
        help="An image, a folder of images, a quoted glob ('frames/**/*.png'), or a video.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Directory for predictions.json and the drawn images/video."
    ),
    conf: float = typer.Option(0.25, "--conf", help="Minimum score (objectness x class probability)."),
    iou: float = typer.Option(0.45, "--iou", help="NMS IoU threshold."),
    device: str = DeviceOpt,
    batch: int = typer.Option(8, "--batch", help="Images per forward pass."),
    no_images: bool = typer.Option(False, "--no-images", help="Write only predictions.json."),
    every: int | None = typer.Option(None, "--every", metavar="N", help="A video: keep frames 0, N, 2N, ..."),
    fps: float | None = typer.Option(
        None, "--fps", metavar="F", help="A video: keep about F frames per second."
    ),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="A folder: its subfolders' images too."),
    save_txt: bool = typer.Option(
        False, "--save-txt", help="YOLO label files (class cx cy w h) in DIR/labels/."
    ),
    save_conf: bool = typer.Option(False, "--save-conf", help="Append the score to --save-txt's lines."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Run a trained detector on an image, a folder of images or a video (docs/predict.md)."""
    from surgtui.cli.predict import predict_command
    from surgtui.runs.inference import PredictOptions

    options = PredictOptions(every, fps, recursive, save_txt, save_conf)
    raise typer.Exit(
        predict_command(weights, source, out, conf, iou, device, batch, no_images, runs_dir, options)
    )


@app.command("eval")
def eval_(
    weights: str = typer.Argument(
        ..., metavar="RUN|WEIGHTS", help="A run (its best.pt, else last.pt) or a .pt file."
    ),
    data: str | None = typer.Argument(
        None,
        metavar="DATA",
        help="COCO/YOLO/prepared directory or 'synthetic' [default: the checkpoint's own validation data].",
    ),
    split: str | None = typer.Option(
        None, "--split", help="Split [default: the config's val split, or the only one]."
    ),
    json_: bool = typer.Option(False, "--json", help='Print {"metrics", "per_class"} as JSON.'),
    device: str = DeviceOpt,
    batch: int | None = typer.Option(
        None, "--batch", help="Images per forward pass [the config's batch_size]."
    ),
    workers: int | None = typer.Option(None, "--workers", help="Data loader workers [the config's]."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Validate a checkpoint on a data set exactly as training validates (COCO mAP, P, R, IoU)."""
    from surgtui.cli.predict import eval_command

    raise typer.Exit(eval_command(weights, data, split, json_, device, batch, workers, runs_dir))


@app.command()
def sync(
    run_ref: str | None = typer.Argument(None, metavar="[RUN]"),
    all_: bool = typer.Option(
        False, "--all", help="Every run in the runs directory with an offline W&B log."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be uploaded; upload nothing."),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Upload offline W&B logs (runs `wandb sync` on them): one run's, or with --all every run's."""
    import subprocess

    from surgtui.runs.layout import WANDB_DIR
    from surgtui.runs.store import Run, list_runs, resolve_run

    if (run_ref is None) == (not all_):
        raise UserError("sync: give a RUN or --all, not both" if all_ else "sync: give a RUN, or --all")
    root = runs_dir_of(runs_dir)
    runs = list_runs(root) if run_ref is None else [Run.load(resolve_run(run_ref, root))]
    # A resumed run holds one directory per engine start, all with its one W&B id: wandb syncs them as one run.
    offline = [d for r in runs for d in sorted(r.path.glob(f"{WANDB_DIR}/offline-run-*"))]
    if not offline:
        where = f"any run in {root}" if all_ else f"run {runs[0].id} ({runs[0].path / WANDB_DIR})"
        raise UserError(f"no offline W&B log in {where} (was [logging] wandb on?)")
    command = [sys.executable, "-m", "wandb", "sync", *(["--dry-run"] if dry_run else []), *map(str, offline)]
    raise typer.Exit(subprocess.call(command))


app.add_typer(data_app, name="data", help="Synthesise, prepare, check and convert data sets.")
app.add_typer(queue_app, name="queue")
app.command("sweep")(sweep_command)
app.command("ablate")(ablate_command)
app.command("sweeps")(sweeps_command)
app.command("export-model")(export_model_command)


def main() -> None:
    """Entry point: user errors are one line and exit 2; tracebacks only with --debug."""
    try:
        app(prog_name="surgtui")
    except UserError as exc:
        if _debug:
            raise
        typer.echo(f"surgtui: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(ExitCode.STOPPED)


if __name__ == "__main__":
    main()
