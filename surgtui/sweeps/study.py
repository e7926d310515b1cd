"""The sweep's Optuna study: one Optuna trial per member run (a configuration and a seed).

Optuna samples configurations (grid, random or TPE) and judges running members with its median or
successive-halving (ASHA) pruner from the `val` events they write. Seeds of one configuration are trials
with the same parameters (enqueued), so the samplers see every seed's result and the pruners compare
each member's curve with the others'. Any SQLAlchemy URL Optuna accepts can hold the study.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

import optuna

from surgtui.errors import UserError
from surgtui.sweeps.spec import Param, SweepSpec

CONFIG_ATTR, SEED_ATTR, RUN_ATTR = "config", "seed", "run"
OWNER_ATTR = "scheduler"  # trial attr: the sweep directory (host/id) whose scheduler runs the member
SPEC_ATTR = "spec"  # study attr: what a scheduler joining the study must agree with
# What two schedulers sharing one study must agree on (paths, names and parallelism are per machine).
SHARED_SPEC_KEYS = (
    "sampler",
    "trials",
    "seeds",
    "metric",
    "direction",
    "pruner",
    "pruner_warmup",
    "fixed",
    "space",
    "arms",
)

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the scheduler writes its own log


def distributions(spec: SweepSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    return {p.key: _distribution(p) for p in spec.space}


def _distribution(p: Param) -> optuna.distributions.BaseDistribution:
    if p.kind == "choice":
        return optuna.distributions.CategoricalDistribution(list(p.choices))
    if p.kind == "int":
        return optuna.distributions.IntDistribution(int(p.low), int(p.high), step=p.step or 1)  # type: ignore[arg-type]
    return optuna.distributions.FloatDistribution(float(p.low), float(p.high), log=p.kind == "log_uniform")  # type: ignore[arg-type]


def _sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=spec.seeds[0])
    return optuna.samplers.RandomSampler(seed=spec.seeds[0])  # grid: every member is enqueued


def _pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=len(spec.seeds), n_warmup_steps=spec.pruner_warmup
        )
    if spec.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, spec.pruner_warmup))
    return optuna.pruners.NopPruner()


def open_study(spec: SweepSpec, storage: str, name: str, create: bool = False) -> optuna.Study:
    direction = "maximize" if spec.direction == "maximize" else "minimize"
    kwargs = dict(storage=storage, study_name=name, sampler=_sampler(spec), pruner=_pruner(spec))
    if create:
        return optuna.create_study(direction=direction, **kwargs)
    return optuna.load_study(**kwargs)


def create_or_join(spec: SweepSpec, storage: str, name: str, join: bool) -> optuna.Study:
    """Create the study (a grid enqueues every member now, so schedulers sharing it only pop them);
    with `join`, an existing study of that name is joined when its spec agrees with ours."""
    wanted = {k: v for k, v in spec.to_dict().items() if k in SHARED_SPEC_KEYS}
    if join and name in optuna.get_all_study_names(storage):
        return _join(spec, storage, name, wanted)
    try:
        study = open_study(spec, storage, name, create=True)
    except optuna.exceptions.DuplicatedStudyError:
        if not join:
            raise
        return _join(spec, storage, name, wanted)  # another machine made it a moment ago
    study.set_user_attr(SPEC_ATTR, wanted)
    if spec.sampler == "grid":
        for config, params in enumerate(spec.grid()[: spec.n_configs()]):
            enqueue_config(study, spec, config, params)
    return study


def _join(spec: SweepSpec, storage: str, name: str, wanted: dict[str, Any]) -> optuna.Study:
    study = open_study(spec, storage, name)
    for _ in range(10):  # a study made a moment ago may not have its spec yet
        theirs = study.user_attrs.get(SPEC_ATTR, {})
        if theirs:
            break
        time.sleep(0.5)
    differ = [k for k in SHARED_SPEC_KEYS if theirs.get(k) != wanted.get(k)]
    if differ:
        raise UserError(
            f"--study {name}: the shared study was started with other values of {', '.join(differ)}; "
            "join it with the same sweep file and --set"
        )
    return study


def enqueue_config(study: optuna.Study, spec: SweepSpec, config: int, params: Mapping[str, Any]) -> None:
    """One trial per seed of configuration `config`, with these parameters."""
    for seed in spec.seeds:
        study.enqueue_trial(dict(params), user_attrs={CONFIG_ATTR: config, SEED_ATTR: seed})


def next_trial(study: optuna.Study, spec: SweepSpec, configs_made: int) -> optuna.Trial | None:
    """The next member to launch: an enqueued seed, else a new configuration (its other seeds enqueued);
    None when every configuration has been made."""
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    if not waiting:
        if configs_made >= spec.n_configs():
            return None
        if spec.sampler == "grid":
            enqueue_config(study, spec, configs_made, spec.grid()[configs_made])
        else:  # ask Optuna for a configuration: its first seed, then enqueue the rest with its parameters
            trial = study.ask(distributions(spec))
            config = trial.number  # unique even when schedulers on several machines ask at once
            trial.set_user_attr(CONFIG_ATTR, config)
            trial.set_user_attr(SEED_ATTR, spec.seeds[0])
            for seed in spec.seeds[1:]:
                study.enqueue_trial(trial.params, user_attrs={CONFIG_ATTR: config, SEED_ATTR: seed})
            return trial
    return study.ask(distributions(spec))


def configs_made(study: optuna.Study) -> int:
    """How many configurations have trials (asked or enqueued)."""
    configs = {t.user_attrs.get(CONFIG_ATTR) for t in study.get_trials(deepcopy=False)}
    return len(configs - {None})


def median_at(study: optuna.Study, step: int, exclude: int) -> float | None:
    """The median of the other trials' reported values at `step` (what the median pruner compares with)."""
    values = [
        t.intermediate_values[step]
        for t in study.get_trials(deepcopy=False)
        if t.number != exclude and step in t.intermediate_values
    ]
    return statistics.median(values) if values else None
