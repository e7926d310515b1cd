"""The experiment files in a directory, each with the best mAP of its latest run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from surgtui.config.load import load_experiment
from surgtui.errors import ConfigError
from surgtui.runs.metrics import BEST_METRIC
from surgtui.runs.store import Run
from surgtui.sweeps.spec import is_sweep_file


@dataclass(frozen=True)
class ExperimentInfo:
    path: Path
    name: str
    variant: str
    description: str
    error: str = ""
    last_run: str = ""
    last_status: str = ""
    best_map: float | None = None


def list_experiments(experiments_dir: Path, runs: Sequence[Run]) -> list[ExperimentInfo]:
    """Every experiment *.toml in the directory, sorted by name; an invalid file is listed with its error.

    Sweep files (a [sweep] table) are not experiments: `surgtui sweep` runs them."""
    latest: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: r.id):
        latest[run.experiment] = run
    out = []
    for path in sorted(Path(experiments_dir).glob("*.toml")):
        if is_sweep_file(path):
            continue
        try:
            exp = load_experiment(path, env={}).experiment  # the file as written, no env overrides
        except ConfigError as exc:
            out.append(ExperimentInfo(path, path.stem, "invalid", "", error=str(exc)))
            continue
        run = latest.get(exp.name)
        out.append(
            ExperimentInfo(
                path,
                exp.name,
                exp.variant,
                exp.description,
                last_run=run.id if run else "",
                last_status=run.status if run else "",
                best_map=run.metric(BEST_METRIC) if run else None,
            )
        )
    return out
