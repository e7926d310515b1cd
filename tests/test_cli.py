"""The CLI as a user meets it: exit codes, one-line errors, no traceback, a light start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, surgtui


def test_version_and_help() -> None:
    r = surgtui("--version")
    assert r.returncode == 0 and r.stdout.startswith("surgtui ")
    r = surgtui("--help")
    assert r.returncode == 0
    for cmd in (
        "launch",
        "run",
        "runs",
        "show",
        "compare",
        "stop",
        "resume",
        "attach",
        "export",
        "data",
        "predict",
        "validate",
        "new",
    ):
        assert f"  {cmd} " in r.stdout


def test_cli_import_loads_no_heavy_library() -> None:
    code = "import sys, surgtui.cli.app; print(sorted(m for m in ('torch','torchvision','wandb','textual','pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_validate_shipped_experiments() -> None:
    files = sorted(str(p) for p in (ROOT / "experiments").glob("*.toml"))
    r = surgtui("validate", *files)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok (") == len(files)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[optim]\nlr = \n", "TOML syntax error"),
        ("[optim]\nlrr = 0.1\n", "did you mean 'optim.lr'"),
        ("[optim]\nlr = -0.001\n", "optim.lr: must be > 0"),
        ("[train]\nepochs = 0\n", "train.epochs: must be >= 1"),
        ('variant = "YOLOv5-Tiny"\n', "unknown variant 'YOLOv5-Tiny'"),
        ('[optim]\nlr = "fast"\n', "optim.lr: must be a number"),
    ],
)
def test_bad_experiments_exit_2_with_one_line(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    r = surgtui("validate", str(p))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and str(p) in lines[0]
    assert "Traceback" not in r.stderr + r.stdout


def test_resolved_prints_what_a_run_freezes() -> None:
    r = surgtui("validate", "experiments/smoke.toml", "--resolved", "--set", "optim.lr=0.01")
    assert r.returncode == 0
    assert (
        "lr = 0.01" in r.stdout
        and "[data.synthetic]" in r.stdout
        and "# override: --set optim.lr=0.01" in r.stdout
    )


def test_env_overrides_are_announced() -> None:
    import os

    env = dict(os.environ, NUM_EPOCHS="3")
    r = surgtui("validate", "experiments/smoke.toml", env=env)
    assert r.returncode == 0 and "NUM_EPOCHS=3 overrides train.epochs" in r.stderr and "3 epochs" in r.stdout


def test_new_writes_a_valid_commented_file(tmp_path: Path) -> None:
    r = surgtui("new", "mine", "--variant", "YOLOv5-Focal", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "mine.toml").read_text()
    assert 'variant = "YOLOv5-Focal"' in text and text.count("#") > 10
    assert surgtui("validate", str(tmp_path / "mine.toml")).returncode == 0
    r = surgtui("new", "copy", "--from", "experiments/focal.toml", "--dir", str(tmp_path))
    assert r.returncode == 0 and 'name = "copy"' in (tmp_path / "copy.toml").read_text()
    r = surgtui("new", "mine", "--dir", str(tmp_path))
    assert r.returncode == 2 and "already exists" in r.stderr


def test_unknown_run_and_missing_file_exit_2(tmp_path: Path) -> None:
    r = surgtui("show", "nope", "--runs-dir", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = surgtui("run", str(tmp_path / "missing.toml"), "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2 and "no such experiment file" in r.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-made


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    r = surgtui("--debug", "show", "nope", "--runs-dir", str(tmp_path))
    assert r.returncode != 0 and "Traceback" in r.stderr
