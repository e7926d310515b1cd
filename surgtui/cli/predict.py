"""`surgtui predict` and `surgtui eval` on the CLI side: check the arguments, then start the engine module.

No torch here (the CLI never loads it): what can be checked without it (the weights file
exists and is a torch archive, the run has weights, the source exists, has a known kind and,
when it is one image or video, opens; the options are in range) fails here with one line and
exit 2; the engine process
(`python -m surgtui.engine.predict` / `surgtui.engine.eval_main`) checks the rest (a file
that is not a surgtui checkpoint, a frame of a folder or video that does not decode) the same way.
The checks live in surgtui/runs/inference.py: the engine modules run them too when started by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from surgtui.runs.inference import (
    PredictOptions,
    check_eval_args,
    check_model_file,
    check_predict_args,
    check_weights_file,
    resolve_weights,
)


def run_engine(module: str, args: list[str]) -> int:
    """Run `python -m surgtui.engine.<module> ARGS` in the foreground, output inherited; its exit code."""
    return subprocess.call([sys.executable, "-m", f"surgtui.engine.{module}", *args])


def predict_command(
    weights: str,
    source: Path,
    out: Path,
    conf: float,
    iou: float,
    device: str,
    batch: int,
    no_images: bool,
    runs_dir: Path | None,
    options: PredictOptions = PredictOptions(),
) -> int:
    check_predict_args(source, out, conf, iou, batch, device, options)
    path = check_model_file(resolve_weights(weights, runs_dir))  # a checkpoint, or export-model's file
    args = [
        str(path),
        str(source),
        "--out",
        str(out),
        "--conf",
        repr(conf),
        "--iou",
        repr(iou),
        "--device",
        device,
        "--batch",
        str(batch),
    ]
    return run_engine("predict", args + (["--no-images"] if no_images else []) + options.engine_args())


def eval_command(
    weights: str,
    data: str | None,
    split: str | None,
    json_: bool,
    device: str,
    batch: int | None,
    workers: int | None,
    runs_dir: Path | None,
) -> int:
    check_eval_args(data, batch, device, split)
    path = check_weights_file(resolve_weights(weights, runs_dir))
    args = [str(path)] + ([data] if data is not None else []) + ["--device", device]
    args += (["--split", split] if split else []) + (["--json"] if json_ else [])
    args += (["--batch", str(batch)] if batch else []) + (
        ["--workers", str(workers)] if workers is not None else []
    )
    return run_engine("eval_main", args)
