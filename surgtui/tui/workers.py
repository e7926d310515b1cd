"""Background work that may fail without taking the UI down: one place reports every worker error.

Textual's default (`exit_on_error=True`) ends the whole app, with exit status 0, when
any worker raises: an unreadable file would close the UI and lose unsaved edits.
Every TUI worker goes through `background` (methods) or `guarded` (plain callables):
an exception becomes an error notification, the worker ends in the ERROR state,
and the app keeps running.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from textual.app import App
from textual.dom import DOMNode
from textual.worker import Worker

T = TypeVar("T")


_last: weakref.WeakKeyDictionary[App, tuple[str, float]] = weakref.WeakKeyDictionary()
REPEAT_S = 30.0  # a timer's worker failing every 2 s says so once, not every time


def report_error(app: App, what: str, exc: BaseException) -> None:
    """Say what failed and why; thread-safe (notify posts a message)."""
    message = f"{what}: {type(exc).__name__}: {exc}"
    said, at = _last.get(app, ("", -REPEAT_S))
    now = time.monotonic()
    if message == said and now - at < REPEAT_S:
        return
    _last[app] = (message, now)
    app.notify(
        f"{type(exc).__name__}: {exc}", title=f"{what} failed", severity="error", timeout=10, markup=False
    )  # file names and TOML errors hold brackets


def guarded(app: App, what: str, fn: Callable[[], T]) -> Callable[[], T]:
    """`fn`, reporting its exception before the worker records it."""

    @functools.wraps(fn)
    def run() -> T:
        try:
            return fn()
        except Exception as exc:
            report_error(app, what, exc)
            raise

    return run


def background(
    *, group: str, what: str, exclusive: bool = True
) -> Callable[[Callable[..., T]], Callable[..., Worker[T]]]:
    """`@work(thread=True)` for a screen or widget method, with failures reported instead of fatal."""

    def decorate(method: Callable[..., T]) -> Callable[..., Worker[T]]:
        @functools.wraps(method)
        def start(self: DOMNode, *args: Any, **kwargs: Any) -> Worker[T]:
            job = guarded(self.app, what, functools.partial(method, self, *args, **kwargs))
            return self.run_worker(
                job, name=method.__name__, group=group, exclusive=exclusive, thread=True, exit_on_error=False
            )

        return start

    return decorate
