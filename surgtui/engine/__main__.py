"""`python -m surgtui.engine RUN_DIR [--resume]`: train one run (see surgtui/engine/train.py)."""

from __future__ import annotations

import argparse
import signal
import sys

from surgtui.runs.layout import CONFIG_FILE, LAST_WEIGHTS, WEIGHTS_DIR


def main(argv: list[str] | None = None) -> int:
    # Loading torch takes a second or two: a stop sent meanwhile is kept, not a KeyboardInterrupt traceback.
    early: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: early.append(signum))
    parser = argparse.ArgumentParser(prog="python -m surgtui.engine", description="Train the run in RUN_DIR.")
    parser.add_argument("run_dir", help=f"run directory holding {CONFIG_FILE}")
    parser.add_argument(
        "--resume", action="store_true", help=f"continue from RUN_DIR/{WEIGHTS_DIR}/{LAST_WEIGHTS}"
    )
    args = parser.parse_args(argv)
    from surgtui.engine.train import run  # torch loads here, after argument errors are reported

    return run(args.run_dir, args.resume, early, lock_until_exit=True)


if __name__ == "__main__":
    sys.exit(main())
