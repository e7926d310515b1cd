"""Errors a user can act on (one line, no traceback) and the exit codes of every surgtui process.

The CLI, the engine and `predict`/`eval` all exit with `ExitCode`; docs/architecture.md lists them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # finished
    FAILED = 1  # failed or crashed
    USAGE = 2  # bad input: a missing file, an invalid key, an unknown run id
    STOPPED = 130  # Ctrl-C or `surgtui stop` (128 + SIGINT, as shells report it)


def exit_code_for(status: str) -> ExitCode:
    """The exit code of a run that ended with `status` (finished, stopped, failed, crashed)."""
    return {"finished": ExitCode.OK, "stopped": ExitCode.STOPPED}.get(status, ExitCode.FAILED)


class UserError(Exception):
    """Bad input: a missing file, an invalid key, an unknown run id."""

    exit_code = ExitCode.USAGE

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
