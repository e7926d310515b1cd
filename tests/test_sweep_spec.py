"""The sweep file: the example loads, members' overrides round-trip, and each mistake is one clear line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from surgtui.config.load import load_experiment, parse_assignment
from surgtui.errors import ConfigError
from surgtui.sweeps.spec import load_sweep, toml_literal

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "experiments" / "sweep-lr.toml"

BASE = """
name = "base"
variant = "YOLOv5-Nano"
[model]
pretrained = false
img_size = 64
[train]
epochs = 3
device = "cpu"
"""


def write(tmp_path: Path, sweep: str, name: str = "sweep.toml") -> Path:
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / name
    path.write_text(sweep)
    return path


def sweep_file(space: str = '"optim.lr" = [0.001, 0.003]', **keys: str) -> str:
    """A valid grid sweep of base.toml; `keys` replace or add [sweep] lines (raw TOML values)."""
    settings = {"experiment": '"base.toml"', "seeds": "[0]", **keys}
    lines = "\n".join(f"{k} = {v}" for k, v in settings.items() if v is not None)
    return f"[sweep]\n{lines}\n\n[sweep.space]\n{space}\n"


def error(tmp_path: Path, sweep: str, overrides: tuple[str, ...] = ()) -> str:
    path = write(tmp_path, sweep)
    with pytest.raises(ConfigError) as info:
        load_sweep(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_example_loads() -> None:
    spec = load_sweep(EXAMPLE)
    assert spec.name == "lr"
    assert spec.path == EXAMPLE and spec.experiment == ROOT / "experiments" / "smoke.toml"
    assert (spec.sampler, spec.seeds, spec.metric, spec.direction) == ("grid", (0, 1), "map50_95", "maximize")
    assert spec.fixed == {"train.epochs": 2}
    assert spec.n_configs() == 2 and spec.n_members() == 4
    lrs = [p["optim.lr"] for p in spec.grid()]
    assert len(lrs) == 2 and all(isinstance(lr, float) for lr in lrs)
    json.dumps(spec.to_dict())  # plain data


def test_example_members_resolve_with_their_values() -> None:
    spec = load_sweep(EXAMPLE)
    for params in spec.grid():
        for seed in spec.seeds:
            sets = spec.member_overrides(params, seed)
            typed = dict(parse_assignment(s) for s in sets)
            assert typed == {"train.epochs": 2, **params, "train.seed": seed}
            assert [k for k in typed] == ["train.epochs", "optim.lr", "train.seed"]  # fixed, params, seed
            exp = load_experiment(spec.experiment, overrides=sets, env={}).experiment
            assert (exp.optim.lr, exp.train.seed, exp.train.epochs) == (params["optim.lr"], seed, 2)


def test_grid_order_first_key_slowest(tmp_path: Path) -> None:
    space = '"optim.optimizer" = ["adamw", "sgd"]\n"train.batch_size" = [2, 4, 8]'
    spec = load_sweep(write(tmp_path, sweep_file(space, trials="4")))
    grid = spec.grid()
    assert [(g["optim.optimizer"], g["train.batch_size"]) for g in grid] == [
        ("adamw", 2), ("adamw", 4), ("adamw", 8), ("sgd", 2), ("sgd", 4), ("sgd", 8),
    ]  # fmt: skip
    assert spec.n_configs() == 4  # trials caps the grid


def test_toml_literals_round_trip() -> None:
    values = [
        True,
        False,
        0,
        -3,
        0.001,
        1e-5,
        1e16,
        2.0,
        math.inf,
        "adamw",
        'a "q" \\ \t\x7f é',
        [4.0, 1.0],
        {"a b": "needle"},
    ]
    for value in values:
        assert parse_assignment(f"k={toml_literal(value)}") == ("k", value)
        assert type(parse_assignment(f"k={toml_literal(value)}")[1]) is type(value)


def test_random_sweep_with_ranges(tmp_path: Path) -> None:
    space = """
"optim.lr" = { log_uniform = [1e-4, 1e-2] }
"loss.coord" = { uniform = [0.05, 0.2] }
"train.batch_size" = { int = [4, 16], step = 4 }
"optim.optimizer" = ["adamw", "sgd"]
"""
    path = write(tmp_path, sweep_file(space, sampler='"random"', trials="8", pruner='"median"'))
    spec = load_sweep(path, overrides=["train.epochs=1"])
    assert spec.name == "sweep" and spec.n_configs() == 8
    assert spec.fixed == {"train.epochs": 1}
    kinds = {p.key: (p.kind, p.low, p.high, p.step) for p in spec.space}
    assert kinds["optim.lr"] == ("log_uniform", 1e-4, 1e-2, None)
    assert kinds["train.batch_size"] == ("int", 4, 16, 4)
    params = {"optim.lr": 0.0005, "loss.coord": 0.1, "train.batch_size": 8, "optim.optimizer": "sgd"}
    sets = spec.member_overrides(params, 3)
    exp = load_experiment(spec.experiment, overrides=sets, env={}).experiment
    assert (exp.optim.lr, exp.loss.coord, exp.train.batch_size, exp.train.seed) == (0.0005, 0.1, 8, 3)


def test_dotted_keys_unquoted_mean_the_same(tmp_path: Path) -> None:
    path = write(tmp_path, sweep_file("optim.lr = [0.001, 0.003]", set="{ train = { epochs = 1 } }"))
    spec = load_sweep(path)
    assert [p.key for p in spec.space] == ["optim.lr"] and spec.fixed == {"train.epochs": 1}


def test_set_override_wins(tmp_path: Path) -> None:
    path = write(tmp_path, sweep_file(set='{ "train.epochs" = 2 }'))
    assert load_sweep(path, ["train.epochs=5"]).fixed == {"train.epochs": 5}


@pytest.mark.parametrize(
    ("keys", "space", "wanted"),
    [
        ({"sampel": '"grid"'}, None, ["sweep.sampel", "did you mean 'sweep.sampler'"]),
        ({"sampler": '"bayes"'}, None, ["sweep.sampler", "grid, random, tpe", "'bayes'"]),
        ({}, '"optim.lr" = { log_uniform = [1e-4, 1e-2] }', ['sweep.space."optim.lr"', "grid", "random"]),
        ({}, '"optim.lrr" = [0.1]', ['sweep.space."optim.lrr"', "did you mean 'optim.lr'"]),
        ({}, '"optim.optimizer" = ["adamw", "lion"]', ['sweep.space."optim.optimizer"', "'lion'"]),
        ({}, '"optim.lr" = [0.001, 20.0]', ['sweep.space."optim.lr"', "20.0", "<= 10"]),
        ({"sampler": '"tpe"', "trials": "4"}, '"optim.lr" = { uniform = [0.01, 0.001] }', ["low < high"]),
        ({"sampler": '"tpe"', "trials": "4"}, '"optim.lr" = { log_uniform = [0, 0.1] }', ["low > 0"]),
        (
            {"sampler": '"tpe"', "trials": "4"},
            '"optim.lr" = { uniform = [0.5, 20] }',
            ["high end 20.0", "<= 10"],
        ),
        ({"sampler": '"tpe"', "trials": "4"}, '"train.batch_size" = { int = [4, 15], step = 4 }', ["step 4"]),
        ({}, '"train.seed" = [0, 1]', ['sweep.space."train.seed"', "sweep.seeds"]),
        ({"set": '{ "optim.lr" = 0.01 }'}, None, ['sweep.set."optim.lr"', "sweep.space"]),
        ({"set": '{ "train.seed" = 3 }'}, None, ['sweep.set."train.seed"', "sweep.seeds"]),
        ({"set": '{ "train.epochs" = 0 }'}, None, ['sweep.set."train.epochs"', ">= 1"]),
        ({"experiment": '"missing.toml"'}, None, ["sweep.experiment", "missing.toml"]),
        ({"sampler": '"tpe"', "trials": "0"}, None, ["sweep.trials", "tpe", ">= 1"]),
        ({"seeds": "[]"}, None, ["sweep.seeds", "non-empty"]),
        ({"seeds": "[1, 1]"}, None, ["sweep.seeds", "distinct"]),
        ({"metric": '"map"'}, None, ["sweep.metric", "map50_95", "'map'"]),
        ({"parallel": "0"}, None, ["sweep.parallel", ">= 1"]),
        ({"name": '"a b"'}, None, ["sweep.name", "'a b'"]),
        ({}, "", ["sweep.space", "empty"]),
        ({}, '"optim" = [1]', ["sweep.space.optim", "section"]),
        ({}, '"optim.lr" = 0.01', ['sweep.space."optim.lr"', "sweep.set"]),
    ],
)
def test_bad_sweep_names_file_and_key(
    tmp_path: Path, keys: dict[str, str], space: str | None, wanted: list[str]
) -> None:
    text = sweep_file(**keys) if space is None else sweep_file(space, **keys)
    message = error(tmp_path, text)
    assert message.startswith(str(tmp_path / "sweep.toml") + ": ")
    for part in wanted:
        assert part in message, message


def test_bad_override_names_the_override(tmp_path: Path) -> None:
    message = error(tmp_path, sweep_file(), ("optim.lr=0.1",))
    assert message.startswith("--set optim.lr=0.1: ") and "sweep.space" in message
    message = error(tmp_path, sweep_file(), ("train.epoch=2",))
    assert "--set train.epoch=2" in message and "did you mean 'train.epochs'" in message


def test_not_a_sweep_file(tmp_path: Path) -> None:
    message = error(tmp_path, BASE)
    assert "sweep.toml" in message and "[sweep]" in message
    with pytest.raises(ConfigError, match="no such sweep file"):
        load_sweep(tmp_path / "nope.toml")


def test_broken_base_experiment_names_the_base(tmp_path: Path) -> None:
    path = write(tmp_path, sweep_file())
    (tmp_path / "base.toml").write_text(BASE + "lr = 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert "base.toml" in str(info.value) and "train.lr" in str(info.value)


def test_fixed_keys_checked_together(tmp_path: Path) -> None:
    # data.train alone is refused (it needs data.val); the two together are fine.
    both = '{ "data.train" = "images/train", "data.val" = "images/val" }'
    assert load_sweep(write(tmp_path, sweep_file(set=both))).fixed["data.val"] == "images/val"
    message = error(tmp_path, sweep_file(set='{ "data.train" = "images/train" }'))
    assert 'sweep.set."data.train"' in message and "data.val" in message
