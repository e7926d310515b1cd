"""Load an experiment file, apply the variant, env and `--set` overrides, resolve.

Resolution order, later wins: schema defaults < variant preset < the file <
seed environment variables < `--set` overrides.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from surgtui.config import toml as tomllib
from surgtui.config.schema import Experiment
from surgtui.config.variants import DEFAULT_VARIANT, VARIANTS
from surgtui.errors import ConfigError

# The seed's environment variables, honoured as overrides and announced.
ENV_OVERRIDES: dict[str, str] = {
    "MODEL_VARIANT": "variant",
    "LEARNING_RATE": "optim.lr",
    "BATCH_SIZE": "train.batch_size",
    "NUM_EPOCHS": "train.epochs",
}


@dataclass
class Resolved:
    """A fully resolved experiment and where its values came from."""

    experiment: Experiment
    source: Path | None
    notes: list[str] = field(default_factory=list)

    def to_toml(self) -> str:
        return experiment_to_toml(self.experiment, self.notes)


def parse_value(raw: str) -> Any:
    """Type a command-line value the way TOML would: `0.002`, `true`, `[1, 2]`; else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_assignment(text: str, origin: str = "--set") -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{origin}: expected section.key=value, got {text!r}")
    return key.strip(), parse_value(raw.strip())


def _fields_of(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f for name, f in model.model_fields.items()}


def _submodel(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    f = _fields_of(model).get(key)
    ann = getattr(f, "annotation", None)
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def all_keys(model: type[BaseModel] = Experiment, prefix: str = "") -> list[str]:
    """Every dotted key of the schema: `optim.lr`, `data.synthetic.width`, ..."""
    out = []
    for key in _fields_of(model):
        sub = _submodel(model, key)
        out.extend(all_keys(sub, f"{prefix}{key}.") if sub else [f"{prefix}{key}"])
    return out


def check_keys(
    data: Mapping[str, Any], where: str, model: type[BaseModel] = Experiment, prefix: str = ""
) -> None:
    """Unknown keys get a did-you-mean; pydantic's own message lacks one."""
    allowed = _fields_of(model)
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
            elsewhere = [k for k in all_keys() if k.rsplit(".", 1)[-1] == key]
            if elsewhere:  # the right key in the wrong section: `val_every` under [optim]
                hint = f" (did you mean '{elsewhere[0]}'?)"
            else:
                hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            names = ", ".join(allowed)
            raise ConfigError(f"{where}: unknown key '{dotted}'{hint}; allowed here: {names}")
        sub = _submodel(model, key)
        if sub is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{where}: '{dotted}' must be a table [{dotted}], got {type(value).__name__}"
                )
            check_keys(value, where, sub, prefix=f"{dotted}.")


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def set_dotted(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    model: type[BaseModel] = Experiment
    node = data
    for i, part in enumerate(parts[:-1]):
        sub = _submodel(model, part)
        if sub is None:
            check_keys({part: {}}, where, model, prefix=".".join(parts[:i]) + "." if i else "")
            raise ConfigError(f"{where}: '{'.'.join(parts[: i + 1])}' is a value, not a section")
        model = sub
        node = node.setdefault(part, {})
    check_keys({parts[-1]: value}, where, model, prefix=".".join(parts[:-1]) + "." if len(parts) > 1 else "")
    node[parts[-1]] = value


def _describe(value: Any) -> str:
    return repr(value) if not isinstance(value, bool) else str(value).lower()


_TYPE_WORDS = {
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
}
_BOUND_WORDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def format_validation_error(
    err: ValidationError, where: str, origins: Mapping[str, str] | None = None
) -> str:
    """One line for the first problem: file (or override), dotted key, what is allowed, what was given."""
    e = err.errors(include_url=False)[0]
    parts = [str(p) for p in e["loc"] if not str(p).startswith(("function-", "union["))]
    # A union (pretrained: bool | str) reports one error per member; name the field once.
    if len(parts) > 1 and parts[-1] in ("bool", "str"):
        parts = parts[:-1]
    key = ".".join("class" if p == "class_" else p for p in parts)
    where = (origins or {}).get(key, where)
    ctx = e.get("ctx") or {}
    kind = e["type"]
    if key == "model.pretrained" and kind != "value_error":
        msg = "must be true, false or a path to a weights file"
    elif kind == "value_error":
        msg = e["msg"].removeprefix("Value error, ")
    elif kind == "extra_forbidden":  # inside a table that is not a schema section (data.train)
        msg = "unknown key"
    elif kind == "literal_error":
        msg = f"must be one of {ctx.get('expected', '')}".replace("'", "")
    elif kind in _BOUND_WORDS:
        op = _BOUND_WORDS[kind]
        bound = next(iter(ctx.values()), "")
        msg = f"must be {op} {bound}"
    elif kind in _TYPE_WORDS:
        msg = _TYPE_WORDS[kind]
    else:
        msg = e["msg"]
    if kind != "value_error":
        msg += f", got {_describe(e.get('input'))}"
    return f"{where}: {key}: {msg}"


def read_toml(path: Path, what: str = "experiment file") -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_toml(text, str(path))


def parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: TOML syntax error: {exc}") from None


def resolve_data(
    data: Mapping[str, Any],
    where: str,
    default_name: str = "",
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> tuple[Experiment, list[str]]:
    """Validate a parsed file plus overrides; return the experiment and notes on what overrode what."""
    notes: list[str] = []
    origins: dict[str, str] = {}
    check_keys(data, where)
    merged: dict[str, Any] = copy.deepcopy(dict(data))
    for var, key in ENV_OVERRIDES.items():
        if env and env.get(var, "").strip():
            set_dotted(merged, key, parse_value(env[var].strip()), f"environment variable {var}")
            notes.append(f"{var}={env[var].strip()} overrides {key}")
            origins[key] = f"environment variable {var}"
    for text in overrides:
        key, value = parse_assignment(text)
        shown = text if text.isprintable() else repr(text)
        set_dotted(merged, key, value, f"--set {shown}")
        notes.append(f"--set {key}={_describe(value) if not isinstance(value, str) else value}")
        origins[key] = f"--set {shown}"
    variant = merged.get("variant", DEFAULT_VARIANT)
    if not isinstance(variant, str) or variant not in VARIANTS:
        where = origins.get("variant", where)
        raise ConfigError(f"{where}: variant: unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    full = deep_merge(VARIANTS[variant], merged)
    full.setdefault("name", default_name)
    full["variant"] = variant
    try:
        exp = Experiment.model_validate(full)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where, origins)) from None
    return exp, notes


def load_experiment(
    path: str | Path,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """Load and fully resolve one experiment file. `env` defaults to os.environ."""
    path = Path(path)
    data = read_toml(path)
    exp, notes = resolve_data(data, str(path), path.stem, overrides, os.environ if env is None else env)
    return Resolved(exp, path, notes)


def load_frozen(path: str | Path) -> Experiment:
    """Load a run's frozen config.toml: no env or overrides, everything already resolved."""
    path = Path(path)
    exp, _ = resolve_data(read_toml(path), str(path), path.parent.name, (), {})
    return exp


def experiment_to_toml(exp: Experiment, notes: Sequence[str] = ()) -> str:
    """The resolved experiment as TOML; loading it back gives the same experiment."""
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("surgtui resolved experiment: every key, as the run used it"))
    for note in notes:
        doc.add(tomlkit.comment(f"override: {note}"))
    data = exp.to_dict()
    for key, value in data.items():
        if not isinstance(value, dict):
            doc[key] = value
    for key, value in data.items():
        if isinstance(value, dict):
            table = tomlkit.table()
            for k, v in value.items():
                if not isinstance(v, dict):
                    table[k] = v
            for k, v in value.items():
                if isinstance(v, dict):
                    table[k] = v
            doc[key] = table
    return tomlkit.dumps(doc)
