"""A run's tags: short key=value labels in `tags.json` (a sweep's id and parameters, or the user's own)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from surgtui.errors import UserError
from surgtui.fileio import write_json_atomic
from surgtui.runs.layout import TAGS_FILE
from surgtui.runs.store import read_tags

_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def parse_tag(text: str) -> tuple[str, str]:
    """`key=value` (value may be empty); keys are letters, digits and `_.-`."""
    key, sep, value = text.partition("=")
    if not sep or not _KEY.fullmatch(key):
        raise UserError(f"tag {text!r}: expected KEY=VALUE with a KEY of letters, digits, '_', '.', '-'")
    return key, value


def set_tags(run_dir: Path, tags: Mapping[str, Any], remove: Iterable[str] = ()) -> dict[str, str]:
    """Add or replace `tags`, drop the keys in `remove`; the run's tags after."""
    current = read_tags(run_dir)
    for key in remove:
        current.pop(key, None)
    current.update({k: str(v) for k, v in tags.items()})
    write_json_atomic(run_dir / TAGS_FILE, current)
    return current
