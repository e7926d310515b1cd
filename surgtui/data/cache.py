"""The synthetic data set behind `data.source = "synthetic"`: generated once per parameter set, then reused."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from surgtui.config.schema import SyntheticConfig
from surgtui.data.synth import GENERATOR_VERSION
from surgtui.data.writers import plan_frames, write_synthetic
from surgtui.errors import UserError
from surgtui.fileio import staging_dir

TRAIN_SPLIT, VAL_SPLIT = "train", "val"
FRAMES_PER_VIDEO = 8  # a new tissue background every 8 frames


def cache_root(cache_dir: str = "") -> Path:
    """`data.cache_dir`, else $SURGTUI_CACHE, else $XDG_CACHE_HOME/surgtui, else ~/.cache/surgtui."""
    if cache_dir or os.environ.get("SURGTUI_CACHE"):
        return Path(cache_dir or os.environ["SURGTUI_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "surgtui"


def check_synthetic_split(split: str) -> str:
    """`split` if the synthetic set has it; UserError naming --split otherwise."""
    if split not in (TRAIN_SPLIT, VAL_SPLIT):
        raise UserError(f"--split {split!r}: the synthetic set has the splits {TRAIN_SPLIT} and {VAL_SPLIT}")
    return split


def synthetic_key(cfg: SyntheticConfig) -> str:
    """Stable name for one parameter set and generator version."""
    params = {**cfg.model_dump(), "generator": GENERATOR_VERSION, "frames_per_video": FRAMES_PER_VIDEO}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def synthetic_dataset(cfg: SyntheticConfig, root: Path) -> Path:
    """A COCO directory with splits `train` and `val` for `cfg`, generating it on first use.

    Generation happens in a temp directory renamed into place, so concurrent runs either
    find the finished set or build their own copy and keep whichever landed first.
    """
    final = root / "synthetic" / f"v{GENERATOR_VERSION}-{synthetic_key(cfg)}"
    if not final.is_dir():
        plan = plan_frames({TRAIN_SPLIT: cfg.train, VAL_SPLIT: cfg.val}, FRAMES_PER_VIDEO)
        with staging_dir(final) as tmp:
            write_synthetic(tmp, "coco", plan, cfg.width, cfg.height, cfg.seed)
    return final
