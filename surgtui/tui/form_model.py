"""The experiment editor's state, without any widgets: fields as data, edits, per-field errors.

Every edit is checked on its own against the schema (`edit_text` on the file's
text), so an error is shown at the field that caused it and nothing invalid is
ever written. Saving writes only the edited keys (`set_fields`): comments, key
order and keys the file never set stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel

from surgtui.config.device import DEVICE_CHOICES
from surgtui.config.edit import edit_text
from surgtui.config.load import parse_toml, parse_value, resolve_data
from surgtui.config.schema import Experiment
from surgtui.config.variants import VARIANTS
from surgtui.errors import ConfigError

Kind = Literal["select", "switch", "number", "text", "value"]


def _choices(key: str) -> tuple[str, ...]:
    """The allowed values of a Literal field, straight from the schema."""
    model: type[BaseModel] = Experiment
    *sections, name = key.split(".")
    for section in sections:
        model = model.model_fields[section].annotation  # type: ignore[assignment]
    field = next(f for n, f in model.model_fields.items() if (f.alias or n) == name)
    return tuple(get_args(field.annotation))


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    kind: Kind
    hint: str = ""

    @property
    def choices(self) -> tuple[str, ...]:
        if self.key == "variant":
            return tuple(VARIANTS)
        return _choices(self.key) if self.kind == "select" else ()


SECTIONS: tuple[tuple[str, tuple[FieldSpec, ...]], ...] = (
    (
        "model",
        (
            FieldSpec("variant", "variant", "select"),
            FieldSpec("model.backbone", "backbone", "select"),
            FieldSpec("model.pretrained", "pretrained", "value", "true, false or a weights path"),
            FieldSpec("model.img_size", "image size", "number", "multiple of 32"),
        ),
    ),
    (
        "loss",
        (
            FieldSpec("loss.coord", "coord weight", "number"),
            FieldSpec("loss.conf", "conf weight", "number"),
            FieldSpec("loss.class", "class weight", "number"),
            FieldSpec("loss.focal", "focal loss", "switch"),
            FieldSpec("loss.focal_gamma", "focal gamma", "number", "0-10"),
            FieldSpec("loss.focal_alpha", "focal alpha", "number", "0-1"),
            FieldSpec("loss.label_smoothing", "label smoothing", "number", "0 <= e < 1"),
            FieldSpec("loss.assignment", "assignment", "select"),
        ),
    ),
    (
        "optimizer",
        (
            FieldSpec("optim.optimizer", "optimizer", "select"),
            FieldSpec("optim.lr", "lr", "number"),
            FieldSpec("optim.backbone_lr_mult", "backbone lr x", "number"),
            FieldSpec("optim.weight_decay", "weight decay", "number"),
            FieldSpec("optim.grad_clip", "grad clip", "number", "0 = off"),
        ),
    ),
    (
        "schedule",
        (
            FieldSpec("schedule.kind", "schedule", "select"),
            FieldSpec("schedule.warmup_frac", "warmup frac", "number", "0 <= f < 1"),
        ),
    ),
    (
        "training",
        (
            FieldSpec("train.epochs", "epochs", "number"),
            FieldSpec("train.batch_size", "batch size", "number"),
            FieldSpec("train.device", "device", "text", DEVICE_CHOICES),
            FieldSpec("train.devices", "devices", "number", "> 1 uses torchrun"),
        ),
    ),
    (
        "data and logging",
        (
            FieldSpec("data.source", "data source", "text", "synthetic or a data set path"),
            FieldSpec("logging.wandb", "W&B", "switch"),
        ),
    ),
)
FIELDS: tuple[FieldSpec, ...] = tuple(f for _, fields in SECTIONS for f in fields)
FIELD_BY_KEY = {f.key: f for f in FIELDS}


def show(value: Any) -> str | bool:
    """A value as the form shows it: TOML spelling for numbers and booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)


def parse(spec: FieldSpec, raw: str | bool) -> Any:
    """What the user entered, typed the way TOML would type it."""
    if spec.kind in ("switch", "select") or isinstance(raw, bool):
        return raw
    if spec.kind == "text":
        return raw.strip()
    if not raw.strip():
        raise ConfigError("a value is required")
    return parse_value(raw.strip())


def _flatten(exp: Experiment) -> dict[str, Any]:
    data = exp.to_dict()
    out = {}
    for spec in FIELDS:
        node: Any = data
        for part in spec.key.split("."):
            node = node[part]
        out[spec.key] = node
    return out


class ExperimentDraft:
    """One experiment file being edited: what it holds, what was changed, what is wrong."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.text = ""
        self.file_error = ""
        self.base: dict[str, Any] = {}  # the file's values, resolved
        self.effective: dict[str, Any] = {}  # what unedited fields show (a new variant changes them)
        self.raw: dict[str, str | bool] = {}  # as typed, for every field typed into (edit or not)
        self.edits: dict[str, Any] = {}  # parsed values that differ from the file's
        self.errors: dict[str, str] = {}
        self.reload()

    @property
    def dirty(self) -> bool:
        return bool(self.edits or self.errors)

    def reload(self) -> None:
        """Read the file again; pending edits are re-checked against it."""
        try:
            self.text = self.path.read_text(encoding="utf-8")
            self.base = self.effective = self._resolve(self.text)
            self.file_error = ""
        except (OSError, ConfigError) as exc:
            self.file_error = str(exc)
        pending, self.edits, self.errors = self.raw, {}, {}
        self.raw = {}
        for key, raw in pending.items():
            self.set(key, raw)

    def discard(self) -> None:
        self.raw = {}
        self.reload()

    def settle(self, key: str) -> None:
        """The user left the field: text that is no edit goes back to showing the effective value."""
        if key not in self.edits and key not in self.errors:
            self.raw.pop(key, None)

    def edited(self, key: str) -> bool:
        """Changed from what the file (or the chosen preset) says, or invalid: marked `*`."""
        return key in self.edits or key in self.errors

    def value(self, key: str) -> str | bool:
        """What the field shows now: the typed text if edited, else the effective value."""
        if key in self.raw:
            return self.raw[key]
        value = self.effective.get(key)
        return bool(value) if FIELD_BY_KEY[key].kind == "switch" else show(value)

    def set(self, key: str, raw: str | bool) -> None:
        """Record one field's new input and check it on its own."""
        spec = FIELD_BY_KEY[key]
        self.raw[key] = raw
        self.errors.pop(key, None)
        self.edits.pop(key, None)
        try:
            value = parse(spec, raw)
            if self.file_error:
                raise ConfigError(self.file_error)
            edit_text(self.text, {key: value}, str(self.path))
        except ConfigError as exc:
            self.errors[key] = _short(str(exc), str(self.path), key)
            return
        # The text stays as typed even when it parses to the file's value (`10` for `10.0`): a field
        # rewritten while the user types moves their cursor and garbles the rest of the input.
        if value != (self.base if key == "variant" else self.effective).get(key):
            self.edits[key] = value
        if key == "variant":
            self._follow_variant()

    def new_text(self) -> str:
        """The file's text with every edit applied (validated as a whole)."""
        if self.errors:
            key, msg = next(iter(self.errors.items()))
            raise ConfigError(f"{FIELD_BY_KEY[key].label}: {msg}")
        return edit_text(self.text, self.edits, str(self.path))

    def _follow_variant(self) -> None:
        """A new preset changes the effective value of every field the file does not set."""
        variant = self.edits.get("variant")
        text = edit_text(self.text, {"variant": variant}, str(self.path)) if variant else self.text
        self.effective = self._resolve(text)
        for key in [k for k in self.edits if k != "variant" and self.edits[k] == self.effective[k]]:
            del self.edits[key]  # now the preset's value: no longer an edit (the text stays as typed)

    def _resolve(self, text: str) -> dict[str, Any]:
        data = parse_toml(text, str(self.path))
        exp, _ = resolve_data(data, str(self.path), self.path.stem, env={})
        return _flatten(exp)


def _short(message: str, where: str, key: str) -> str:
    """`experiments/x.toml: optim.lr: must be > 0, got -1` -> `must be > 0, got -1`."""
    for prefix in (f"{where}: ", f"{key}: "):
        message = message.removeprefix(prefix)
    return message
