"""`surgtui ablate`: the seed's improvements measured on the user's own experiment.

An ablation is a grid sweep over arms, each a named set of overrides run once per seed: `all` (the base
experiment as written), `legacy` (every improvement and the engine's later fixes off, the model size kept)
and `no_<improvement>` (that one switched off). Its table compares every arm with `all` seed by seed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surgtui.config.load import load_experiment
from surgtui.config.variants import IMPROVEMENTS, legacy_overrides
from surgtui.runs.metrics import MAP50, MAP50_95
from surgtui.runs.rows import flatten
from surgtui.runs.store import Run
from surgtui.sweeps.spec import ARM_KEY, SweepSpec, arms_spec
from surgtui.sweeps.table import ConfigRow

ALL, LEGACY = "all", "legacy"
METRICS = (MAP50, MAP50_95)


def arm_label(arm: str) -> str:
    if arm == ALL:
        return "all improvements (the base as written)"
    if arm == LEGACY:
        return "every improvement and engine fix off (YOLOv5-Legacy's settings, the model size kept)"
    switch = IMPROVEMENTS[arm.removeprefix("no_")]
    return f"{switch.label}: " + ", ".join(f"{k} = {v!r}" for k, v in switch.off.items())


def ablation_spec(base: Path, seeds: int, overrides: list[str]) -> tuple[SweepSpec, list[str]]:
    """The ablation of `base`, and a note per improvement left out because the base already has it off."""
    values = flatten(load_experiment(base, overrides, env={}).experiment.model_dump(by_alias=True))
    arms: dict[str, dict[str, Any]] = {ALL: {}, LEGACY: legacy_overrides()}
    skipped = []
    for name, switch in IMPROVEMENTS.items():
        if all(values.get(k) == v for k, v in switch.off.items()):
            skipped.append(f"{name}: already off in {base.name}")
        else:
            arms[f"no_{name}"] = dict(switch.off)
    spec = arms_spec(base, f"{base.stem}-ablate", arms, tuple(range(seeds)), overrides)
    return spec, skipped


@dataclass
class ArmRow:
    arm: str
    runs: dict[int, str | None] = field(default_factory=dict)  # seed -> run id
    values: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> seed -> best-epoch value
    states: dict[int, str] = field(default_factory=dict)  # seed -> finished / running / failed ...

    def mean_std(self, metric: str) -> tuple[float, float] | None:
        return _mean_std(list(self.values.get(metric, {}).values()))

    def delta(self, metric: str, ref: ArmRow) -> tuple[float, float] | None:
        """This arm minus `ref`, paired by seed (only seeds both finished): mean ± std of the differences."""
        mine, theirs = self.values.get(metric, {}), ref.values.get(metric, {})
        return _mean_std([mine[s] - theirs[s] for s in mine if s in theirs])


def _mean_std(xs: list[float]) -> tuple[float, float] | None:
    if not xs:
        return None
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def ablation_rows(spec: SweepSpec, configs: list[ConfigRow], runs_dir: Path) -> list[ArmRow]:
    """One row per arm in the spec's order. A finished member's values are its metrics at the epoch of its
    best mAP50-95 (summary.json)."""
    members = {c.params.get(ARM_KEY): c.members for c in configs}
    rows = []
    for arm in spec.arms:
        row = ArmRow(arm)
        for seed, (state, run_id, _) in sorted(members.get(arm, {}).items()):
            row.runs[seed], row.states[seed] = run_id, state
            if state != "finished" or not run_id or not (runs_dir / run_id).is_dir():
                continue  # a member another machine ran, or not done: no summary here
            best = Run.load(runs_dir / run_id).summary.get("best") or {}
            for metric in METRICS:
                value = (best.get("metrics") or {}).get(metric)
                if isinstance(value, (int, float)):
                    row.values.setdefault(metric, {})[seed] = float(value)
        rows.append(row)
    return rows
