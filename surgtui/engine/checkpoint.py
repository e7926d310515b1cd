"""Checkpoints: written atomically and durably (surgtui.fileio.atomic_write), loadable for resume or inference."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surgtui.config.load import resolve_data
from surgtui.engine import faults
from surgtui.engine.model import Detector, build_model
from surgtui.errors import UserError, one_line
from surgtui.fileio import atomic_write

CHECKPOINT_VERSION = 1


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` so that a reader (or a crash) sees the old file or the new one, never half.

    On any failure (a full disk) the temp file is removed, so its space comes back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, binary=True, durable=True) as fh:  # fsynced: resume depends on it
        out = _WriteErrors(fh)
        try:
            torch.save({"version": CHECKPOINT_VERSION, **state}, out)
        except RuntimeError:
            if out.error is None:
                raise
            # torch's zip writer reports a failed write as "unexpected pos": say what the file system said.
            raise OSError(out.error.errno, f"{out.error.strerror} (writing {path})") from None
        faults.hit(f"checkpoint:{path.stem}")  # written, not yet in place


class _WriteErrors:
    """A file that remembers the OSError of a failed write (a full disk), which torch.save hides."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.error = fh, None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """A checkpoint as saved; a missing, truncated or foreign file is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    try:
        # Not weights_only: the checkpoint holds RNG states (numpy, python) besides tensors.
        ck = torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
    except Exception as exc:
        raise UserError(f"{path}: not a readable surgtui checkpoint ({one_line(exc)})") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise UserError(f"{path}: not a surgtui checkpoint (no model weights and config in it)")
    return ck


def model_weights(ck: dict[str, Any]) -> dict[str, Any]:
    """The weights a checkpoint's validation scored: its EMA's when it has one."""
    return ck["ema"]["module"] if ck.get("ema") else ck["model"]


def load_for_inference(path: str | Path, device: str | torch.device = "cpu") -> tuple[Detector, Any]:
    """The model in a checkpoint (its EMA weights when it has them) and its experiment, in eval mode."""
    ckpt = load_checkpoint(path)
    exp, _ = resolve_data(ckpt["config"], f"{path} (config)")
    exp.model.pretrained = False  # the checkpoint carries every weight
    model = build_model(exp.model)
    model.load_state_dict(model_weights(ckpt))
    return model.to(device).eval(), exp
