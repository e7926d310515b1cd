"""Errors a user can act on: printed as one line, exit code 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a missing file, an invalid key, an unknown run id."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(UserError):
    """An experiment file (or override) that does not fit the schema."""


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`: how an unexpected error is reported in one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
