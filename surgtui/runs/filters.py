"""`runs --where KEY OP VALUE` and `runs --columns KEY,...`: what a key of a run means, and comparing it.

A key is a column of the runs table (`map50_95`, `status`, `lr`, `note`, ...), `tags.NAME`, or an
experiment key (`optim.lr`, `loss.focal`) read from the run's frozen config.toml.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from surgtui.errors import UserError
from surgtui.runs.rows import COLUMN_KEYS, Column, column, flat_config
from surgtui.runs.store import Run

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
}
_WHERE = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*(>=|<=|!=|>|<|==|=)\s*(.*?)\s*$")
TAG_PREFIX = "tags."


def check_key(key: str, origin: str) -> None:
    """A key the runs table can show: a column, `tags.NAME`, or an experiment key."""
    if key in COLUMN_KEYS or (key.startswith(TAG_PREFIX) and len(key) > len(TAG_PREFIX)):
        return
    from surgtui.config.load import all_keys  # pydantic: only for a key that is no column

    if key not in all_keys():
        raise UserError(
            f"{origin}: unknown key {key!r}; a column ({', '.join(COLUMN_KEYS)}), tags.NAME, "
            "or an experiment key such as optim.lr"
        )


def value_of(run: Run, key: str) -> Any:
    if key in COLUMN_KEYS:
        return column(key).get(run)
    if key.startswith(TAG_PREFIX):
        return run.tags.get(key.removeprefix(TAG_PREFIX))
    return flat_config(run.path).get(key)


@dataclass(frozen=True)
class Where:
    key: str
    op: str
    value: str

    def matches(self, run: Run) -> bool:
        have = value_of(run, self.key)
        if have is None:
            return self.op == "!="  # a run without the value is never equal, greater or smaller
        want: Any = self.value
        number = _number(have)
        if number is not None and (wanted := _number(self.value)) is not None:
            have, want = number, wanted
        elif self.op not in ("=", "!="):
            return False  # ordering compares numbers only
        else:
            have = _text(have)
            want = want.lower() if isinstance(have, str) and have in ("true", "false") else want
        return OPS[self.op](have, want)


def parse_where(text: str) -> Where:
    m = _WHERE.fullmatch(text)
    if not m:
        raise UserError(
            f"--where {text!r}: expected KEY OP VALUE with OP one of {', '.join(OPS)} "
            "(e.g. 'map50_95>0.3', 'status=finished', 'optim.lr<=0.001')"
        )
    key, op, value = m.groups()
    check_key(key, f"--where {text!r}")
    return Where(key, "=" if op == "==" else op, value)


def extra_columns(spec: str) -> list[Column]:
    """`--columns a,b`: a column per key (table columns already shown are skipped)."""
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    for key in keys:
        check_key(key, f"--columns {key}")
    return [
        Column(
            key, key, lambda r, k=key: value_of(r, k), _show, isinstance(key, str) and key not in ("note",)
        )
        for key in dict.fromkeys(keys)
        if key not in COLUMN_KEYS
    ]


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        x = float(str(v))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _text(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _show(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
