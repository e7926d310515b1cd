"""`surgtui --help` start-up time (target < 0.3 s), against bare `python -c pass` in the same run.

Run: .venv/bin/python benchmarks/cli_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def best_of(cmd: list[str], n: int = 7) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    bare = best_of([sys.executable, "-c", "pass"])
    helped = best_of([sys.executable, "-m", "surgtui", "--help"])
    print(f"python -c pass:       {bare * 1000:6.0f} ms (median of 7)")
    print(
        f"surgtui --help:       {helped * 1000:6.0f} ms (median of 7)  target < 300 ms  "
        f"{'OK' if helped < 0.3 else 'OVER'}"
    )
    print(f"ratio --help / bare:  {helped / bare:6.2f}x")


if __name__ == "__main__":
    main()
