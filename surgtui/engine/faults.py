"""Fault injection for the fault suite (tests/test_faults.py): kill or fill the disk at a named phase.

`SURGTUI_FAULT="PHASE[#N]=ACTION[,...]"`: at the N-th time (default 1st) the engine passes
PHASE, do ACTION: `kill` (SIGKILL itself, as the OOM killer or `kill -9` would), `stop`
(SIGINT itself, as `surgtui stop` does) or `enospc` (raise the OSError a full disk raises). Phases: `step` (an optimizer step done,
not yet logged), `val` (the model evaluated, no `val` event yet), `checkpoint:best`,
`checkpoint:last` (the file written to its temp name, not yet renamed), `checkpoint:between`
(best.pt in place, last.pt not yet written). Unset, `hit` is one dict lookup.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "SURGTUI_FAULT"
ACTIONS = ("kill", "stop", "enospc")


def _parse(spec: str) -> dict[str, tuple[int, str]]:
    plan: dict[str, tuple[int, str]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        where, _, action = item.partition("=")
        phase, _, nth = where.partition("#")
        if action not in ACTIONS:
            raise ValueError(f"{ENV}: {item!r}: the action must be one of {', '.join(ACTIONS)}")
        plan[phase] = (int(nth or 1), action)
    return plan


_plan = _parse(os.environ.get(ENV, ""))
_seen: dict[str, int] = {}


def hit(phase: str) -> None:
    """Mark that the engine is at `phase`; acts only when SURGTUI_FAULT names it."""
    if phase not in _plan:
        return
    _seen[phase] = _seen.get(phase, 0) + 1
    nth, action = _plan[phase]
    if _seen[phase] != nth:
        return
    if action != "enospc":
        os.kill(os.getpid(), signal.SIGKILL if action == "kill" else signal.SIGINT)
        return
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
