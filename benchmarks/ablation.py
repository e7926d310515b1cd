"""experiments/legacy.toml against experiments/baseline.toml: random init, same synthetic data, several seeds.

    .venv/bin/python benchmarks/ablation.py [--epochs 12] [--img 320] [--batch 16] [--train 400] [--val 100]
        [--seeds 0,1,2] [--parallel 2] [--set KEY=VALUE]... [--json PATH] [--keep]

Both experiment files are used as they are, with `--set` overrides for what a CPU benchmark must change:
model.pretrained = false, img_size, batch, epochs, workers = 0, device = cpu, the seed, and the YOLO data
set that `surgtui data synth` makes (cached in benchmarks/.work/data, shared with detector_vs_peer.py).
--parallel 2 runs two one-thread runs at a time (the machine has 2 cores); --parallel 1 one run with
--threads threads (default 2). Prints what is measured: per seed mAP50 / mAP50-95 of both, mean ± std,
baseline − legacy with its spread, and the relative change (the seed document claims +5-10 % mAP).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402 - the benchmarks folder is not a package
    REPO,
    WORK,
    SurgtuiRun,
    add_output_args,
    common_overrides,
    finish,
    fmt,
    fmt_ms,
    mean_std,
    one_thread_env,
    stop_all,
    synth_dataset,
)

EXPERIMENTS = {
    "legacy": REPO / "experiments" / "legacy.toml",
    "baseline": REPO / "experiments" / "baseline.toml",
}
METRICS = (("map50", "mAP50"), ("map50_95", "mAP50-95"))


def run_all(jobs: list[SurgtuiRun], parallel: int, threads: int, poll_s: float = 2.0) -> None:
    """Start jobs in order, at most `parallel` at a time; a stderr line as each finishes. Ctrl-C stops them all."""
    pending, running = list(jobs), []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                print(f"  start {job.tag}", file=sys.stderr, flush=True)
                job.start(one_thread_env(threads))
                running.append(job)
            time.sleep(poll_s)
            for job in [j for j in running if j.poll()]:
                running.remove(job)
                print(
                    f"  done  {job.tag} in {job.wall_s:.0f} s (exit {job.proc.returncode})",
                    file=sys.stderr,
                    flush=True,
                )
    except BaseException:
        stop_all(running)
        raise


def diff_stats(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    legacy = mean_std([r["legacy"][key] for r in rows])
    baseline = mean_std([r["baseline"][key] for r in rows])
    diffs = [
        r["baseline"][key] - r["legacy"][key]
        for r in rows
        if r["baseline"][key] is not None and r["legacy"][key] is not None
    ]
    rel = [
        100 * (r["baseline"][key] / r["legacy"][key] - 1)
        for r in rows
        if r["baseline"][key] is not None and r["legacy"][key]
    ]
    rel_of_means = 100 * (baseline[0] / legacy[0] - 1) if legacy and baseline and legacy[0] else None
    return {
        "legacy": legacy,
        "baseline": baseline,
        "diff": mean_std(diffs),
        "rel_pct_per_seed": mean_std(rel),
        "rel_pct_of_means": rel_of_means,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--img", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train", type=int, default=400, help="training frames")
    ap.add_argument("--val", type=int, default=100, help="validation frames")
    ap.add_argument("--size", default="640x360", help="synthetic frame size WIDTHxHEIGHT")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    ap.add_argument("--parallel", type=int, choices=(1, 2), default=2, help="runs at a time")
    ap.add_argument(
        "--threads", type=int, help="torch threads per run [default: 1 with --parallel 2, else 2]"
    )
    add_output_args(ap, set_help="passed to both runs")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    threads = args.threads or (1 if args.parallel == 2 else 2)

    data_dir = synth_dataset(args.train, args.val, args.size, args.data_seed)
    print(
        f"data {data_dir} ({args.train} train / {args.val} val, {args.size}); {args.epochs} epochs at {args.img} px, "
        f"batch {args.batch}, random init; {args.parallel} run(s) at a time x {threads} thread(s)"
        + (f"; --set {' '.join(args.set)}" if args.set else "")
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jobs: dict[tuple[int, str], SurgtuiRun] = {}
    for seed in seeds:  # legacy and baseline of one seed side by side: same machine load for both
        for name, path in EXPERIMENTS.items():
            overrides = common_overrides(data_dir, args.epochs, args.img, args.batch, seed) + list(args.set)
            jobs[seed, name] = SurgtuiRun(
                f"ablation-{name}-s{seed}-{stamp}", path, overrides, WORK / "runs", WORK / "logs"
            )
    t0 = time.perf_counter()
    run_all(list(jobs.values()), args.parallel, threads)
    rows = []
    for seed in seeds:
        row: dict[str, Any] = {"seed": seed}
        for name in EXPERIMENTS:
            row[name] = jobs[seed, name].result(args.train)
        rows.append(row)
    if not args.keep:
        for job in jobs.values():
            shutil.rmtree(job.find_run_dir() or WORK / "none", ignore_errors=True)

    print(
        f"\n{'seed':>4}  {'legacy mAP50':>12}  {'legacy mAP50-95':>15}  {'baseline mAP50':>14}  "
        f"{'baseline mAP50-95':>17}  {'legacy s':>8}  {'baseline s':>10}"
    )
    for r in rows:
        lg, bl = r["legacy"], r["baseline"]
        print(
            f"{r['seed']:>4}  {fmt(lg['map50']):>12}  {fmt(lg['map50_95']):>15}  {fmt(bl['map50']):>14}  "
            f"{fmt(bl['map50_95']):>17}  {lg['wall_s']:>8.0f}  {bl['wall_s']:>10.0f}"
        )
    stats = {key: diff_stats(rows, key) for key, _ in METRICS}
    print(f"\nover {len(rows)} seed(s), mean ± std (last epoch's validation)")
    print(
        f"{'':<10} {'legacy':>15} {'baseline':>15} {'baseline - legacy':>18} {'rel. of means':>14} "
        f"{'rel. per seed':>16}"
    )
    for key, label in METRICS:
        s = stats[key]
        rel = "n/a" if s["rel_pct_of_means"] is None else f"{s['rel_pct_of_means']:+.1f} %"
        per_seed = (
            "n/a"
            if s["rel_pct_per_seed"] is None
            else (f"{s['rel_pct_per_seed'][0]:+.1f} ± {s['rel_pct_per_seed'][1]:.1f} %")
        )
        print(
            f"{label:<10} {fmt_ms(s['legacy']):>15} {fmt_ms(s['baseline']):>15} {fmt_ms(s['diff']):>18} "
            f"{rel:>14} {per_seed:>16}"
        )
    finish(t0, args.json, args, data_dir, runs=rows, stats=stats)


if __name__ == "__main__":
    main()
