"""Experiment schema: presets, overrides, env variables, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomlkit

from surgtui.config.load import load_experiment, parse_value, resolve_data
from surgtui.config.variants import VARIANTS
from surgtui.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_file_with_only_a_variant_is_complete(tmp_path: Path, variant: str) -> None:
    r = load_experiment(write(tmp_path, f'variant = "{variant}"\n'), env={})
    exp = r.experiment
    assert exp.variant == variant and exp.name == "exp"

    def contains(resolved: dict, preset: dict) -> None:  # nested tables ([data.augment]) hold a subset
        for key, value in preset.items():
            if isinstance(value, dict):
                contains(resolved[key], value)
            else:
                assert resolved[key] == value, key

    contains(exp.to_dict(), VARIANTS[variant])


def test_defaults_are_the_seed_recommendations(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, ""), env={}).experiment
    assert (exp.loss.coord, exp.loss.conf, exp.loss.class_) == (0.1, 1.5, 0.8)
    assert exp.optim.backbone_lr_mult == 0.1 and exp.optim.weight_decay == 0.0005
    assert exp.optim.grad_clip == 10.0 and exp.schedule.warmup_frac == 0.1
    assert exp.schedule.kind == "cosine" and exp.loss.assignment == "iou_center"
    assert exp.optim.lr == 0.001 and exp.train.batch_size == 4


def test_legacy_is_the_before(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, 'variant = "YOLOv5-Legacy"\n'), env={}).experiment
    assert (exp.loss.coord, exp.loss.conf, exp.loss.class_) == (0.05, 1.0, 0.5)
    assert exp.loss.assignment == "size" and exp.optim.backbone_lr_mult == 1.0
    assert exp.schedule.warmup_frac == 0.0 and exp.schedule.kind == "constant"


def test_file_overrides_variant_field_by_field(tmp_path: Path) -> None:
    exp = load_experiment(
        write(tmp_path, 'variant = "YOLOv5-Focal"\n[loss]\nfocal_gamma = 1.5\n'), env={}
    ).experiment
    assert exp.loss.focal is True and exp.loss.focal_gamma == 1.5


def test_set_overrides_are_typed_by_toml(tmp_path: Path) -> None:
    p = write(tmp_path, "")
    r = load_experiment(
        p,
        [
            "optim.lr=0.002",
            "loss.focal=true",
            "data.source=/data/sim",
            "model.pretrained=weights.pt",
            "data.synthetic.width=320",
        ],
        env={},
    )
    e = r.experiment
    assert e.optim.lr == 0.002 and e.loss.focal is True and e.data.source == "/data/sim"
    assert e.model.pretrained == "weights.pt" and e.data.synthetic.width == 320
    assert any("optim.lr" in n for n in r.notes)
    assert parse_value("[1, 2]") == [1, 2] and parse_value("fast") == "fast"


def test_env_overrides_are_honoured_and_announced(tmp_path: Path) -> None:
    env = {"MODEL_VARIANT": "YOLOv5-Focal", "LEARNING_RATE": "0.003", "BATCH_SIZE": "16", "NUM_EPOCHS": "7"}
    r = load_experiment(write(tmp_path, 'variant = "YOLOv5-Small"\n'), env=env)
    e = r.experiment
    assert (e.variant, e.optim.lr, e.train.batch_size, e.train.epochs) == ("YOLOv5-Focal", 0.003, 16, 7)
    assert e.loss.focal is True
    assert len(r.notes) == 4 and all("overrides" in n for n in r.notes)


def test_set_beats_env(tmp_path: Path) -> None:
    r = load_experiment(write(tmp_path, ""), ["optim.lr=0.5"], env={"LEARNING_RATE": "0.003"})
    assert r.experiment.optim.lr == 0.5


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[optim]\nlr = \n", "line 2"),
        ("[optim]\nlrr = 0.1\n", "did you mean 'optim.lr'"),
        ("[optim]\nlr = -0.1\n", "optim.lr: must be > 0"),
        ("[train]\nepochs = 0\n", "train.epochs: must be >= 1"),
        ('variant = "YOLOv5-Huge"\n', "allowed: YOLOv5-Nano"),
        ('[optim]\nlr = "fast"\n', "optim.lr: must be a number, got 'fast'"),
        (
            '[model]\nbackbone = "vgg"\n',
            "must be one of resnet18, resnet34, resnet50, mobilenet_v3_large, regnet_x_400mf or efficientnet_b0",
        ),
        ("[model]\nimg_size = 100\n", "multiple of 32"),
        ("model = 3\n", "must be a table"),
    ],
)
def test_errors_name_file_key_and_allowed_values(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_experiment(p, env={})
    msg = str(info.value)
    assert msg.startswith(str(p)) and needle in msg and "\n" not in msg


def test_bad_override_names_the_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--set train.epochs=0: train.epochs"):
        load_experiment(write(tmp_path, ""), ["train.epochs=0"], env={})
    with pytest.raises(ConfigError, match="environment variable LEARNING_RATE"):
        load_experiment(write(tmp_path, ""), env={"LEARNING_RATE": "-1"})


def test_resolved_toml_round_trips(tmp_path: Path) -> None:
    r = load_experiment(ROOT / "experiments" / "focal.toml", ["optim.lr=0.01"], env={})
    text = r.to_toml()
    again, _ = resolve_data(tomlkit.parse(text).unwrap(), "frozen")
    assert again == r.experiment
    assert "override: --set optim.lr=0.01" in text


def test_shipped_experiments_validate() -> None:
    from surgtui.sweeps.spec import is_sweep_file, load_sweep

    for p in sorted((ROOT / "experiments").glob("*.toml")):
        if is_sweep_file(p):  # sweep-lr.toml: a sweep over smoke.toml
            assert load_sweep(p).experiment.parent == p.parent
            continue
        exp = load_experiment(p, env={}).experiment
        assert exp.name == p.stem
    smoke = load_experiment(ROOT / "experiments" / "smoke.toml", env={}).experiment
    assert (
        smoke.model.pretrained is False and smoke.data.source == "synthetic" and smoke.train.device == "cpu"
    )


def test_a_key_in_the_wrong_section_points_to_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'train.epochs'"):
        load_experiment(write(tmp_path, "[optim]\nepochs = 3\n"), env={})
