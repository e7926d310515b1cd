"""A sweep as a table: one row per configuration, its members by seed, mean ± std of the metric over
the members that finished, the best configuration marked; pruned and failed members counted."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from surgtui.errors import UserError, one_line
from surgtui.runs.store import read_json
from surgtui.sweeps import study as st
from surgtui.sweeps.spec import SweepSpec
from surgtui.sweeps.store import SWEEP_JSON

STATE_WORDS = {
    optuna.trial.TrialState.COMPLETE: "finished",
    optuna.trial.TrialState.PRUNED: "pruned",
    optuna.trial.TrialState.FAIL: "failed",
    optuna.trial.TrialState.RUNNING: "running",
    optuna.trial.TrialState.WAITING: "waiting",
}


@dataclass
class ConfigRow:
    config: int
    params: dict[str, Any]
    members: dict[int, tuple[str, str | None, float | None]] = field(
        default_factory=dict
    )  # seed -> (state, run, value)
    best: bool = False

    @property
    def values(self) -> list[float]:
        return [v for state, _, v in self.members.values() if state == "finished" and v is not None]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else (0.0 if self.values else None)

    def count(self, state: str) -> int:
        return sum(s == state for s, _, _ in self.members.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "params": self.params,
            "members": {
                str(seed): {"state": s, "run": r, "value": v} for seed, (s, r, v) in self.members.items()
            },
            "mean": self.mean,
            "std": self.std,
            "best": self.best,
        }


SQLITE = "sqlite:///"


def sweep_problem(sweep_dir: Path, info: dict[str, Any]) -> str:
    """Why this sweep directory cannot be read, before asking Optuna (which would make an empty SQLite
    file where the study is missing); '' when nothing is wrong."""
    where = sweep_dir / SWEEP_JSON
    if not info:
        return f"{where}: not readable as JSON"
    missing = [k for k in ("spec", "storage", "study") if k not in info]
    if missing:
        return f"{where}: no {', '.join(missing)}"
    storage = str(info["storage"])
    if storage.startswith(SQLITE) and not Path(storage.removeprefix(SQLITE)).is_file():
        return f"{storage.removeprefix(SQLITE)}: the sweep's study database is missing"
    return ""


def sweep_rows(sweep_dir: Path) -> tuple[SweepSpec, list[ConfigRow]]:
    """The sweep's spec and its table; a UserError naming the file when the directory or study is unreadable."""
    info = read_json(sweep_dir / SWEEP_JSON)
    problem = sweep_problem(sweep_dir, info)
    if problem:
        raise UserError(problem)
    try:
        spec = SweepSpec.from_dict(info["spec"])
        study = st.open_study(spec, info["storage"], info["study"])
    except Exception as exc:  # a damaged spec, Optuna's and SQLAlchemy's errors
        raise UserError(f"{sweep_dir}: cannot read the study: {one_line(exc)}") from None
    rows: dict[int, ConfigRow] = {}
    for t in study.get_trials(deepcopy=False):
        config = t.user_attrs.get(st.CONFIG_ATTR)
        if config is None:
            continue
        row = rows.setdefault(
            config, ConfigRow(config, dict(t.params or t.system_attrs.get("fixed_params", {})))
        )
        row.members[t.user_attrs[st.SEED_ATTR]] = (
            STATE_WORDS.get(t.state, str(t.state)),
            t.user_attrs.get(st.RUN_ATTR),
            t.value,
        )
    ordered = [rows[c] for c in sorted(rows)]
    scored = [r for r in ordered if r.mean is not None]
    if scored:
        pick = max if spec.direction == "maximize" else min
        pick(scored, key=lambda r: r.mean).best = True  # type: ignore[arg-type, return-value]
    return spec, ordered
