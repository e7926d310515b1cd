"""What `predict` and `eval` share: the checkpoint's model on a device, a progress bar, the exit-code wrapper."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from surgtui.config.schema import Experiment
from surgtui.engine.checkpoint import load_checkpoint, load_for_inference
from surgtui.engine.model import Detector
from surgtui.errors import ExitCode, UserError, one_line


def checkpoint_info(path: Path) -> dict[str, Any]:
    """Check that `path` is a surgtui checkpoint, read weights-only (UserError otherwise); its epoch,
    step and best. Memory-maps the file, so the tensors are not read twice (load_model reads them)."""
    ckpt = load_checkpoint(path, "cpu", mmap=True)
    return {"epoch": ckpt.get("epoch"), "step": ckpt.get("step"), "best": ckpt.get("best")}


def load_model(path: Path, device: torch.device) -> tuple[Detector, Experiment, dict[str, Any]]:
    """The checkpoint's model (EMA weights, eval mode) on `device`, its experiment, and checkpoint_info.

    On CUDA the model is laid out channels-last with cuDNN autotuning, as the training process held it.
    """
    info = checkpoint_info(path)
    try:
        model, exp = load_for_inference(path, "cpu")
    except UserError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:  # weights that do not fit the config
        raise UserError(f"{path}: checkpoint weights do not fit its config ({one_line(exc)})") from None
    model = model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True  # a few input sizes (one per aspect ratio)
    return model, exp, info


def user_error_text(exc: UserError) -> str:
    """One line, also for a UserError re-raised from a DataLoader worker (its text holds a traceback)."""
    text = str(exc).strip()
    if "Traceback" in text:
        text = text.splitlines()[-1]
        text = text.split("UserError: ", 1)[-1]
    return text.splitlines()[0] if text else "error"


def main_wrapper(run: Callable[[], int]) -> int:
    """UserError -> `surgtui: error: ...` (one line), its exit code; Ctrl-C -> STOPPED; anything else: traceback."""
    try:
        return run()
    except UserError as exc:
        print(f"surgtui: error: {user_error_text(exc)}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("surgtui: interrupted", file=sys.stderr, flush=True)
        return ExitCode.STOPPED


class ProgressBar:
    """A transient Rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, label: str, total: int | None, enabled: bool, stderr: bool = False) -> None:
        self._bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            console=Console(stderr=stderr),
        )
        self._task = self._bar.add_task(label, total=total)
        self._bar.start()

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
