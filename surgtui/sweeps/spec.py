"""The sweep file: one `[sweep]` table naming a base experiment, the values to try and how to pick them.

Loading checks everything a member needs, so a sweep never launches a member the experiment loader
would refuse: every key is a schema key, and every choice and both ends of every range resolve with
the base experiment and the fixed overrides. Errors are one line, `FILE: sweep.KEY: what is allowed,
got X`, like the experiment loader's. experiments/sweep-lr.toml is the example.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from surgtui.config.load import parse_assignment, read_toml, resolve_data, set_dotted
from surgtui.config.schema import Experiment
from surgtui.errors import ConfigError
from surgtui.runs.metrics import MAP50_95, METRICS

Sampler = Literal["grid", "random", "tpe"]
Direction = Literal["maximize", "minimize"]
Pruner = Literal["none", "median", "asha"]
ParamKind = Literal["choice", "uniform", "log_uniform", "int"]

SAMPLERS: tuple[str, ...] = ("grid", "random", "tpe")
DIRECTIONS: tuple[str, ...] = ("maximize", "minimize")
PRUNERS: tuple[str, ...] = ("none", "median", "asha")
RANGE_KINDS: tuple[str, ...] = ("uniform", "log_uniform", "int")
SEED_KEY = "train.seed"  # set per member from sweep.seeds; never swept or fixed
ARM_KEY = "arm"  # an ablation's one swept key: which named set of overrides (arm) a member runs

# The keys of [sweep], in the order the docs list them.
SWEEP_KEYS: tuple[str, ...] = (
    "experiment",
    "name",
    "sampler",
    "trials",
    "seeds",
    "metric",
    "direction",
    "parallel",
    "pruner",
    "pruner_warmup",
    "set",
    "space",
)
_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # the name becomes part of run and directory names
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PROBE = "\x00sweep-probe"  # a `where` no real message starts with: stripped off resolve_data's errors


@dataclass(frozen=True)
class Param:
    """One swept key: a list of choices, or a range for the random and tpe samplers."""

    key: str
    kind: ParamKind
    choices: tuple[Any, ...] = ()
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None  # int ranges only (1 unless the file gives one)

    @property
    def is_range(self) -> bool:
        return self.kind != "choice"

    def to_dict(self) -> dict[str, Any]:
        if not self.is_range:
            return {"key": self.key, "kind": self.kind, "choices": copy.deepcopy(list(self.choices))}
        out: dict[str, Any] = {"key": self.key, "kind": self.kind, "low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SweepSpec:
    """A loaded, validated sweep file."""

    path: Path  # the sweep file, absolute
    name: str
    experiment: Path  # the base experiment, absolute
    sampler: Sampler
    trials: int  # 0: every grid point (grid only)
    seeds: tuple[int, ...]
    metric: str
    direction: Direction
    parallel: int
    pruner: Pruner
    pruner_warmup: int
    fixed: dict[str, Any]  # dotted key -> value, for every member
    space: tuple[Param, ...]  # file order
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)  # ablations: arm -> dotted key -> value

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of choices, the first key varying slowest. Only for a space of lists."""
        ranges = [p.key for p in self.space if p.is_range]
        if ranges:
            raise ValueError(f"grid() needs a space of lists only; {', '.join(ranges)} are ranges")
        keys = [p.key for p in self.space]
        combos = itertools.product(*(p.choices for p in self.space))
        return [copy.deepcopy(dict(zip(keys, combo))) for combo in combos]

    def grid_size(self) -> int:
        return math.prod(len(p.choices) for p in self.space)

    def n_configs(self) -> int:
        """How many configurations the sweep tries (each runs once per seed)."""
        if self.sampler == "grid":
            size = self.grid_size()
            return min(self.trials, size) if self.trials else size
        return self.trials

    def n_members(self) -> int:
        """How many runs the sweep launches: configurations times seeds."""
        return self.n_configs() * len(self.seeds)

    def member_overrides(self, params: Mapping[str, Any], seed: int) -> list[str]:
        """The `--set KEY=VALUE` strings of one member: fixed, then params (space order), then the seed."""
        keys = [p.key for p in self.space]
        if set(params) != set(keys):
            raise ValueError(f"params must give exactly the swept keys {keys}, got {list(params)}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if self.arms:
            values = {**self.fixed, **self.arms[params[ARM_KEY]], SEED_KEY: seed}
        else:
            values = {**self.fixed, **{k: params[k] for k in keys}, SEED_KEY: seed}
        return [f"{key}={toml_literal(value)}" for key, value in values.items()]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepSpec:
        """The spec `to_dict` saved (a sweep resumes with the spec it started with, whatever the file says now)."""
        space = tuple(
            Param(
                p["key"], p["kind"], tuple(p.get("choices", ())), p.get("low"), p.get("high"), p.get("step")
            )
            for p in d["space"]
        )
        plain = {k: d[k] for k in ("name", "sampler", "trials", "metric", "direction", "parallel", "pruner")}
        return cls(
            path=Path(d["path"]),
            experiment=Path(d["experiment"]),
            seeds=tuple(d["seeds"]),
            pruner_warmup=d["pruner_warmup"],
            fixed=dict(d["fixed"]),
            space=space,
            arms=copy.deepcopy(d.get("arms", {})),
            **plain,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, bool, list, dict) for saving as JSON."""
        return {
            "path": str(self.path),
            "name": self.name,
            "experiment": str(self.experiment),
            "sampler": self.sampler,
            "trials": self.trials,
            "seeds": list(self.seeds),
            "metric": self.metric,
            "direction": self.direction,
            "parallel": self.parallel,
            "pruner": self.pruner,
            "pruner_warmup": self.pruner_warmup,
            "fixed": copy.deepcopy(self.fixed),
            "space": [p.to_dict() for p in self.space],
            "arms": copy.deepcopy(self.arms),
        }


def toml_literal(value: Any) -> str:
    """`value` as a TOML literal that `parse_value` reads back as the same typed value."""
    import tomlkit

    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # numpy integers too
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
    elif isinstance(value, Mapping):  # data.classes_map: an inline table, as --set takes it
        table = tomlkit.inline_table()
        table.update({str(k): v for k, v in value.items()})
        return table.as_string()
    return tomlkit.item(value).as_string()


def _show(value: Any) -> str:
    """A value in a message, as the experiment loader shows it: repr, with TOML's true/false."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _ref(table: str, key: str) -> str:
    """`sweep.space."optim.lr"`: a dotted experiment key is one quoted key inside the sweep table."""
    return f"sweep.{table}.{key}" if _BARE_KEY.fullmatch(key) else f'sweep.{table}."{key}"'


def _is_section(dotted: str) -> bool:
    """Whether `dotted` names a schema section (`optim`, `data.synthetic`) rather than a value."""
    model: type[BaseModel] = Experiment
    for part in dotted.split("."):
        annotation = getattr(model.model_fields.get(part), "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return True


def _flatten(table: Mapping[str, Any], where: str, name: str, prefix: str = "") -> dict[str, Any]:
    """`optim.lr = x` (TOML dotted keys: nested tables) and `"optim.lr" = x` mean the same key."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        nested = isinstance(value, Mapping) and _is_section(dotted)  # else a value: a range, a classes_map
        items = _flatten(value, where, name, f"{dotted}.") if nested else {dotted: value}
        for k, v in items.items():
            if k in out:
                raise ConfigError(f"{where}: {_ref(name, k)}: given twice")
            out[k] = v
    return out


def _check_key(key: str, value: Any, where: str) -> None:
    """A real experiment key, with the experiment loader's did-you-mean for typos."""
    if _is_section(key):
        fields = ", ".join(f"{key}.{k}" for k in _section_fields(key)[:3])
        raise ConfigError(f"{where}: '{key}' is a section; name one of its keys ({fields}, ...)")
    set_dotted({}, key, value, where)


def _section_fields(dotted: str) -> list[str]:
    model: type[BaseModel] = Experiment
    for part in dotted.split("."):
        model = model.model_fields[part].annotation
    return [f.alias or name for name, f in model.model_fields.items()]


def _read(path: Path) -> dict[str, Any]:
    return read_toml(path, "sweep file")


def _sweep_table(data: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    table = data.get("sweep")
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"{where}: not a sweep file: it needs a [sweep] table (see experiments/sweep-lr.toml)"
        )
    for key in data:
        if key != "sweep":  # experiment keys belong in the base experiment or in sweep.set
            raise ConfigError(
                f"{where}: {key}: unknown table; a sweep file holds only [sweep]: "
                'fix experiment keys with sweep.set, e.g. set = { "train.epochs" = 2 }'
            )
    for key in table:
        if key not in SWEEP_KEYS:
            close = difflib.get_close_matches(key, SWEEP_KEYS, n=1, cutoff=0.5)
            hint = f" (did you mean 'sweep.{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: sweep.{key}: unknown key{hint}; allowed: {', '.join(SWEEP_KEYS)}")
    return table


def _one_of(table: Mapping[str, Any], key: str, allowed: Sequence[str], default: str, where: str) -> Any:
    value = table.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{where}: sweep.{key}: must be one of {', '.join(allowed)}, got {_show(value)}")
    return value


def _int(table: Mapping[str, Any], key: str, default: int, minimum: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: sweep.{key}: must be an integer >= {minimum}, got {_show(value)}")
    return value


def _name(table: Mapping[str, Any], path: Path, where: str) -> str:
    if "name" not in table:
        if not _NAME.fullmatch(path.stem):
            raise ConfigError(
                f"{where}: sweep.name: the file's name {path.stem!r} is not a sweep name "
                '(letters, digits, - _ . only); give one, e.g. name = "lr"'
            )
        return path.stem
    name = table["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: sweep.name: may hold only letters, digits, '-', '_' and '.', got {_show(name)}"
        )
    return name


def _experiment_path(table: Mapping[str, Any], path: Path, where: str) -> Path:
    if "experiment" not in table:
        raise ConfigError(
            f"{where}: sweep.experiment: required: the base experiment file, relative to this file, "
            'e.g. experiment = "smoke.toml"'
        )
    value = table["experiment"]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{where}: sweep.experiment: must be the path of an experiment file, got {_show(value)}"
        )
    base = (path.parent / Path(value.strip()).expanduser()).resolve()  # an absolute path stays as given
    if not base.is_file():
        raise ConfigError(f"{where}: sweep.experiment: no such experiment file {base}")
    return base


def _seeds(table: Mapping[str, Any], where: str) -> tuple[int, ...]:
    value = table.get("seeds", [0])
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{where}: sweep.seeds: must be a non-empty list of seeds, e.g. [0, 1], got {_show(value)}"
        )
    for seed in value:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"{where}: sweep.seeds: each seed must be an integer >= 0, got {_show(seed)}")
    for i, seed in enumerate(value):
        if seed in value[:i]:
            raise ConfigError(f"{where}: sweep.seeds: each seed must be distinct, got {seed} twice")
    return tuple(value)


def _trials(table: Mapping[str, Any], sampler: str, where: str) -> int:
    if sampler != "grid" and "trials" not in table:
        raise ConfigError(
            f"{where}: sweep.trials: required with sampler = {sampler!r}: how many configurations to try"
        )
    trials = _int(table, "trials", 0, 0, where)
    if sampler != "grid" and trials < 1:  # 0 means "the whole grid", which only grid has
        raise ConfigError(
            f"{where}: sweep.trials: the {sampler} sampler needs trials >= 1 (0 is for grid: every point), got 0"
        )
    return trials


def _fixed(
    table: Mapping[str, Any], overrides: Sequence[str], where: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """sweep.set then the `--set` overrides (later wins); also where each key came from, for messages."""
    raw = table.get("set", {})
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f'{where}: sweep.set: must be a table of dotted keys, e.g. {{ "train.epochs" = 2 }}, got {_show(raw)}'
        )
    fixed: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, value in _flatten(raw, where, "set").items():
        origins[key] = f"{where}: {_ref('set', key)}"
        _check_key(key, value, origins[key])
        fixed[key] = value
    for text in overrides:
        key, value = parse_assignment(text)
        origins[key] = f"--set {text}" if text.isprintable() else f"--set {text!r}"
        _check_key(key, value, origins[key])
        fixed[key] = value
    return fixed, origins


def _space(table: Mapping[str, Any], sampler: str, where: str) -> tuple[Param, ...]:
    example = '[sweep.space] "optim.lr" = [0.001, 0.003]'
    if "space" not in table:
        raise ConfigError(f"{where}: sweep.space: required: the values to try, e.g. {example}")
    raw = table["space"]
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: sweep.space: must be a table of dotted keys, e.g. {example}; got {_show(raw)}"
        )
    items = _flatten(raw, where, "space")
    if not items:
        raise ConfigError(f"{where}: sweep.space: is empty; give at least one key to sweep, e.g. {example}")
    return tuple(
        _param(key, value, sampler, f"{where}: {_ref('space', key)}") for key, value in items.items()
    )


def _param(key: str, value: Any, sampler: str, ref: str) -> Param:
    _check_key(key, value, ref)
    if key == SEED_KEY:
        raise ConfigError(f"{ref}: seeds come from sweep.seeds (every configuration runs once per seed)")
    if isinstance(value, list):
        return _choices(key, value, ref)
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{ref}: must be a list of values, e.g. [0.001, 0.003], or a range, e.g. "
            f"{{ log_uniform = [1e-4, 1e-2] }}; got {_show(value)} (a fixed value belongs in sweep.set)"
        )
    if sampler == "grid":
        raise ConfigError(
            f'{ref}: the grid sampler takes lists of values, got a range; use sampler = "random" or "tpe"'
        )
    return _range(key, value, ref)


def _choices(key: str, values: list[Any], ref: str) -> Param:
    if not values:
        raise ConfigError(f"{ref}: an empty list; give at least one value")
    seen = [(type(v), repr(v)) for v in values]  # 1, 1.0 and true are different values
    for i, v in enumerate(values):
        if seen[i] in seen[:i]:
            raise ConfigError(f"{ref}: each value must be distinct, got {_show(v)} twice")
    return Param(key, "choice", choices=tuple(values))


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _range(key: str, table: Mapping[str, Any], ref: str) -> Param:
    allowed = (*RANGE_KINDS, "step")
    for k in table:
        if k not in allowed:
            close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{ref}: unknown key '{k}' in a range{hint}; allowed: {', '.join(allowed)}")
    kinds = [k for k in table if k in RANGE_KINDS]
    if len(kinds) != 1:
        raise ConfigError(
            f"{ref}: a range takes exactly one of {', '.join(RANGE_KINDS)}, "
            f"e.g. {{ log_uniform = [1e-4, 1e-2] }}; got {_show(dict(table))}"
        )
    kind = kinds[0]
    ends = table[kind]
    if not (isinstance(ends, list) and len(ends) == 2 and all(_is_number(x) for x in ends)):
        raise ConfigError(f"{ref}: {kind} takes [low, high], two numbers, got {_show(ends)}")
    if kind == "int":
        return _int_range(key, ends, table.get("step", 1), ref)
    if "step" in table:
        raise ConfigError(f"{ref}: step goes only with an int range, not {kind}")
    low, high = float(ends[0]), float(ends[1])  # Optuna's float ranges give floats
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"{ref}: {kind} needs finite ends with low < high, got [{low!r}, {high!r}]")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"{ref}: log_uniform needs low > 0 (a log scale), got {low!r}")
    return Param(key, kind, low=low, high=high)


def _int_range(key: str, ends: list[Any], step: Any, ref: str) -> Param:
    low, high = ends
    if not all(isinstance(x, int) for x in ends):
        raise ConfigError(f"{ref}: int takes [low, high], two integers, got {_show(ends)}")
    if low >= high:
        raise ConfigError(f"{ref}: int needs low < high, got [{low}, {high}]")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ConfigError(f"{ref}: step must be an integer >= 1, got {_show(step)}")
    if (high - low) % step:  # else the sampler never reaches high
        raise ConfigError(f"{ref}: step {step} must divide high - low ({high - low}), got [{low}, {high}]")
    return Param(key, "int", low=low, high=high, step=step)


def _check_disjoint(fixed: Mapping[str, Any], origins: Mapping[str, str], space: Sequence[Param]) -> None:
    swept = {p.key for p in space}
    for key in fixed:
        if key == SEED_KEY:
            raise ConfigError(
                f"{origins[key]}: seeds come from sweep.seeds (every configuration runs once per seed)"
            )
        if key in swept:
            raise ConfigError(
                f"{origins[key]}: {key} is also swept in sweep.space; a key is either fixed or swept"
            )


def _refusal(base_data: Mapping[str, Any], base: Path, values: Mapping[str, Any]) -> str | None:
    """Why the base experiment with `values` set does not resolve (None when it does)."""
    data = copy.deepcopy(dict(base_data))
    try:
        for key, value in values.items():
            set_dotted(data, key, value, _PROBE)
        resolve_data(data, _PROBE, base.stem, (), {})  # env={}: the sweep file alone decides
    except ConfigError as exc:
        return exc.message.removeprefix(f"{_PROBE}: ")
    return None


def _refused(origin: str, key: str, label: str, detail: str) -> ConfigError:
    # `optim.lr: must be <= 10` about the key itself reads `... 20.0 is refused: must be <= 10`.
    return ConfigError(f"{origin}: {label} is refused: {detail.removeprefix(f'{key}: ')}")


def _fixed_refused(
    base_data: Mapping[str, Any],
    base: Path,
    where: str,
    fixed: Mapping[str, Any],
    origins: Mapping[str, str],
    detail: str,
) -> ConfigError:
    """Name the fixed key to blame: the one the message is about, else one refused the same way alone."""
    culprit = next((k for k in fixed if detail.startswith(f"{k}: ")), None)
    culprit = culprit or next((k for k in fixed if _refusal(base_data, base, {k: fixed[k]}) == detail), None)
    if culprit is None:
        return ConfigError(f"{where}: sweep.set: refused together: {detail}")
    return _refused(origins[culprit], culprit, _show(fixed[culprit]), detail)


def _check_values(
    base: Path, where: str, fixed: Mapping[str, Any], origins: Mapping[str, str], space: Sequence[Param]
) -> None:
    """The base experiment must load with the fixed overrides, and with each choice and range end."""
    base_data = read_toml(base)
    resolve_data(base_data, str(base), base.stem, (), {})  # its own errors name the base file
    detail = _refusal(base_data, base, fixed)  # together: data.train alone is refused, with data.val not
    if detail:
        raise _fixed_refused(base_data, base, where, fixed, origins, detail)
    for p in space:
        probes = [(_show(v), v) for v in p.choices] or [
            (f"low end {p.low!r}", p.low),
            (f"high end {p.high!r}", p.high),
        ]
        for label, value in probes:
            detail = _refusal(base_data, base, {**fixed, p.key: value})
            if detail:
                raise _refused(f"{where}: {_ref('space', p.key)}", p.key, label, detail)


def is_sweep_file(path: str | Path) -> bool:
    """A TOML file with a [sweep] table (an unreadable one is not: the experiment loader reports it)."""
    try:
        return isinstance(read_toml(Path(path)).get("sweep"), dict)
    except ConfigError:
        return False


def load_sweep(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Load and validate a sweep file; `overrides` are `--set KEY=VALUE` strings merged into sweep.set."""
    path = Path(path)
    where = str(path)
    table = _sweep_table(_read(path), where)
    name = _name(table, path, where)
    base = _experiment_path(table, path, where)
    sampler = _one_of(table, "sampler", SAMPLERS, "grid", where)
    trials = _trials(table, sampler, where)
    seeds = _seeds(table, where)
    metric = _one_of(table, "metric", METRICS, MAP50_95, where)
    direction = _one_of(table, "direction", DIRECTIONS, "maximize", where)
    parallel = _int(table, "parallel", 1, 1, where)
    pruner = _one_of(table, "pruner", PRUNERS, "none", where)
    pruner_warmup = _int(table, "pruner_warmup", 1, 0, where)
    fixed, origins = _fixed(table, overrides, where)
    space = _space(table, sampler, where)
    _check_disjoint(fixed, origins, space)
    _check_values(base, where, fixed, origins, space)
    return SweepSpec(
        path=path.resolve(),
        name=name,
        experiment=base,
        sampler=sampler,
        trials=trials,
        seeds=seeds,
        metric=metric,
        direction=direction,
        parallel=parallel,
        pruner=pruner,
        pruner_warmup=pruner_warmup,
        fixed=fixed,
        space=space,
    )


def arms_spec(
    base: Path,
    name: str,
    arms: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
) -> SweepSpec:
    """A grid over named sets of overrides (an ablation's arms), each run once per seed, ranked by mAP50-95.

    Checked like a sweep file: the base with `overrides` and with each arm must resolve."""
    where = str(base)
    fixed, origins = _fixed({}, overrides, where)
    _check_values(base, where, fixed, origins, ())
    base_data = read_toml(base)
    for arm, values in arms.items():
        detail = _refusal(base_data, base, {**fixed, **values})
        if detail:
            raise ConfigError(f"{where}: arm {arm}: {detail}")
    return SweepSpec(
        path=base.resolve(),
        name=name,
        experiment=base.resolve(),
        sampler="grid",
        trials=0,
        seeds=tuple(seeds),
        metric=MAP50_95,
        direction="maximize",
        parallel=1,
        pruner="none",
        pruner_warmup=0,
        fixed=fixed,
        space=(Param(ARM_KEY, "choice", tuple(arms)),),
        arms={arm: dict(values) for arm, values in arms.items()},
    )
