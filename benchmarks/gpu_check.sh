#!/usr/bin/env bash
# One-off check of the engine on a machine with an NVIDIA GPU; no test needs it. From anywhere:
#
#     bash benchmarks/gpu_check.sh            # about 3-8 minutes on an H100-class GPU (plus a venv install if needed)
#     GPU_CHECK_ALLOW_CPU=1 bash benchmarks/gpu_check.sh   # the same code paths on CPU at tiny sizes (plumbing only)
#
# (a) StepRunner throughput, YOLOv5-Small at 640 px, batch 32: fp32 vs AMP vs AMP + channels_last;
# (b) whether the data loader keeps the GPU busy: a real `surgtui run` (train.device = "cuda") on synthetic
#     1280x720 frames with 4 loader workers vs 0, img/s from events.jsonl, against (a);
# (c) with 2+ GPUs: a 2-process torchrun run (train.devices = 2), 2 epochs, and its DDP parameter check.
# Ends with one summary block. Python: .venv if its torch has CUDA, else $GPU_CHECK_PYTHON, else a venv made in
# benchmarks/.work/gpu-venv (system site packages, so a preinstalled CUDA torch is reused; pip otherwise).
# Scratch (runs, the synthetic data cache, results.json) goes to benchmarks/.work/gpu-check.
set -euo pipefail
cd "$(dirname "$0")/.."

ALLOW_CPU="${GPU_CHECK_ALLOW_CPU:-0}"
SCRATCH="benchmarks/.work/gpu-check"
if [[ "$ALLOW_CPU" != 1 ]] && ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi -L fails); run it on a GPU machine, or set GPU_CHECK_ALLOW_CPU=1 to try the code paths on CPU"
    exit 1
fi

# A python whose torch sees CUDA (or any torch under GPU_CHECK_ALLOW_CPU=1) and that imports surgtui.
usable() {
    [[ -x "$1" ]] || return 1
    "$1" -c 'import sys, torch, surgtui; sys.exit(0 if torch.cuda.is_available() or sys.argv[1] == "1" else 1)' \
        "$ALLOW_CPU" >/dev/null 2>&1
}
PY=""
for candidate in "${GPU_CHECK_PYTHON:-}" .venv/bin/python benchmarks/.work/gpu-venv/bin/python; do
    if [[ -n "$candidate" ]] && usable "$candidate"; then PY="$candidate"; break; fi
done
if [[ -z "$PY" ]]; then
    echo "== no python with CUDA torch and surgtui: creating benchmarks/.work/gpu-venv =="
    python3 -m venv --system-site-packages benchmarks/.work/gpu-venv
    PY=benchmarks/.work/gpu-venv/bin/python
    if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
        "$PY" -m pip install --upgrade torch torchvision  # PyPI's Linux wheels are CUDA builds
    fi
    "$PY" -m pip install -e .
    if ! usable "$PY"; then
        echo "gpu_check: $PY still has no CUDA torch with surgtui (torch.cuda.is_available() is False); check the driver"
        exit 1
    fi
fi
echo "== python: $PY"
"$PY" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, available {torch.cuda.is_available()}")'

echo "== nvidia-smi"
nvidia-smi || echo "(no nvidia-smi)"
GPUS=$(nvidia-smi -L 2>/dev/null | wc -l || true)
[[ "${GPU_CHECK_FORCE_DDP:-0}" == 1 ]] && GPUS=2  # exercise (c) on CPU with gloo (testing the script)
mkdir -p "$SCRATCH"

GPU_CHECK_GPUS="$GPUS" GPU_CHECK_SCRATCH="$SCRATCH" "$PY" - <<'PYEOF'
"""The python half of gpu_check.sh: (a) step throughput, (b) loader, (c) DDP, then the summary."""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, "benchmarks")
from _bench_common import SurgtuiRun, clean_env, fmt, ratio, read_events, write_toml  # noqa: E402
from train_step import random_targets  # noqa: E402  (the step benchmark's synthetic boxes)

from surgtui.config.load import resolve_data  # noqa: E402
from surgtui.engine.model import build_model  # noqa: E402
from surgtui.engine.train import StepRunner  # noqa: E402

CUDA = torch.cuda.is_available()
if not CUDA and os.environ.get("GPU_CHECK_ALLOW_CPU") != "1":
    sys.exit("gpu_check: torch.cuda.is_available() is False; set GPU_CHECK_ALLOW_CPU=1 to try the code paths on CPU")
SCRATCH = Path(os.environ["GPU_CHECK_SCRATCH"]).resolve()
GPUS = int(os.environ.get("GPU_CHECK_GPUS") or 0)
DEVICE = torch.device("cuda", 0) if CUDA else torch.device("cpu")
# Full sizes on a GPU; tiny ones on CPU, where only the plumbing is being checked.
if CUDA:
    IMG, BATCH, WARMUP, STEPS = 640, 32, 10, 30
    FRAMES, TRAIN, VAL, EPOCHS, RUN_BATCH, WORKERS = (1280, 720), 512, 32, 3, 32, 4
else:
    IMG, BATCH, WARMUP, STEPS = 64, 2, 1, 2
    FRAMES, TRAIN, VAL, EPOCHS, RUN_BATCH, WORKERS = (160, 90), 8, 4, 2, 4, 2
VARIANT = "YOLOv5-Small"
results: dict = {"device": torch.cuda.get_device_name(0) if CUDA else "cpu", "torch": torch.__version__,
                 "gpus": GPUS}


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def step_rate(amp: bool, channels_last: bool) -> dict:
    """img/s of the engine's own StepRunner on fixed random tensors (no loader): the GPU's ceiling."""
    torch.manual_seed(0)
    exp, _ = resolve_data({"variant": VARIANT, "model": {"pretrained": False, "img_size": IMG},
                           "train": {"amp": amp}}, "gpu_check")
    model = build_model(exp.model).to(DEVICE).train()
    runner = StepRunner(model, exp, DEVICE)  # sets amp = cuda and train.amp, channels_last = cuda
    runner.channels_last = channels_last and CUDA  # the one knob StepRunner has no config key for
    model.to(memory_format=torch.channels_last if runner.channels_last else torch.contiguous_format)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(BATCH, 3, IMG, IMG, generator=g).to(DEVICE)
    targets = random_targets(BATCH, IMG, 20, g)
    for _ in range(WARMUP):  # cuDNN autotuning and allocator warm-up
        runner(images, targets)
    sync()
    t = time.perf_counter()
    skipped = sum(runner(images, targets) is None for _ in range(STEPS))
    sync()
    rate = BATCH * STEPS / (time.perf_counter() - t)
    flags = {"amp": bool(getattr(runner, "amp", False)), "channels_last": runner.channels_last}  # what really ran
    del runner, model
    if CUDA:
        torch.cuda.empty_cache()
    return {"img_s": rate, **flags, "skipped_steps": skipped}


print(f"\n== (a) StepRunner, {VARIANT} at {IMG} px, batch {BATCH}, {STEPS} steps after {WARMUP} warm-up", flush=True)
torch.backends.cudnn.benchmark = CUDA  # as the Trainer sets it
step = {"fp32": step_rate(False, False), "amp": step_rate(True, False), "amp_cl": step_rate(True, True)}
for name, r in step.items():
    print(f"{name:8s} {r['img_s']:9.1f} img/s   x{ratio(r['img_s'], step['fp32']['img_s']):.2f} vs fp32   "
          f"(amp {r['amp']}, channels_last {r['channels_last']}, skipped steps {r['skipped_steps']})", flush=True)
results["step"] = step


def engine_run(tag: str, workers: int, devices: int, epochs: int) -> dict:
    """A real `surgtui run` on built-in synthetic frames; img/s from epoch_end events after the first epoch."""
    doc = {"name": f"gpu-check-{tag}", "variant": VARIANT,
           "model": {"pretrained": False, "img_size": IMG},
           "train": {"epochs": epochs, "batch_size": RUN_BATCH, "device": "cuda" if CUDA else "cpu",
                     "devices": devices, "workers": workers, "amp": True, "val_every": 1000},
           "data": {"source": "synthetic", "cache_dir": str(SCRATCH / "cache"),
                    "synthetic": {"train": TRAIN, "val": VAL, "width": FRAMES[0], "height": FRAMES[1]}},
           "logging": {"log_every": 2, "wandb": False}}
    run = SurgtuiRun(tag, write_toml(SCRATCH / f"{tag}.toml", doc), [], SCRATCH / "runs", SCRATCH / "logs")
    run.start(clean_env())
    while not run.poll():
        time.sleep(1)
    out = {"exit": run.proc.returncode, "wall_s": run.wall_s, "run_dir": str(run.find_run_dir())}
    events = read_events(Path(out["run_dir"]) / "events.jsonl") if run.find_run_dir() else []
    ends = [e for e in events if e.get("type") == "epoch_end"]
    later = ends[1:] or ends  # epoch 1 holds worker start-up and cuDNN autotuning
    per_rank = TRAIN - TRAIN % devices
    out["img_s"] = per_rank * len(later) / sum(e["duration_s"] for e in later) if later else None
    steps = [e["imgs_per_s"] for e in events if e.get("type") == "step" and e.get("epoch", 0) > 1]
    out["step_img_s_median"] = statistics.median(steps) if steps else None
    out["logs"] = [e["message"] for e in events if e.get("type") == "log"]
    out["end"] = next((e for e in reversed(events) if e.get("type") == "run_end"), None)
    if out["exit"] != 0:
        err = (SCRATCH / "logs" / f"{tag}.surgtui.err").read_text(errors="replace")[-1500:]
        print(f"   run {tag} exited {out['exit']}:\n{err}", flush=True)
    return out


print(f"\n== (b) loader: surgtui run, {TRAIN} synthetic {FRAMES[0]}x{FRAMES[1]} frames, {IMG} px, batch {RUN_BATCH}, "
      f"{EPOCHS} epochs, AMP", flush=True)
loader = {}
for workers in (WORKERS, 0):
    r = engine_run(f"workers{workers}", workers, 1, EPOCHS)
    loader[workers] = r
    print(f"workers {workers}: {fmt(r['img_s'], 1)} img/s over epochs 2..{EPOCHS} (median step window "
          f"{fmt(r['step_img_s_median'], 1)}), {fmt(ratio(r['img_s'], step['amp_cl']['img_s']), 2)} of the "
          f"StepRunner ceiling, wall {r['wall_s']:.0f} s, exit {r['exit']}", flush=True)
results["loader"] = loader

ddp = None
if GPUS >= 2:
    print("\n== (c) DDP: train.devices = 2 under torchrun, 2 epochs", flush=True)
    ddp = engine_run("ddp2", WORKERS, 2, 2)
    line = next((m for m in ddp["logs"] if m.startswith("DDP: parameters")), None)
    ddp["ddp_line"] = line
    status = (ddp["end"] or {}).get("status")
    print(f"finished: {status == 'finished'} (status {status}, exit {ddp['exit']}, wall {ddp['wall_s']:.0f} s)")
    print(f"log: {line or 'no DDP parameter check line in events.jsonl'}", flush=True)
results["ddp"] = ddp

(SCRATCH / "results.json").write_text(json.dumps(results, indent=1, default=str))
fp32 = step["fp32"]["img_s"]
w_on, w_off = loader[WORKERS]["img_s"], loader[0]["img_s"]
print("\n================ gpu_check summary ================")
print(f"device            {results['device']}, torch {results['torch']}, {GPUS} GPU(s)")
print(f"step fp32         {fp32:9.1f} img/s")
print(f"step AMP          {step['amp']['img_s']:9.1f} img/s  x{ratio(step['amp']['img_s'], fp32):.2f}")
print(f"step AMP + CL     {step['amp_cl']['img_s']:9.1f} img/s  x{ratio(step['amp_cl']['img_s'], fp32):.2f}")
print(f"run, {WORKERS} workers    {fmt(w_on, 1):>9} img/s  {fmt(ratio(w_on, step['amp_cl']['img_s']), 2)} of the step ceiling")
print(f"run, 0 workers    {fmt(w_off, 1):>9} img/s  {WORKERS} workers x{fmt(ratio(w_on, w_off), 2)} vs 0")
if ddp is None:
    print(f"DDP               skipped ({GPUS} GPU(s))")
else:
    print(f"DDP, 2 ranks      {(ddp['end'] or {}).get('status')}; {ddp['ddp_line'] or 'NO parameter check line'}"
          f"; {fmt(ddp['img_s'], 1)} img/s")
print(f"details           {SCRATCH / 'results.json'}")
PYEOF
