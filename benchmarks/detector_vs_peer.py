"""surgtui against its peer, Ultralytics YOLOv8n: trained side by side on the same synthetic data, mAP and speed.

    .venv/bin/python benchmarks/detector_vs_peer.py [--epochs 12] [--img 320] [--batch 16] [--train 400]
        [--val 100] [--seeds 0] [--variants YOLOv5-Small,YOLOv5-Nano] [--set KEY=VALUE]... [--json PATH] [--keep]

Each (variant, seed) is a pair: one `surgtui run` and one peer run started at the same moment, one torch
thread each, so on the 2-core machine both see the same load and their timings compare. Both train from
random init on a YOLO data set made by `surgtui data synth` (640x360 frames, cached in benchmarks/.work/data).
The peer runs in its own venv, benchmarks/.peer-venv (created with `pip install ultralytics` on first use),
driven by benchmarks/peer_train.py; it is a comparator, never a dependency of the project.
"Final" is the last epoch's validation on both sides; train img/s counts training time only (validation
excluded); wall time is the whole process, the peer's including its re-validation of best.pt at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402 - the benchmarks folder is not a package
    REPO,
    WORK,
    ChildPoll,
    SurgtuiRun,
    add_output_args,
    finish,
    fmt,
    fmt_ms,
    mean_std,
    one_thread_env,
    ratio,
    summarize,
    synth_dataset,
    wait_all,
    write_toml,
)

PEER_VENV = REPO / "benchmarks" / ".peer-venv"
PEER_PYTHON = PEER_VENV / "bin" / "python"
PEER_SCRIPT = REPO / "benchmarks" / "peer_train.py"
YOLO_CONFIG = WORK / "yolo-config"
CLASS_NAMES = ("needle", "needle_driver")


def ensure_peer_venv() -> float | None:
    """Create benchmarks/.peer-venv with ultralytics unless it already imports it; seconds taken, None if reused."""
    if (
        PEER_PYTHON.is_file()
        and subprocess.run([str(PEER_PYTHON), "-c", "import ultralytics"], capture_output=True).returncode
        == 0
    ):
        return None
    print(f"peer: creating {PEER_VENV} and installing ultralytics (a few minutes, once)", file=sys.stderr)
    start = time.perf_counter()
    subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_PYTHON), "-m", "pip", "install", "--quiet", "ultralytics"], check=True)
    return time.perf_counter() - start


def _font() -> Path:
    """Any TTF on the machine (Ultralytics' check_font downloads Arial.ttf otherwise); matplotlib ships one."""
    for candidate in (
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        *Path("/usr/share/fonts").rglob("*.ttf"),
        *PEER_VENV.glob("lib/python*/site-packages/matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf"),
    ):
        if candidate.is_file():
            return candidate
    raise SystemExit("peer: no .ttf font found (Ultralytics would try to download Arial.ttf)")


def peer_env() -> dict[str, str]:
    """One thread, offline, settings and font in the scratch dir: the peer never reaches the network."""
    font = YOLO_CONFIG / "Ultralytics" / "Arial.ttf"
    if not font.is_file():
        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_font(), font)
    return one_thread_env(YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(YOLO_CONFIG), YOLO_VERBOSE="True")


def peer_data_yaml(data_dir: Path) -> Path:
    """The peer's data.yaml: the same image folders as surgtui's, absolute path."""
    path = WORK / "peer-data" / f"{data_dir.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASS_NAMES))
    path.write_text(
        f"path: {data_dir}\ntrain: images/train\nval: images/val\nnames:\n{names}", encoding="utf-8"
    )
    return path


@dataclass
class PeerRun(ChildPoll):
    """One peer_train.py child, with the same start/poll/kill interface as SurgtuiRun."""

    tag: str
    data_yaml: Path
    args: argparse.Namespace
    seed: int
    log_dir: Path
    proc: subprocess.Popen | None = None
    t_start: float = 0.0
    wall_s: float | None = None
    _files: list[Any] = field(default_factory=list)

    @property
    def jsonl(self) -> Path:
        return self.log_dir / f"{self.tag}.peer.jsonl"

    @property
    def run_dir(self) -> Path:
        return WORK / "peer-runs" / self.tag

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{self.tag}.peer.log", "w")  # closed in poll()
        self._files = [log]
        cmd = [
            str(PEER_PYTHON),
            str(PEER_SCRIPT),
            "--data",
            str(self.data_yaml),
            "--out",
            str(self.jsonl),
            "--epochs",
            str(self.args.epochs),
            "--imgsz",
            str(self.args.img),
            "--batch",
            str(self.args.batch),
            "--seed",
            str(self.seed),
            "--threads",
            "1",
            "--project",
            str(self.run_dir.parent),
            "--name",
            self.tag,
        ]
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=peer_env(), cwd=WORK
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def records(self) -> list[dict]:
        if not self.jsonl.is_file():
            return []
        return [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.endswith("}")]

    def result(self, train_images: int) -> dict[str, Any]:
        if self.proc is None or self.proc.returncode != 0:
            tail = (self.log_dir / f"{self.tag}.peer.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"peer run {self.tag} exited {self.proc and self.proc.returncode}:\n{tail}")
        recs = self.records()
        rows = [
            {k: r[k] for k in ("epoch", "train_s", "map50", "map50_95")} for r in recs if r["type"] == "epoch"
        ]
        start = next((r for r in recs if r["type"] == "start"), {})
        final = next((r for r in recs if r["type"] == "final"), {})
        return summarize(rows, train_images, self.wall_s or 0.0) | {
            "run_dir": str(self.run_dir),
            "ultralytics": start.get("ultralytics"),
            "torch": start.get("torch"),
            "threads": start.get("threads"),
            "threads_ultralytics": start.get("threads_ultralytics"),
            "peer_train_images": start.get("train_images"),
            "best_pt": {"map50": final.get("map50"), "map50_95": final.get("map50_95")},
        }


def surgtui_experiment(variant: str, seed: int, data_dir: Path, args: argparse.Namespace) -> Path:
    doc = {
        "name": f"vs-peer-{variant.lower()}-s{seed}",
        "description": "benchmarks/detector_vs_peer.py",
        "variant": variant,
        "model": {"pretrained": False, "img_size": args.img},
        "train": {
            "batch_size": args.batch,
            "epochs": args.epochs,
            "workers": 0,
            "device": "cpu",
            "seed": seed,
        },
        "data": {"source": str(data_dir), "format": "yolo"},
        "logging": {"log_every": 5, "wandb": False},
    }
    return write_toml(WORK / "experiments" / f"vs-peer-{variant}-s{seed}.toml", doc)


def run_pair(
    variant: str, seed: int, data_dir: Path, data_yaml: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """surgtui and the peer started together; both results once both have exited."""
    tag = f"{variant}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    ours = SurgtuiRun(
        tag, surgtui_experiment(variant, seed, data_dir, args), list(args.set), WORK / "runs", WORK / "logs"
    )
    peer = PeerRun(tag, data_yaml, args, seed, WORK / "logs")
    seen = {"ours": 0, "peer": 0}

    def progress() -> None:  # one stderr line per finished epoch of either side
        ev = [e for e in ours.events() if e.get("type") == "val"]
        pe = [r for r in peer.records() if r.get("type") == "epoch"]
        for side, recs, get in (
            ("surgtui", ev, lambda e: e["metrics"]["map50"]),
            ("peer", pe, lambda r: r["map50"]),
        ):
            key = "ours" if side == "surgtui" else "peer"
            for r in recs[seen[key] :]:
                print(
                    f"  [{variant} s{seed}] {side:7s} epoch {r['epoch']}/{args.epochs} mAP50 {fmt(get(r))}",
                    file=sys.stderr,
                    flush=True,
                )
            seen[key] = len(recs)

    print(f"pair {variant} seed {seed}: starting surgtui and peer together", file=sys.stderr, flush=True)
    ours.start()
    peer.start()
    wait_all([ours, peer], progress)
    s, p = ours.result(args.train), peer.result(args.train)
    if not args.keep:  # weights of every pair add up; the logs in .work/logs stay
        for d in (s["run_dir"], p["run_dir"]):
            shutil.rmtree(d, ignore_errors=True)
    return {"variant": variant, "seed": seed, "surgtui": s, "peer": p, "ratio": ratios(s, p)}


METRICS = (
    ("map50", "mAP50", 3),
    ("map50_95", "mAP50-95", 3),
    ("train_img_s", "train img/s", 2),
    ("wall_s", "wall s", 0),
)


def ratios(s: dict[str, Any], p: dict[str, Any]) -> dict[str, float | None]:
    return {k: ratio(s[k], p[k]) for k, _, _ in METRICS}


def print_pair(r: dict[str, Any]) -> None:
    s, p = r["surgtui"], r["peer"]
    print(f"\n== {r['variant']} (surgtui) vs YOLOv8n (ultralytics {p['ultralytics']}), seed {r['seed']} ==")
    print(
        f"{'epoch':>5}  {'surgtui mAP50':>13}  {'peer mAP50':>10}  {'surgtui train s':>15}  {'peer train s':>12}"
    )
    peer_by_epoch = {e["epoch"]: e for e in p["epochs"]}
    for e in s["epochs"]:
        q = peer_by_epoch.get(e["epoch"], {})
        print(
            f"{e['epoch']:>5}  {fmt(e.get('map50')):>13}  {fmt(q.get('map50')):>10}  "
            f"{fmt(e.get('train_s'), 1):>15}  {fmt(q.get('train_s'), 1):>12}"
        )
    print(f"{'final (last epoch)':<20} {'surgtui':>10} {'peer':>10} {'surgtui/peer':>13}")
    for key, label, digits in METRICS:
        print(
            f"{label:<20} {fmt(s[key], digits):>10} {fmt(p[key], digits):>10} {fmt(r['ratio'][key], 2):>13}"
        )
    print(
        f"threads: surgtui on {s['device']} with OMP_NUM_THREADS=1, peer torch threads {p['threads']} "
        f"(ultralytics chose {p['threads_ultralytics']}); peer best.pt re-validated: "
        f"mAP50 {fmt(p['best_pt']['map50'])} mAP50-95 {fmt(p['best_pt']['map50_95'])}"
    )


def summary(pairs: list[dict[str, Any]], variant: str) -> dict[str, Any]:
    rs = [r for r in pairs if r["variant"] == variant]
    out: dict[str, Any] = {"variant": variant, "seeds": [r["seed"] for r in rs]}
    for key, _, _ in METRICS:
        out[key] = {
            "surgtui": mean_std([r["surgtui"][key] for r in rs]),
            "peer": mean_std([r["peer"][key] for r in rs]),
            "ratio": mean_std([r["ratio"][key] for r in rs]),
        }
    return out


def print_summary(sm: dict[str, Any]) -> None:
    print(f"\n== {sm['variant']} vs YOLOv8n over seeds {', '.join(map(str, sm['seeds']))} (mean ± std) ==")
    print(f"{'':<14} {'surgtui':>18} {'peer':>18} {'surgtui/peer':>15}")
    for key, label, digits in METRICS:
        v = sm[key]
        print(
            f"{label:<14} {fmt_ms(v['surgtui'], digits):>18} {fmt_ms(v['peer'], digits):>18} "
            f"{fmt_ms(v['ratio'], 2):>15}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--img", type=int, default=320, help="network input, both sides")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train", type=int, default=400, help="training frames")
    ap.add_argument("--val", type=int, default=100, help="validation frames")
    ap.add_argument("--size", default="640x360", help="synthetic frame size WIDTHxHEIGHT")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--variants", default="YOLOv5-Small,YOLOv5-Nano", help="comma-separated surgtui variants")
    add_output_args(ap, set_help="passed to surgtui run")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    install_s = ensure_peer_venv()
    if install_s is not None:
        print(f"peer: venv ready in {install_s:.0f} s", file=sys.stderr)
    data_dir = synth_dataset(args.train, args.val, args.size, args.data_seed)
    data_yaml = peer_data_yaml(data_dir)
    print(
        f"data {data_dir} ({args.train} train / {args.val} val, {args.size}); {args.epochs} epochs at "
        f"{args.img} px, batch {args.batch}; {os.cpu_count()} cores, one thread per side"
        + (f"; surgtui --set {' '.join(args.set)}" if args.set else "")
    )
    t0 = time.perf_counter()
    pairs = []
    for seed in seeds:
        for variant in variants:
            pairs.append(run_pair(variant, seed, data_dir, data_yaml, args))
            print_pair(pairs[-1])
            sys.stdout.flush()
    summaries = [summary(pairs, v) for v in variants] if len(seeds) > 1 else []
    for sm in summaries:
        print_summary(sm)
    finish(t0, args.json, args, data_dir, peer_install_s=install_s, pairs=pairs, summaries=summaries)


if __name__ == "__main__":
    main()
