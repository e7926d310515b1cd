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

    def __init__(
        self, cwd: Path, env: dict[str, str], args: tuple[str, ...] = (), size: str = "80x24"
    ) -> None:
        self.name = f"surgtui-test-{os.getpid()}-{time.monotonic_ns()}"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        command = (
            f"cd {cwd} && env PYTHONPATH={ROOT} {exports} {sys.executable} -m surgtui launch "
            f"--dir experiments --runs-dir runs {' '.join(args)}"
        )
        width, height = size.split("x")
        self._tmux("new-session", "-d", "-s", self.name, "-x", width, "-y", height, command)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout

    def screen(self, escapes: bool = False) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name, *(["-e"] if escapes else []))

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str, delay: float = 0.0) -> None:
        """Type like a person (`delay` between keys) or, with no delay, as fast as a terminal sends keys."""
        if not delay:
            self._tmux("send-keys", "-t", self.name, "-l", text)
        for char in text if delay else ():
            self._tmux("send-keys", "-t", self.name, "-l", char)
            time.sleep(delay)

    def paste(self, text: str) -> None:
        """A paste, bracketed as a terminal sends it when the app asks for that."""
        self._tmux("set-buffer", "-b", self.name, text)
        self._tmux("paste-buffer", "-p", "-d", "-b", self.name, "-t", self.name)

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def wait_for(self, text: str | re.Pattern[str], timeout: float = 20.0) -> str:
        """The screen once `text` (a string, or a compiled pattern) is on it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            if text.search(screen) if isinstance(text, re.Pattern) else text in screen:
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
                codes.add(";".join(parts[i : i + n]))
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
    code = (
        "import sys, surgtui.tui.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'wandb') "
        "or m.startswith('surgtui.engine')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def _attributes(line: str) -> list[frozenset[str]]:
    """The bold/reverse state of every visible character of a captured line (SGR parsed)."""
    state: set[str] = set()
    out: list[frozenset[str]] = []
    for escape, _char in re.findall(r"(\x1b\[[0-9;]*m)|(.)", line):
        if not escape:
            out.append(frozenset(state))
            continue
        codes = escape[2:-1].split(";") if escape[2:-1] else ["0"]
        skip = 0
        for i, code in enumerate(codes):
            if skip:
                skip -= 1
            elif code in ("38", "48"):
                skip = 2 if codes[i + 1 : i + 2] == ["5"] else 4
            elif code == "0":
                state.clear()
            elif code == "1":
                state.add("bold")
            elif code == "7":
                state.add("reverse")
            elif code == "22":
                state.discard("bold")
            elif code == "27":
                state.discard("reverse")
    return out


def _label_style(screen: str, label: str) -> frozenset[str]:
    """Attributes on a form label (`lr`, `optimizer`): shared by all of its characters."""
    for line in screen.splitlines():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        at = plain.find(f"│ {label} ")
        if at < 0:
            at = plain.find(f"│ {label}  ")
        if at >= 0:
            attrs = _attributes(line)[at + 2 : at + 2 + len(label)]
            return frozenset.intersection(*attrs)
    raise AssertionError(f"no {label!r} label on the screen:\n{screen}")


def _focused_label(term: Terminal) -> str:
    """The form label drawn bold or reversed: the focused field's."""
    for line in term.screen(escapes=True).splitlines():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        for match in re.finditer(r"│ ([a-zA-Z][a-zA-Z0-9 ]*?)(?: \*)? {2,}", plain):
            attrs = _attributes(line)[match.start(1) : match.end(1)]
            if attrs and "reverse" in frozenset.intersection(*attrs):
                return match.group(1)
    return ""


def _clear_field(term: Terminal, label: str, timeout: float = 10.0) -> None:
    """ctrl+u, then wait until the field is empty: a binding's action can be overtaken by the next key."""
    term.keys("C-u")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in term.screen().splitlines():
            head, marked, rest = line.partition(f"│ {label} * ")
            if marked and not rest.strip(" │▁▂▃▄▅▆▇█▎▍▌"):
                return
        time.sleep(0.05)
    raise AssertionError(f"{label} never emptied:\n{term.screen()}")


def _into_lr(term: Terminal, timeout: float = 20.0) -> None:
    """Enter the form and tab to `lr`, one field at a time (a loaded machine lags behind keys)."""
    term.wait_for("mAP50-95")
    term.keys("Enter")
    end = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < end:
        label = _focused_label(term)
        if label == "lr":
            return
        if label and label != seen:
            seen = label
            term.keys("Tab")
        time.sleep(0.05)
    raise AssertionError(f"never reached lr (last focused: {seen!r}):\n{term.screen()}")


@pytest.mark.parametrize(
    "env",
    [{"TEXTUAL_COLOR_SYSTEM": "standard"}, {"TEXTUAL_COLOR_SYSTEM": "256"}, {"NO_COLOR": "1"}],
    ids=["16", "256", "no-color"],
)
def test_the_focused_field_stands_out_without_colour(workdir: Path, env: dict[str, str]) -> None:
    term = Terminal(workdir, env, size="100x30")
    try:
        _into_lr(term)  # each step waits for the next field's label to be drawn reversed
        screen = term.screen(escapes=True)
        term.keys("C-q")
    finally:
        term.close()
    assert {"bold", "reverse"} <= _label_style(screen, "lr")
    for other in ("optimizer", "assignment", "label smoothing"):
        assert not _label_style(screen, other) & {"reverse"}, other


@pytest.mark.parametrize("how", ["typed", "fast", "pasted"])
def test_an_edit_typed_or_pasted_is_saved_exactly(workdir: Path, how: str) -> None:
    path = workdir / "experiments" / "baseline.toml"
    term = Terminal(workdir, {"TEXTUAL_COLOR_SYSTEM": "256"})
    try:
        _into_lr(term)
        _clear_field(term, "lr")
        if how == "pasted":
            term.paste("0.00105")
        else:
            term.type("0.00105", delay=0.15 if how == "typed" else 0.0)
        # The mark follows the text by a frame: wait for both, exactly as typed and marked as an edit.
        term.wait_for(re.compile(r"│ lr \* +0\.00105 "), timeout=10)
        term.keys("C-s")
        term.wait_for("Save these changes")
        term.keys("y")
        term.wait_for("saved baseline.toml")
        term.keys("C-q")
    finally:
        term.close()
    assert "lr = 0.00105 " in path.read_text()


def test_quit_with_unsaved_edits_asks_first(workdir: Path) -> None:
    path = workdir / "experiments" / "baseline.toml"
    before = path.read_text()
    term = Terminal(workdir, {"TEXTUAL_COLOR_SYSTEM": "standard"})
    try:
        _into_lr(term)
        _clear_field(term, "lr")
        term.type("0.003")
        term.wait_for("0.003")
        term.keys("C-q")
        dialog = term.wait_for("Discard and quit")
        term.keys("c")  # cancel: still there, edit intact
        time.sleep(0.5)
        assert term.alive() and "0.003" in term.screen()
        term.keys("C-q")
        term.wait_for("Discard and quit")
        term.keys("s")
        end = time.monotonic() + 10
        while term.alive() and time.monotonic() < end:
            time.sleep(0.1)
        assert not term.alive(), term.screen()
    finally:
        term.close()
    assert "Save and quit (s)" in dialog and "+lr = 0.003" in dialog
    assert path.read_text() == before.replace("lr = 0.001 ", "lr = 0.003 ")


def test_a_broken_experiment_file_leaves_the_ui_running(workdir: Path) -> None:
    (workdir / "experiments" / "aaa.toml").write_text('name = "aaa"\n[optim\nlr = 0.001\n')
    term = Terminal(workdir, {})
    try:
        screen = term.wait_for("TOML syntax")
        term.keys("Down")
        term.wait_for("baseline.toml")
        time.sleep(0.5)
        assert term.alive()
        term.keys("C-q")
    finally:
        term.close()
    assert "invalid" in screen
