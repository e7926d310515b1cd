"""Options several commands share, spelled once."""

from __future__ import annotations

from pathlib import Path

import typer

SetOpt = typer.Option(
    None, "--set", "-s", metavar="KEY=VALUE", help="Override a field, e.g. --set optim.lr=0.002 (repeatable)."
)
RunsDirOpt = typer.Option(
    None, "--runs-dir", envvar="SURGTUI_RUNS_DIR", help="Where runs live [default: ./runs]."
)


def runs_dir_of(value: Path | None) -> Path:
    """--runs-dir, else $SURGTUI_RUNS_DIR, else ./runs."""
    from surgtui.runs.store import default_runs_dir

    return value if value is not None else default_runs_dir()
