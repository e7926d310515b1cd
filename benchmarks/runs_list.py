"""`surgtui runs` over 1,000 runs (target < 1 s), against listing the run directories alone.

Run: .venv/bin/python benchmarks/runs_list.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from surgtui.runs.events import EventWriter
from surgtui.runs.store import create_run


def make_runs(root: Path, n: int) -> None:
    for i in range(n):
        d = create_run(root, f"exp{i % 7}", "")
        with EventWriter(d) as w:
            w.run_start(
                run_id=d.name,
                experiment=f"exp{i % 7}",
                config={"variant": "YOLOv5-Small", "optim": {"lr": 1e-3}},
                device="cpu",
                world_size=1,
                params={},
                epochs=50,
                steps_per_epoch=100,
                total_steps=5000,
            )
            for ep in range(1, 4):
                w.val(
                    epoch=ep,
                    metrics={
                        "map50": 0.1 * ep,
                        "map50_95": 0.05 * ep,
                        "precision": 0.5,
                        "recall": 0.4,
                        "mean_iou": 0.6,
                    },
                    per_class={},
                )
            w.run_end(status="finished", reason="", best=None, duration_s=10.0)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        make_runs(root, 1000)
        env_cmd = [sys.executable, "-m", "surgtui", "runs", "--runs-dir", str(root)]
        baseline = timed([sys.executable, "-c", f"import os; print(len(os.listdir({str(root)!r})))"])
        table = min(timed(env_cmd) for _ in range(3))
        as_json = min(timed(env_cmd + ["--format", "json"]) for _ in range(3))
        print(f"runs: 1000, in {root.parent}")
        print(f"bare listdir process:          {baseline:6.3f} s")
        print(f"surgtui runs (table):          {table:6.3f} s  target < 1 s  {'OK' if table < 1 else 'OVER'}")
        print(f"surgtui runs --format json:    {as_json:6.3f} s")
        print(f"ratio table / bare:            {table / baseline:6.1f}x")


if __name__ == "__main__":
    main()
