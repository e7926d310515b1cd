"""Checkpoints: written atomically (tmp file + os.replace), loadable for resume or inference."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surgtui.config.load import resolve_data
from surgtui.engine.model import Detector, build_model
from surgtui.errors import UserError

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
    """Write `state` so that a reader (or a crash) sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"version": CHECKPOINT_VERSION, **state}, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    # Not weights_only: the checkpoint holds RNG states (numpy, python) besides tensors.
    return torch.load(path, map_location=map_location, weights_only=False)


def load_for_inference(path: str | Path, device: str | torch.device = "cpu") -> tuple[Detector, Any]:
    """The model in a checkpoint (its EMA weights when it has them) and its experiment, in eval mode."""
    ckpt = load_checkpoint(path)
    exp, _ = resolve_data(ckpt["config"], f"{path} (config)")
    exp.model.pretrained = False  # the checkpoint carries every weight
    model = build_model(exp.model)
    model.load_state_dict(ckpt["ema"]["module"] if ckpt.get("ema") else ckpt["model"])
    return model.to(device).eval(), exp
