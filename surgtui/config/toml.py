"""TOML reading: the standard library's tomllib, or its backport on Python 3.10."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOMLDecodeError = tomllib.TOMLDecodeError
loads = tomllib.loads
load = tomllib.load

__all__ = ["TOMLDecodeError", "load", "loads"]
