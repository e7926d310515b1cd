"""Training DataLoader images/s (letterbox + augmentation, 2 workers) against bare JPEG decoding in the same run.

python benchmarks/dataloader_speed.py [--images 48] [--size 1280x720] [--img-size 640] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from surgtui.cli.data import parse_size
from surgtui.config.schema import AugmentConfig
from surgtui.data import layouts
from surgtui.data.writers import plan_frames, write_synthetic
from surgtui.engine.datasets import DetectionDataset, collate


def decode_rate(paths: list[Path]) -> float:
    """Images/s of PIL full-size JPEG decode to an RGB array, one process."""
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as im:
            np.asarray(im.convert("RGB"))
    return len(paths) / (time.perf_counter() - start)


def loader_rate(dataset: DetectionDataset, workers: int, batch: int) -> float:
    """Images/s over one pass, after a warm-up pass that starts the workers."""
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=workers > 0,
    )
    for _ in loader:
        pass
    start = time.perf_counter()
    for _ in loader:
        pass
    return len(dataset) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    width, height = parse_size(args.size)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic(root, "coco", plan_frames({"train": args.images}, 8), width, height, 0)
        records = layouts.read_split(root, "train", "coco")
        decode_rate([r.path for r in records])  # warm the page cache
        bare = decode_rate([r.path for r in records])
        train = loader_rate(
            DetectionDataset(records, args.img_size, AugmentConfig()), args.workers, args.batch
        )
        val = loader_rate(DetectionDataset(records, args.img_size), args.workers, args.batch)
    print(f"bare JPEG decode ({width}x{height}, 1 process): {bare:.1f} images/s")
    print(
        f"train loader ({args.img_size} px, augmented, {args.workers} workers): {train:.1f} images/s "
        f"= {train / bare:.2f}x bare decode"
    )
    print(
        f"val loader ({args.img_size} px, letterbox only, {args.workers} workers): {val:.1f} images/s "
        f"= {val / bare:.2f}x bare decode"
    )


if __name__ == "__main__":
    main()
