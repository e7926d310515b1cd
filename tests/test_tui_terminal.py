"""`surgtui launch` in a real terminal (tmux): 80x24 works, colours stay in 16 or 256, --no-mouse, no torch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_tui_fixtures import ROOT, copy_experiments, write_runs

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """One tmux session running the app."""

    def __init__(self, cwd: Path, env: dict[str, str], args: tuple[str, ...] = (), size: str = "80x24") -> None:
        self.name = f"surgtui-test-{os.getpid()}-{time.monotonic_ns()}"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        command = (f"cd {cwd} && env PYTHONPATH={ROOT} {exports} {sys.executable} -m surgtui launch "
                   f"--dir experiments --runs-dir runs {' '.join(args)}")
        width, height = size.split("x")
        self._tmux("new-session", "-d", "-s", self.name, "-x", width, "-y", height, command)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout

    def screen(self, escapes: bool = False) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name, *(["-e"] if escapes else []))

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def mouse_tracking(self) -> bool:
        return self._tmux("display", "-p", "-t", self.name, "#{mouse_any_flag}").strip() == "1"

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    copy_experiments(tmp_path / "experiments")
    write_runs(tmp_path / "runs")
    return tmp_path


def _colour_codes(screen: str) -> set[str]:
    """Every colour an SGR sequence on the screen sets: '31', '38;5;208', '38;2;1;2;3', ..."""
    codes = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", screen):
        parts = params.split(";")
        i = 0
        while i < len(parts):
            if parts[i] in ("38", "48") and i + 1 < len(parts):
                n = 3 if parts[i + 1] == "5" else 5
                codes.add(";".join(parts[i:i + n]))
                i += n
            else:
                codes.add(parts[i])
                i += 1
    return codes


@pytest.mark.parametrize("system", ["standard", "256"])
def test_every_screen_fits_80x24_in_16_and_256_colours(workdir: Path, system: str) -> None:
    term = Terminal(workdir, {"TEXTUAL_COLOR_SYSTEM": system})
    try:
        shots = {"experiments": term.wait_for("baseline.toml")}
        shots["experiments"] = term.wait_for("mAP50-95")
        escapes = [term.screen(escapes=True)]
        term.keys("F3")
        shots["runs"] = term.wait_for("5 of 5 runs")
        escapes.append(term.screen(escapes=True))
        term.keys("F4")  # the newest run: the crashed one
        term.wait_for("loss by step")
        shots["monitor"] = term.wait_for("best mAP50-95")
        escapes.append(term.screen(escapes=True))
        term.keys("F1")
        shots["help"] = term.wait_for("Everywhere")
        escapes.append(term.screen(escapes=True))
        term.keys("Escape", "C-q")
    finally:
        term.close()
    assert "^l Launch" in shots["experiments"] and "Save as" in shots["experiments"]
    assert "✗ crashed" in shots["runs"] and "■ stopped" in shots["runs"] and "f2 Experiments" in shots["runs"]
    assert "loss by step" in shots["monitor"] and "gradient norm" in shots["monitor"]
    codes = set().union(*map(_colour_codes, escapes))
    assert not [c for c in codes if c.startswith(("38;2", "48;2"))], "24-bit colour with a smaller palette"
    if system == "standard":
        assert not [c for c in codes if c.startswith(("38;5", "48;5"))], "256-colour codes in 16-colour mode"


def test_no_mouse_leaves_the_mouse_to_the_terminal(workdir: Path) -> None:
    for args, tracked in (((), True), (("--no-mouse",), False)):
        term = Terminal(workdir, {}, args)
        try:
            term.wait_for("baseline.toml")
            assert term.mouse_tracking() is tracked
            term.keys("C-q")
        finally:
            term.close()


def test_the_ui_never_imports_torch_or_the_engine() -> None:
    code = ("import sys, surgtui.tui.app; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'wandb') "
            "or m.startswith('surgtui.engine')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
