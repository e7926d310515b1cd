"""Edit experiment files the way a person would: change one value, keep every comment.

tomlkit keeps comments, blank lines and key order; the new document is validated
against the schema before a byte is written, and written by temp file + rename.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from surgtui.config.load import resolve_data, set_dotted
from surgtui.errors import ConfigError
from surgtui.fileio import write_text_atomic


def _parse(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except TOMLKitError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None


def _assign(doc: tomlkit.TOMLDocument, key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if part not in node:
            # A missing section is added as a real [table], not an inline one.
            node.add(part, tomlkit.table())
        node = node[part]
    node[parts[-1]] = value


def edit_text(text: str, changes: Mapping[str, Any], where: str) -> str:
    """Apply `{dotted.key: value}` to TOML text; raise ConfigError if the result is invalid."""
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{where}: TOML syntax error: {exc}") from None
    for key, value in changes.items():
        set_dotted({}, key, value, where)  # unknown keys fail here, with a did-you-mean
        _assign(doc, key, value)
    new_text = tomlkit.dumps(doc)
    resolve_data(tomlkit.parse(new_text).unwrap(), where, env={})
    return new_text


def set_fields(path: str | Path, changes: Mapping[str, Any]) -> str:
    """Set several fields in an experiment file and save it atomically; returns the new text."""
    path = Path(path)
    old = _parse(path)
    new_text = edit_text(tomlkit.dumps(old), changes, str(path))
    write_text_atomic(path, new_text)
    return new_text


def set_field(path: str | Path, key: str, value: Any) -> str:
    """Set one field (`optim.lr`, 0.002) in an experiment file, keeping comments and order."""
    return set_fields(path, {key: value})


def save_as(text: str, dest: str | Path, overwrite: bool = False) -> Path:
    """Write an edited experiment to a new file (validated first); the name follows the file stem."""
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise ConfigError(f"{dest}: already exists; choose another name")
    doc = tomlkit.parse(text)
    if "name" in doc:
        doc["name"] = dest.stem
    new_text = tomlkit.dumps(doc)
    resolve_data(tomlkit.parse(new_text).unwrap(), str(dest), dest.stem, env={})
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(dest, new_text)
    return dest
