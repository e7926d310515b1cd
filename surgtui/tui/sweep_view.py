"""What the sweeps screen shows, read off the UI thread: the sweeps of a runs dir and, for the
selected one, its table (surgtui.sweeps.table) and its members' validation curves.

Pure and synchronous (no Textual): the screen calls `SweepsReader.read` in a thread worker.
surgtui.sweeps is imported inside the methods: its table pulls in Optuna (about 0.6 s), which
the UI must not wait for when it starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surgtui.errors import UserError, one_line
from surgtui.runs.events import EventTail, EventVersionError
from surgtui.runs.layout import EVENTS_FILE
from surgtui.runs.summary import rewind_point
from surgtui.tui.follower import Curves

if TYPE_CHECKING:
    from surgtui.sweeps.store import Sweep
    from surgtui.sweeps.table import ConfigRow

ENDED = ("finished", "pruned", "failed")  # member states that count as done


@dataclass(frozen=True)
class SweepItem:
    """One line of the sweep list; `error` says why the sweep cannot be read (then the rest is empty)."""

    id: str
    path: Path
    state: str
    done: int = 0
    total: int = 0
    metric: str = ""
    best: float | None = None
    error: str = ""


@dataclass(frozen=True)
class SweepDetail:
    """The selected sweep: its table and one validation curve per member (`c<config> s<seed>`)."""

    item: SweepItem
    keys: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    n_configs: int = 0
    direction: str = ""
    rows: tuple[ConfigRow, ...] = ()
    curves: Curves = field(default_factory=dict)

    def run_dir(self, run_id: str) -> Path:
        """A member's run directory: members are runs of the runs dir that holds `sweeps/<id>/`."""
        return self.item.path.parent.parent / run_id


@dataclass(frozen=True)
class SweepsView:
    items: tuple[SweepItem, ...]
    detail: SweepDetail | None  # None when there are no sweeps


def member_label(config: int, seed: int) -> str:
    return f"c{config} s{seed}"


class MemberCurve:
    """One member's metric by epoch, read incrementally from its `val` events (a resume after a
    crash drops the epochs it redoes, as every reader of the stream does)."""

    def __init__(self, run_dir: Path, metric: str) -> None:
        self.tail = EventTail(run_dir / EVENTS_FILE, known_types=("run_start", "val"))
        self.metric = metric
        self.by_epoch: dict[int, float] = {}
        self.broken = False  # a stream from a newer surgtui: the runs screen says so; no curve here

    def poll(self) -> tuple[list[float], list[float]]:
        if not self.broken:
            try:
                events = self.tail.poll()
            except EventVersionError:
                self.broken, events = True, []
            for e in events:
                if (point := rewind_point(e)) is not None:
                    self.by_epoch = {k: v for k, v in self.by_epoch.items() if k <= point[1]}
                elif e["type"] == "val":
                    value = (e.get("metrics") or {}).get(self.metric)
                    if isinstance(e.get("epoch"), int) and isinstance(value, int | float):
                        self.by_epoch[e["epoch"]] = float(value)
        xs = sorted(self.by_epoch)
        return [float(x) for x in xs], [self.by_epoch[x] for x in xs]


class SweepsReader:
    """Reads the sweeps; keeps each sweep's table until the sweep could have changed (only a running
    scheduler writes its study) and each member's curve between reads."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = Path(runs_dir)
        self._lock = threading.Lock()  # one read at a time: a superseded worker may still be running
        self._tables: dict[Path, tuple[str, Any, list[ConfigRow]]] = {}  # dir -> (state, spec, rows)
        self._curves: dict[Path, MemberCurve] = {}

    def read(self, selected: str | None) -> SweepsView:
        """Every sweep, newest first; the detail of `selected` (the newest when it is gone or None)."""
        from surgtui.sweeps.store import list_sweeps

        with self._lock:
            sweeps = list(reversed(list_sweeps(self.runs_dir)))
            items = [self._item(s) for s in sweeps]
            self._tables = {k: v for k, v in self._tables.items() if k in {s.path for s in sweeps}}
            if not items:
                return SweepsView((), None)
            item = next((i for i in items if i.id == selected), items[0])
            return SweepsView(tuple(items), self._detail(item))

    def _item(self, sweep: Sweep) -> SweepItem:
        from surgtui.sweeps.table import sweep_problem, sweep_rows

        try:
            state = sweep.state
        except OSError as exc:  # the lock cannot be probed: a read-only or vanished directory
            return SweepItem(sweep.id, sweep.path, "unknown", error=f"{sweep.path}: {exc.strerror or exc}")
        problem = sweep_problem(sweep.path, sweep.info)
        if problem:
            self._tables.pop(sweep.path, None)
            return SweepItem(sweep.id, sweep.path, state, error=problem)
        cached = self._tables.get(sweep.path)
        if cached is None or state == "running" or cached[0] != state:
            try:
                spec, rows = sweep_rows(sweep.path)
            except Exception as exc:  # sweep_rows says why as a UserError; anything else is shown the same
                if cached is None or state != "running":
                    self._tables.pop(sweep.path, None)
                    return SweepItem(
                        sweep.id,
                        sweep.path,
                        state,
                        error=str(exc) if isinstance(exc, UserError) else one_line(exc),
                    )
                # else the database was busy under the scheduler: show the last read once more
            else:
                cached = (state, spec, rows)
                self._tables[sweep.path] = cached
        _, spec, rows = cached
        best = next((r.mean for r in rows if r.best), None)
        done = sum(r.count(s) for r in rows for s in ENDED)
        return SweepItem(sweep.id, sweep.path, state, done, spec.n_members(), spec.metric, best)

    def _detail(self, item: SweepItem) -> SweepDetail:
        if item.error or item.path not in self._tables:
            self._curves = {}
            return SweepDetail(item)
        _, spec, rows = self._tables[item.path]
        detail = SweepDetail(
            item,
            tuple(p.key for p in spec.space),
            tuple(spec.seeds),
            spec.n_configs(),
            spec.direction,
            tuple(rows),
        )
        curves: Curves = {}
        kept: dict[Path, MemberCurve] = {}
        for row in rows:
            for seed in spec.seeds:
                _, run_id, _ = row.members.get(seed, ("", None, None))
                if not run_id:
                    continue
                run_dir = detail.run_dir(run_id)
                curve = self._curves.get(run_dir) or MemberCurve(run_dir, spec.metric)
                kept[run_dir] = curve
                xs, ys = curve.poll()
                if xs:
                    curves[member_label(row.config, seed)] = (xs, ys)
        self._curves = kept  # members of other sweeps are read again when their sweep is selected
        return replace(detail, curves=curves)
