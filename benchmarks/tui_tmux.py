"""Drive `surgtui launch` in a real terminal (tmux): launch -> monitor -> stop -> quit, and print what was seen.

    .venv/bin/python benchmarks/tui_tmux.py [--colors 256|standard|truecolor]

Runs the real engine on a tiny experiment (about 20 s on a CPU), in a temporary folder.
Each step prints the screen as tmux holds it. The last checks: the run ended `stopped`,
quitting the UI left no process behind, and (with --colors 256 or standard) the app sent
no 24-bit colour codes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from surgtui.config.edit import set_fields
from surgtui.runs.store import list_runs

ROOT = Path(__file__).resolve().parent.parent
SESSION = f"surgtui-bench-{os.getpid()}"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def screen(escapes: bool = False) -> str:
    return tmux("capture-pane", "-p", "-t", SESSION, *(["-e"] if escapes else []))


def wait_for(pattern: str, timeout: float, what: str) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = screen()
        if re.search(pattern, text):
            return text
        time.sleep(0.2)
    raise SystemExit(f"FAILED waiting for {what} ({pattern!r}); the screen was:\n{screen()}")


def show(title: str, text: str) -> None:
    print(f"---- {title} " + "-" * max(0, 96 - len(title)))
    print(text.rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colors", default="256", choices=["256", "standard", "truecolor"])
    parser.add_argument("--size", default="100x30")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed (apt-get install -y tmux)")
        return 2
    width, height = args.size.split("x")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "experiments").mkdir()
        tiny = tmp / "experiments" / "tiny.toml"
        shutil.copy(ROOT / "experiments" / "smoke.toml", tiny)
        set_fields(
            tiny,
            {
                "name": "tiny",
                "description": "tmux benchmark",
                "train.epochs": 500,
                "data.synthetic.train": 16,
                "data.synthetic.val": 4,
                "model.img_size": 64,
                "logging.log_every": 1,
                "train.val_every": 500,
            },
        )
        env = f"SURGTUI_CACHE={tmp / 'cache'} TEXTUAL_COLOR_SYSTEM={args.colors} PYTHONPATH={ROOT}"
        cmd = (
            f"cd {tmp} && env {env} {sys.executable} -m surgtui launch --dir experiments --runs-dir runs; "
            "sleep 30"
        )  # keep the pane open after the app ends, to read its last screen
        tmux("new-session", "-d", "-s", SESSION, "-x", width, "-y", height, cmd)
        try:
            t0 = time.monotonic()
            show("experiments screen", wait_for(r"tiny", 30, "the experiment list"))
            print(f"(UI up in {time.monotonic() - t0:.1f} s)")
            tmux("send-keys", "-t", SESSION, "C-l")
            wait_for(r"running", 20, "the monitor of the new run")
            t1 = time.monotonic()
            show("monitor, engine running", wait_for(r"step [1-9]\d*/", 240, "the first training steps"))
            print(
                f"(first steps on screen {time.monotonic() - t1:.1f} s after launch: torch import and data)"
            )
            tmux("send-keys", "-t", SESSION, "s")
            show("stop dialog", wait_for(r"Stop \d{8}-\d{6}-tiny\?", 10, "the stop confirmation"))
            tmux("send-keys", "-t", SESSION, "y")
            show("monitor, run stopped", wait_for(r"■ stopped", 120, "status stopped"))
            if args.colors != "truecolor":
                truecolor = len(re.findall(r"\x1b\[[0-9;]*[34]8;2;", screen(escapes=True)))
                print(f"24-bit colour codes on screen with TEXTUAL_COLOR_SYSTEM={args.colors}: {truecolor}")
            tmux("send-keys", "-t", SESSION, "C-q")
            time.sleep(3)
            runs = list_runs(tmp / "runs")
            print(f"runs: {[(r.id, r.status, r.meta.get('exit_code')) for r in runs]}")
            alive = [r.id for r in runs if r.alive]
            print(f"engine processes still alive after quitting: {alive or 'none'}")
            ok = len(runs) == 1 and runs[0].status == "stopped" and not alive
            print("tmux drive:", "OK" if ok else "FAILED")
            return 0 if ok else 1
        finally:
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
