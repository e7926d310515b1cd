"""`surgtui data ...`: synth, prepare, check. Only typer at import time; the work imports numpy, PIL, PyAV."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from surgtui.errors import ExitCode, UserError

data_app = typer.Typer(
    help="Synthesise, prepare (SimSurgSkill → COCO), check and convert detection data sets.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_SPLIT_RE = re.compile(r"[A-Za-z0-9_.-]+")


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' → (1280, 720); UserError naming --size and the allowed form otherwise."""
    match = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    width, height = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not (32 <= width <= 4096 and 32 <= height <= 4096):
        raise UserError(f"--size {text!r}: expected WIDTHxHEIGHT such as 1280x720, each 32..4096")
    return width, height


def parse_splits(text: str) -> list[str]:
    """'train_v1,test' → ['train_v1', 'test']; UserError on an empty or unsafe name."""
    splits = [s.strip() for s in text.split(",")]
    bad = next((s for s in splits if not _SPLIT_RE.fullmatch(s)), None)
    if bad is not None or len(set(splits)) != len(splits):
        raise UserError(
            f"--splits {text!r}: expected distinct comma-separated names of letters, digits, '_', '-', '.'"
        )
    return splits


def parse_classes_map(pairs: list[str]) -> dict[str, str]:
    """['Needle Holder=needle_driver', 'suture=drop'] → a data.classes_map; UserError on a bad pair."""
    from surgtui.config.schema import CLASS_MAP_VALUES, normal_name

    out = {}
    for pair in pairs:
        theirs, sep, ours = pair.rpartition("=")
        if not sep or not theirs.strip() or normal_name(ours) not in CLASS_MAP_VALUES:
            raise UserError(
                f"--map {pair!r}: expected THEIR_NAME=CLASS with CLASS one of {', '.join(CLASS_MAP_VALUES)}"
            )
        out[theirs.strip()] = ours.strip()
    return out


FORMAT_HELP = "Layout to read: auto (detected, docs/data.md gives the order), coco, yolo or simsurgskill."
MAP_HELP = "Map a class of the data set to ours: --map 'Needle Holder=needle_driver' or --map suture=drop."


@contextmanager
def _progress(label: str) -> Iterator[Callable[..., None] | None]:
    """A Rich progress bar on a terminal; None (no updates) when output is piped or redirected."""
    if not sys.stdout.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int, what: str = "") -> None:
            bar.update(task, completed=done, total=total, description=f"{label} {what}".strip())

        yield update


@data_app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Directory to write into (created)."),
    videos: int = typer.Option(2, "--videos", min=1, help="Videos per split."),
    frames: int = typer.Option(10, "--frames", min=1, help="Frames per video (fps1 frames)."),
    size: str = typer.Option("1280x720", "--size", help="Frame size WIDTHxHEIGHT."),
    seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same frames and boxes."),
    layout: str = typer.Option("simsurgskill", "--layout", help="simsurgskill (MP4 + JSON), coco or yolo."),
    splits: str = typer.Option("train_v1", "--splits", help="Comma-separated split names."),
) -> None:
    """Generate a synthetic data set that looks like SimSurgSkill's da Vinci simulator frames."""
    from surgtui.data.writers import plan_videos, write_synthetic

    width, height = parse_size(size)
    plan = plan_videos(parse_splits(splits), videos, frames)
    with _progress("synth") as progress:
        write_synthetic(out, layout, plan, width, height, seed, progress)
    typer.echo(f"wrote {len(plan)} videos x {frames} frames ({width}x{height}, {layout}) to {out}")


@data_app.command()
def prepare(
    raw_dir: Path = typer.Argument(
        ..., help="Raw SimSurgSkill directory (<split>/videos/fps1, <split>/annotations)."
    ),
    out: Path = typer.Option(..., "--out", help="Directory for the COCO data set (images/, annotations/)."),
    splits: str | None = typer.Option(
        None,
        "--splits",
        help="Comma-separated splits, e.g. train_v1,train_v2,test [default: every split found].",
    ),
    json_: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Decode the annotated fps1 frames to JPEG and write one COCO file per split (resumable)."""
    from surgtui.data.prepare import prepare as run_prepare

    with _progress("prepare") as progress:
        report = run_prepare(raw_dir, out, parse_splits(splits) if splits else None, progress)
    typer.echo(json.dumps(report.to_dict(), indent=2) if json_ else "\n".join(report.summary_lines()))


@data_app.command()
def check(
    directory: Path = typer.Argument(..., help="A coco, yolo or raw simsurgskill data set, or a data.yaml."),
    preview: Path | None = typer.Option(
        None, "--preview", help="Also draw frames with their boxes into this PNG."
    ),
    count: int = typer.Option(8, "--preview-count", min=1, help="Frames in the preview grid."),
    fmt: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    classes_map: list[str] = typer.Option([], "--map", help=MAP_HELP),
    json_: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Say which layout was found, count images and boxes (by split, class and COCO size) and list problems.
    Exit 1 if there are problems."""
    from surgtui.data.check import check as run_check
    from surgtui.data.check import preview as draw_preview

    mapping = parse_classes_map(classes_map)
    report = run_check(directory, _format(fmt), mapping)
    typer.echo(json.dumps(report.to_dict(), indent=2) if json_ else "\n".join(report.lines()))
    if preview is not None:
        draw_preview(directory, preview, count, fmt=fmt, classes_map=mapping)
        typer.echo(f"wrote {preview}", err=json_)
    if report.problems.total():
        raise typer.Exit(ExitCode.FAILED)


def _format(fmt: str) -> str:
    from surgtui.data.layouts import FORMATS

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: allowed: {', '.join(FORMATS)}")
    return fmt


@data_app.command()
def convert(
    source: Path = typer.Argument(..., help="Any data set surgtui reads (folder or data.yaml)."),
    to: str = typer.Option(..., "--to", help="coco or yolo."),
    out: Path = typer.Option(..., "--out", help="Folder to write (new, or empty)."),
    fmt: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    classes_map: list[str] = typer.Option([], "--map", help=MAP_HELP),
    link: bool = typer.Option(False, "--link", help="Hard-link the images instead of copying (same disk)."),
) -> None:
    """Write a data set as plain COCO or Ultralytics YOLO, for other tools (boxes read back exactly)."""
    from surgtui.data.convert import convert as run_convert

    mapping = parse_classes_map(classes_map)
    with _progress("convert") as progress:
        report = run_convert(source, to, out, _format(fmt), mapping, link, progress)
    typer.echo("\n".join(report.lines()))
