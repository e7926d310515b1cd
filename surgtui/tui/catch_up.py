"""Fold a long event history in a second process, so both cores work when a big run opens.

Opening a finished run with 100,000 steps costs about 0.65 s of JSON parsing and
folding; in a thread it shares one interpreter lock with the UI thread, which is
busy mounting the monitor at the same moment. A child process (the other core)
folds the history into a `RunFollower` and hands it back pickled: it is small,
since curves are bounded min/max buckets.

`python -m surgtui.tui.catch_up RUN_DIR CAPACITY` writes the pickled follower on stdout.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

from surgtui.runs.layout import EVENTS_FILE
from surgtui.tui.follower import RunFollower

# Below this the child's start-up (~0.1 s) costs more than folding in place.
SUBPROCESS_FROM_BYTES = 4 << 20


def fold(run_dir: Path, capacity: int) -> RunFollower:
    follower = RunFollower(run_dir, capacity)
    while follower.poll():
        pass
    return follower


def caught_up(run_dir: Path, capacity: int = 1024) -> RunFollower:
    """A follower that has read the whole file so far: in a child process when the file is long."""
    try:
        size = (Path(run_dir) / EVENTS_FILE).stat().st_size
    except OSError:
        size = 0
    if size >= SUBPROCESS_FROM_BYTES:
        try:
            return fold_in_child(run_dir, capacity)
        except (OSError, subprocess.SubprocessError, pickle.UnpicklingError, EOFError):
            pass  # the child could not do it: do it here
    return fold(Path(run_dir), capacity)


def fold_in_child(run_dir: Path, capacity: int) -> RunFollower:
    done = subprocess.run(
        [sys.executable, "-m", "surgtui.tui.catch_up", str(run_dir), str(capacity)],
        capture_output=True,
        timeout=600,
        check=True,
    )
    return pickle.loads(done.stdout)


def main(argv: list[str]) -> int:
    follower = fold(Path(argv[0]), int(argv[1]))
    sys.stdout.buffer.write(pickle.dumps(follower, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
