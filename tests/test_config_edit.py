"""Editing API: one value changes, every comment and the key order stay, invalid edits write nothing."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from surgtui.config.edit import save_as, set_field, set_fields
from surgtui.config.load import load_experiment
from surgtui.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    p = tmp_path / "baseline.toml"
    p.write_bytes((ROOT / "experiments" / "baseline.toml").read_bytes())
    return p


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


def test_set_field_changes_only_that_value(baseline: Path) -> None:
    before = baseline.read_text()
    set_field(baseline, "optim.lr", 0.002)
    after = baseline.read_text()
    diff = changed_lines(before, after)
    assert diff == [
        "- lr = 0.001                # learning rate of the neck and heads (randomly initialised)",
        "+ lr = 0.002                # learning rate of the neck and heads (randomly initialised)",
    ]
    assert load_experiment(baseline, env={}).experiment.optim.lr == 0.002


def test_comments_survive_byte_for_byte_outside_the_change(baseline: Path) -> None:
    before = baseline.read_text()
    set_fields(baseline, {"loss.focal": True, "train.epochs": 80, "model.backbone": "resnet34"})
    after = baseline.read_text()
    before_comments = [line.split("#", 1)[1] for line in before.splitlines() if "#" in line]
    after_comments = [line.split("#", 1)[1] for line in after.splitlines() if "#" in line]
    assert before_comments == after_comments
    assert len(changed_lines(before, after)) == 6


def test_new_section_is_added_as_a_table(tmp_path: Path) -> None:
    p = tmp_path / "only.toml"
    p.write_text('# just a preset\nvariant = "YOLOv5-Nano"\n')
    set_field(p, "data.synthetic.width", 320)
    text = p.read_text()
    assert text.startswith('# just a preset\nvariant = "YOLOv5-Nano"\n')
    assert "[data.synthetic]" in text and "width = 320" in text
    assert load_experiment(p, env={}).experiment.data.synthetic.width == 320


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("optim.lr", -1.0, "optim.lr: must be > 0"),
        ("optim.lrr", 0.1, "did you mean 'optim.lr'"),
        ("train.epochs", "many", "must be an integer"),
    ],
)
def test_invalid_edit_leaves_the_file_untouched(baseline: Path, key: str, value: object, needle: str) -> None:
    before = baseline.read_bytes()
    mtime = baseline.stat().st_mtime_ns
    with pytest.raises(ConfigError, match=needle):
        set_field(baseline, key, value)
    assert baseline.read_bytes() == before and baseline.stat().st_mtime_ns == mtime
    assert [p.name for p in baseline.parent.iterdir()] == ["baseline.toml"]  # no temp file left


def test_save_as_renames_and_refuses_to_overwrite(baseline: Path) -> None:
    dest = save_as(baseline.read_text(), baseline.parent / "mine.toml")
    assert load_experiment(dest, env={}).experiment.name == "mine"
    with pytest.raises(ConfigError, match="already exists"):
        save_as(baseline.read_text(), dest)
