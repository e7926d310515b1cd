"""How fast the monitor is: open a long finished run, follow a fast writer, memory over a long run.

    .venv/bin/python benchmarks/tui_speed.py            # all three, about a minute
    .venv/bin/python benchmarks/tui_speed.py open       # just one

Targets (issue 6): a finished run with 100,000 step events shows its curves in
under 1 s; while a run writes 2,000 events/s, key presses are answered within
100 ms; memory stays flat over a long run. The writers are separate processes,
as the engine is.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textual import events
from textual.binding import Binding

from surgtui.fileio import write_json_atomic
from surgtui.runs.events import encode_event, make_event, read_events, step_fields
from surgtui.runs.layout import EVENTS_FILE, SUMMARY_FILE
from surgtui.runs.lock import proc_start_time
from surgtui.runs.store import create_run, update_run_json
from surgtui.runs.summary import Summary
from surgtui.tui.app import SurgApp
from surgtui.tui.screens.monitor import MonitorScreen

SIZE = (100, 30)
ROOT = Path(__file__).resolve().parent.parent


def _run_start(run_id: str, total: int) -> dict:
    return {
        "v": 1,
        "type": "run_start",
        "time": time.time(),
        "run_id": run_id,
        "experiment": "bench",
        "config": {"optim": {"grad_clip": 10.0}},
        "device": "cpu",
        "world_size": 1,
        "params": {"backbone": 1, "head": 1, "total": 2},
        "epochs": max(1, total // 1000),
        "steps_per_epoch": 1000,
        "total_steps": total,
        "resumed_from_step": None,
    }


def _step(i: int) -> dict:
    # Numbers as the engine writes them (EventWriter.step): float32 noise past the 7th digit cut.
    return make_event(
        "step",
        **step_fields(
            i // 1000 + 1,
            i,
            {"backbone": 1e-4 * (1 + (i % 100) / 100), "head": 1e-3 * (1 + (i % 100) / 100)},
            3.0 + (i % 37) / 5 + 1e-9 * i,
            i % 37 == 0,
            {
                "coord": 0.1 + (i % 11) / 100 + 1e-9 * i,
                "conf": 0.5 - i / 1e7,
                "class": 0.2 + 1 / (i + 3),
                "total": 0.8,
            },
            120.0 + (i % 13) / 7,
        ),
    )


def _line(e: dict) -> str:
    return encode_event(e) + "\n"


def writer(run_dir: Path, n: int, rate: float) -> None:
    """A stand-in engine: `n` step events at `rate` per second (0: as fast as it can), flushed per line."""
    with open(run_dir / EVENTS_FILE, "a", encoding="utf-8") as fh:
        fh.write(_line(_run_start(run_dir.name, n)))
        fh.flush()
        started = time.perf_counter()
        for i in range(1, n + 1):
            fh.write(_line(_step(i)))
            fh.flush()
            if rate and i % 20 == 0:
                time.sleep(max(0.0, started + i / rate - time.perf_counter()))
        fh.write(
            _line(
                {
                    "v": 1,
                    "type": "run_end",
                    "time": time.time(),
                    "status": "finished",
                    "reason": "",
                    "best": None,
                    "duration_s": time.perf_counter() - started,
                }
            )
        )


def _spawn_writer(run_dir: Path, n: int, rate: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, __file__, "writer", str(run_dir), str(n), str(rate)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    update_run_json(run_dir, pid=proc.pid, pgid=proc.pid, proc_start=proc_start_time(proc.pid))
    return proc


class ProbeApp(SurgApp):
    """The real app plus one key that changes the screen; notes when it ran and when that was painted."""

    BINDINGS = SurgApp.BINDINGS + [Binding("f12", "probe", show=False, priority=True)]

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.answered: float | None = None
        self.painted: float | None = None

    def action_probe(self) -> None:
        self.answered = time.perf_counter()
        self.screen.sub_title = f"probe {self.answered:.6f}"  # a visible change: the header repaints

    def _display(self, screen, renderable) -> None:
        super()._display(screen, renderable)
        if self.answered is not None and self.painted is None:
            self.painted = time.perf_counter()


async def _until(pilot, condition, timeout: float = 120.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.01)  # not pilot.pause: that walks every widget, stealing time from the app


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def bench_open(tmp: Path, n: int = 100_000) -> None:
    run_dir = create_run(tmp / "runs", "bench", "")
    t = time.perf_counter()
    writer(run_dir, n, 0)
    # The engine's EventWriter keeps summary.json; without it every listing of runs re-reads the events.
    write_json_atomic(
        run_dir / SUMMARY_FILE, Summary.from_events(read_events(run_dir / EVENTS_FILE)).to_dict()
    )
    size = (run_dir / EVENTS_FILE).stat().st_size
    print(f"open: wrote {n:,} step events ({size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s")
    app = SurgApp(tmp / "experiments", tmp / "runs")
    async with app.run_test(size=SIZE) as pilot:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            screen = MonitorScreen(run_dir)
            await app.push_screen(screen)
            await _until(pilot, lambda s=screen: s.drawn)
            times.append(time.perf_counter() - t)
            points = max(len(xs) for xs, _ in screen.view.loss_curves.values())
            app.pop_screen()
            await pilot.pause(0.1)
    print(
        f"open: finished run with {n:,} steps -> curves drawn in "
        + ", ".join(f"{x:.2f} s" for x in times)
        + f" (target < 1 s); {points} points per curve"
    )


async def bench_follow(tmp: Path, rate: int = 2000, seconds: float = 10.0) -> None:
    run_dir = create_run(tmp / "runs", "follow", "")
    n = int(rate * seconds)
    app = ProbeApp(tmp / "experiments", tmp / "runs")
    async with app.run_test(size=SIZE) as pilot:
        screen = MonitorScreen(run_dir)
        await app.push_screen(screen)
        proc = _spawn_writer(run_dir, n, rate)
        await _until(pilot, lambda: screen.view is not None and screen.view.step > 0)
        latencies, painted = [], []
        started = time.perf_counter()
        while proc.poll() is None:
            app.answered = app.painted = None
            sent = time.perf_counter()
            app.post_message(events.Key("f12", None))  # how the terminal driver delivers a key
            await _until(pilot, lambda: app.painted is not None, timeout=10)
            latencies.append((app.answered - sent) * 1000)
            painted.append((app.painted - sent) * 1000)
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        await _until(pilot, lambda: screen.view.status == "finished" and screen.drawn, timeout=30)
    print(
        f"follow: writer at {rate:,} events/s for {elapsed:.1f} s ({n:,} events), {len(latencies)} key presses"
    )
    for what, xs in (("handled", latencies), ("on screen", painted)):
        xs.sort()
        print(
            f"follow: key press {what} after median {statistics.median(xs):.1f} ms, "
            f"p95 {xs[int(0.95 * (len(xs) - 1))]:.1f} ms, max {xs[-1]:.1f} ms (target < 100 ms)"
        )
    print(f"follow: the monitor ended at step {screen.view.step:,} of {n:,}, status {screen.view.status}")


async def bench_memory(tmp: Path, n: int = 500_000) -> None:
    run_dir = create_run(tmp / "runs", "memory", "")
    app = SurgApp(tmp / "experiments", tmp / "runs")
    samples: list[tuple[int, float, int]] = []  # step, RSS, live Python memory blocks
    async with app.run_test(size=SIZE) as pilot:
        screen = MonitorScreen(run_dir)
        await app.push_screen(screen)
        proc = _spawn_writer(run_dir, n, 0)
        mark = 0
        while proc.poll() is None or screen.view is None or screen.view.status != "finished":
            await pilot.pause(0.2)
            step = screen.view.step if screen.view else 0
            if step >= mark:
                samples.append((step, rss_mib(), sys.getallocatedblocks()))
                mark += n // 10
        samples.append((screen.view.step, rss_mib(), sys.getallocatedblocks()))
        f = screen.follower
        held = (
            sum(len(s._buckets) for s in [*f.loss.values(), *f.lr.values(), *f.val.values()]),
            len(f.grad_recent),
            len(f.state.logs),
        )
    print(f"memory: following {n:,} step events; by step: RSS, live Python blocks:")
    print("memory:   " + ", ".join(f"{s:,}: {m:.0f} MiB {b / 1e3:.0f}k" for s, m, b in samples))
    later = [(m, b) for s, m, b in samples if s >= n // 5]
    print(
        f"memory: from step {n // 5:,} to the end RSS went {later[0][0]:.0f} -> {later[-1][0]:.0f} MiB, "
        f"live blocks {later[0][1] / 1e3:.0f}k -> {later[-1][1] / 1e3:.0f}k; the follower holds "
        f"{held[0]} curve buckets, {held[1]} grad norms, {held[2]} log lines"
    )


def main(which: list[str]) -> None:
    if len(which) != 1:  # each in a fresh process: one's leftover heap must not show up in another's RSS
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load} (other work on the box slows every figure)",
            flush=True,
        )
        for name in which or ["open", "follow", "memory"]:
            subprocess.run([sys.executable, __file__, name], check=True)
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "experiments").mkdir()
        asyncio.run({"open": bench_open, "follow": bench_follow, "memory": bench_memory}[which[0]](tmp))


if __name__ == "__main__":
    if sys.argv[1:2] == ["writer"]:
        writer(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        main(sys.argv[1:])
