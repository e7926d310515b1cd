"""Shared pieces of the learning benchmarks: a cached synthetic YOLO data set, `surgtui run` as a child
process, reading a run's events.jsonl, and mean ± std.

Not a benchmark itself. Scratch files (data sets, runs, the peer's venv) live under benchmarks/.work/ and
benchmarks/.peer-venv/, both git-ignored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work"
MAX_FRAMES_PER_VIDEO = 10  # a new tissue background every <= 10 frames, as in the real fps1 videos
# The seed's environment overrides (MODEL_VARIANT, ...) would silently change what a benchmark measures.
_SEED_ENV = ("MODEL_VARIANT", "LEARNING_RATE", "BATCH_SIZE", "NUM_EPOCHS")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the seed's overrides, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if k not in _SEED_ENV}, "PYTHONUNBUFFERED": "1", **extra}


def one_thread_env(threads: int = 1, **extra: str) -> dict[str, str]:
    """os.environ with one BLAS/OpenMP thread per process (two runs share the 2 cores fairly), seed overrides off."""
    env = clean_env()
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1", **extra)
    return env


def surgtui_command() -> list[str]:
    """The real CLI of the interpreter running this script (the `surgtui` script beside it, else -m)."""
    script = Path(sys.executable).with_name("surgtui")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "surgtui"]


def frames_per_video(total: int) -> int:
    """The largest divisor of `total` up to MAX_FRAMES_PER_VIDEO: videos x frames is then exactly `total`."""
    return max(d for d in range(1, MAX_FRAMES_PER_VIDEO + 1) if total % d == 0)


def synth_dataset(train: int, val: int, size: str = "640x360", seed: int = 0, quiet: bool = False) -> Path:
    """A YOLO data set (data.yaml, images/{train,val}, labels/{train,val}) made by `surgtui data synth`.

    Cached under WORK/data keyed by its parameters and the generator version; built in a temp directory
    and renamed into place, so an interrupted build leaves nothing that looks finished.
    """
    from surgtui.data.synth import GENERATOR_VERSION

    final = WORK / "data" / f"yolo-{size}-t{train}-v{val}-s{seed}-g{GENERATOR_VERSION}"
    if (final / "data.yaml").is_file():
        return final
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    try:
        # One synth call per split: the CLI gives every split the same videos x frames, we need 400 vs 100.
        for split, n in (("train", train), ("val", val)):
            fpv = frames_per_video(n)
            cmd = [
                *surgtui_command(),
                "data",
                "synth",
                "--out",
                str(tmp),
                "--layout",
                "yolo",
                "--size",
                size,
                "--seed",
                str(seed),
                "--splits",
                split,
                "--videos",
                str(n // fpv),
                "--frames",
                str(fpv),
            ]
            subprocess.run(
                cmd, check=True, stdout=subprocess.DEVNULL if quiet else sys.stderr, env=one_thread_env()
            )
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(
            f"data: {train} train + {val} val frames {size} in {final} ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
        )
    return final


def write_toml(path: Path, doc: dict[str, Any]) -> Path:
    import tomlkit

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def common_overrides(data_dir: Path, epochs: int, img: int, batch: int, seed: int) -> list[str]:
    """`--set` overrides every benchmark run gets: random init, CPU, no loader processes, this data set."""
    return [
        "model.pretrained=false",
        f"model.img_size={img}",
        f"train.batch_size={batch}",
        f"train.epochs={epochs}",
        "train.workers=0",
        'train.device="cpu"',
        f"train.seed={seed}",
        f'data.source="{data_dir}"',
        'data.format="yolo"',
        "logging.log_every=5",
        "logging.wandb=false",
    ]


class ChildPoll:
    """`poll` for a benchmark child with `proc`, `t_start`, `wall_s` and the log files it writes (`_files`)."""

    proc: subprocess.Popen | None
    t_start: float
    wall_s: float | None
    _files: list[Any]

    def poll(self) -> bool:
        """True once the child has exited (and records its wall time)."""
        if self.proc is not None and self.wall_s is None and self.proc.poll() is not None:
            self.wall_s = time.perf_counter() - self.t_start
            for f in self._files:
                f.close()
        return self.wall_s is not None


@dataclass
class SurgtuiRun(ChildPoll):
    """One `surgtui run` child: started by `start`, finished by `wait`, read by `result`."""

    tag: str
    experiment: Path
    overrides: list[str]
    runs_dir: Path
    log_dir: Path
    proc: subprocess.Popen | None = None
    t_start: float = 0.0
    wall_s: float | None = None
    run_dir: Path | None = None
    _files: list[Any] = field(default_factory=list)

    def start(self, env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{self.tag}.surgtui.out", "w")  # closed in poll()
        err = open(self.log_dir / f"{self.tag}.surgtui.err", "w")
        self._files = [out, err]
        cmd = [*surgtui_command(), "run", str(self.experiment), "--runs-dir", str(self.runs_dir)]
        for o in self.overrides:
            cmd += ["--set", o]
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env or one_thread_env(), cwd=REPO
        )

    def find_run_dir(self) -> Path | None:
        """The run directory, from the `run ID in DIR` line `surgtui run` prints to stderr first."""
        if self.run_dir is None:
            text = (self.log_dir / f"{self.tag}.surgtui.err").read_text(errors="replace")
            m = re.search(r"^run (\S+) in (.+)$", text, re.M)
            self.run_dir = Path(m.group(2).strip()) if m else None
        return self.run_dir

    def events(self) -> list[dict]:
        run_dir = self.find_run_dir()
        return read_events(run_dir / "events.jsonl") if run_dir else []

    def result(self, train_images: int) -> dict[str, Any]:
        """Per-epoch train time and val metrics, and totals; raises with the log tail if the run failed."""
        if self.proc is None or self.proc.returncode != 0:
            tail = (self.log_dir / f"{self.tag}.surgtui.err").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"surgtui run {self.tag} exited {self.proc and self.proc.returncode}:\n{tail}")
        return fold_events(self.events(), train_images, self.wall_s or 0.0, str(self.find_run_dir()))

    def kill(self) -> None:
        """Ask the follower to stop its engine (it relays SIGINT to the engine's process group)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)


def read_events(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a crashed writer may leave a partial line (docs/events.md)
    return out


def fold_events(events: Sequence[dict], train_images: int, wall_s: float, run_dir: str) -> dict[str, Any]:
    """epoch_end (train time, excluding validation) and val (metrics) events as one record per epoch."""
    epochs: dict[int, dict[str, Any]] = {}
    device = None
    for ev in events:
        if ev.get("type") == "epoch_end":
            epochs.setdefault(ev["epoch"], {"epoch": ev["epoch"]})["train_s"] = ev["duration_s"]
        elif ev.get("type") == "val":
            m = ev.get("metrics") or {}
            epochs.setdefault(ev["epoch"], {"epoch": ev["epoch"]}).update(
                map50=m.get("map50"), map50_95=m.get("map50_95")
            )
        elif ev.get("type") == "run_start":
            device = ev.get("device")
    rows = [epochs[k] for k in sorted(epochs)]
    return summarize(rows, train_images, wall_s) | {"device": device, "run_dir": run_dir}


def summarize(rows: list[dict[str, Any]], train_images: int, wall_s: float) -> dict[str, Any]:
    """Final metrics (last validated epoch), training img/s over all epochs, wall time."""
    validated = [r for r in rows if r.get("map50") is not None]
    last = validated[-1] if validated else {}
    train_s = sum(r.get("train_s") or 0.0 for r in rows)
    return {
        "epochs": rows,
        "map50": last.get("map50"),
        "map50_95": last.get("map50_95"),
        "train_s": train_s,
        "train_img_s": train_images * len(rows) / train_s if train_s else None,
        "wall_s": wall_s,
    }


def mean_std(values: Sequence[float | None]) -> tuple[float, float] | None:
    """Mean and sample std (0 for one value) of the values that are not None; None if there are none."""
    vs = [v for v in values if v is not None]
    if not vs:
        return None
    return statistics.fmean(vs), statistics.stdev(vs) if len(vs) > 1 else 0.0


def fmt_ms(ms: tuple[float, float] | None, digits: int = 3) -> str:
    return "n/a" if ms is None else f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def wait_all(procs: Sequence[Any], progress: Any = None, poll_s: float = 2.0) -> None:
    """Wait until every child's poll() is True, calling progress() between polls; Ctrl-C stops them all."""
    try:
        while not all([p.poll() for p in procs]):  # a list: poll every child, not only up to the first False
            if progress:
                progress()
            time.sleep(poll_s)
        if progress:
            progress()
    except BaseException:
        stop_all(procs)
        raise


def stop_all(procs: Sequence[Any], timeout: float = 60) -> None:
    """Stop every child still running and reap it, so no engine outlives the benchmark."""
    for p in procs:
        p.kill()
    for p in procs:
        if p.proc is not None:
            try:
                p.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.proc.kill()


def finish(t0: float, json_path: Path | None, args: Any, data_dir: Path, **results: Any) -> None:
    """Print the wall time; with --json, write the arguments, the data set and `results` there."""
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        given = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        doc = {"args": given, "data": str(data_dir), **results}
        json_path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        print(f"results in {json_path}")


def add_output_args(ap: Any, set_help: str) -> None:
    """--set, --json and --keep, as every training benchmark takes them."""
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--keep", action="store_true", help="keep run directories (weights) under benchmarks/.work"
    )
