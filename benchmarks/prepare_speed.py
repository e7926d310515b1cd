"""Frames per second of `surgtui data prepare` (decode fps1 MP4 → JPEG + COCO) on synthetic 1280x720 videos.

python benchmarks/prepare_speed.py [--videos 2] [--frames 15] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from surgtui.cli.data import parse_size
from surgtui.data.prepare import prepare
from surgtui.data.writers import plan_videos, write_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", type=int, default=15)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = parse_size(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp, "raw"), Path(tmp, "out")
        start = time.perf_counter()
        write_synthetic(
            raw, "simsurgskill", plan_videos(["train_v1"], args.videos, args.frames), width, height, 0
        )
        synth_s = time.perf_counter() - start
        frames = args.videos * args.frames
        start = time.perf_counter()
        report = prepare(raw, out)
        prepare_s = time.perf_counter() - start
        start = time.perf_counter()
        prepare(raw, out)
        resume_s = time.perf_counter() - start
    assert report.splits["train_v1"].images == frames
    print(f"synth (render + encode): {frames / synth_s:.1f} frames/s  ({frames} frames {width}x{height})")
    print(f"prepare (decode + JPEG): {frames / prepare_s:.1f} frames/s")
    print(f"prepare re-run (resume): {resume_s * 1000:.0f} ms for {args.videos} videos")


if __name__ == "__main__":
    main()
