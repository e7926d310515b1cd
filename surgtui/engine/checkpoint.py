"""Checkpoints: written atomically and durably (surgtui.fileio.atomic_write), loadable for resume or inference.

Every file holds tensors and plain Python values only, so it loads with `torch.load(weights_only=True)`:
nothing in a checkpoint can run code when it is read.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surgtui.config.load import resolve_data
from surgtui.config.schema import CLASS_NAMES
from surgtui.engine import faults
from surgtui.engine.model import Detector, build_model
from surgtui.errors import UserError, one_line
from surgtui.fileio import atomic_write

# 2: RNG states as tensors and plain values (weights-only loadable); 1: numpy's RNG state pickled as an ndarray.
CHECKPOINT_VERSION = 2


def rng_state() -> dict[str, Any]:
    """Python's, numpy's, torch's (and CUDA's) RNG states as tensors and plain values."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`'s states; also a version-1 checkpoint's (python's tuple, numpy's ndarray tuple)."""
    py = state["python"]
    if isinstance(py, dict):
        py = (py["version"], tuple(py["state"].tolist()), py["gauss"])
    random.setstate(py)
    npy = state["numpy"]
    if isinstance(npy, dict):
        keys = npy["keys"].numpy().astype(np.uint32)
        npy = (npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    np.random.set_state(npy)
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


def _numpy_rng_globals() -> list[Any]:
    """What a version-1 checkpoint's pickled numpy RNG state needs: an array of uint32 and its dtype."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct
    # A file pickled under numpy 1 names numpy.core, under numpy 2 numpy._core: the same function.
    names = ("numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct")
    return [*((_reconstruct, name) for name in names), np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _weights_only_load(path: Path, map_location: str | torch.device, mmap: bool) -> Any:
    """torch.load(weights_only=True); a version-1 checkpoint also gets numpy's array type, nothing more."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        with torch.serialization.safe_globals(_numpy_rng_globals()):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """A checkpoint as saved, read weights-only (no pickled code runs); a missing, truncated or
    foreign file is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    try:
        ck = _weights_only_load(path, map_location, mmap)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f"Python objects ({found.group(1)})" if found else "Python objects"
        raise UserError(
            f"{path}: not a surgtui checkpoint: it holds {what} that a weights-only load refuses "
            "(surgtui reads checkpoints with torch.load(weights_only=True))"
        ) from None
    except Exception as exc:
        raise UserError(f"{path}: not a readable surgtui checkpoint ({one_line(exc)})") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise UserError(f"{path}: not a surgtui checkpoint (no model weights and config in it)")
    return ck


def shareable_weights(state: dict[str, Any]) -> dict[str, Any]:
    """What `weights/model.pt` holds: the weights validation scored (the EMA's), the experiment and the
    class names, which epoch they are from; no optimizer, scaler or RNG state (not resumable)."""
    return {
        "model": model_weights(state),
        "config": state["config"],
        "names": list(CLASS_NAMES),
        "epoch": state.get("epoch"),
        "best": state.get("best"),
    }


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
