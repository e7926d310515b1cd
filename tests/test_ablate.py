"""`surgtui ablate`: the arms it builds from the seed's improvements, and one small ablation run end to end."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from conftest import ROOT, kill_leftover_engines, one_line_error, surgtui, tiny_experiment
from surgtui.config.load import load_experiment
from surgtui.config.variants import IMPROVEMENTS
from surgtui.runs.rows import flatten
from surgtui.runs.store import list_runs
from surgtui.sweeps.ablation import ablation_spec
from surgtui.sweeps.store import list_sweeps


def _settings(path: Path, overrides: dict | None = None) -> dict:
    sets = [f"{k}={json.dumps(v)}" for k, v in (overrides or {}).items()]
    exp = load_experiment(path, sets, env={}).experiment.model_dump(by_alias=True)
    return {k: v for k, v in flatten(exp).items() if not k.startswith(("name", "description", "variant"))}


def test_the_legacy_arm_of_the_baseline_is_the_legacy_experiment() -> None:
    """Switching every improvement off the baseline gives exactly experiments/legacy.toml's settings."""
    spec, skipped = ablation_spec(ROOT / "experiments" / "baseline.toml", 3, [])
    assert skipped == []
    assert list(spec.arms) == ["all", "legacy", *(f"no_{name}" for name in IMPROVEMENTS)]
    assert spec.seeds == (0, 1, 2) and spec.n_members() == 3 * len(spec.arms)
    legacy = _settings(ROOT / "experiments" / "baseline.toml", spec.arms["legacy"])
    assert legacy == _settings(ROOT / "experiments" / "legacy.toml")
    # each `no_` arm changes only its own keys, and changes them all
    all_on = _settings(ROOT / "experiments" / "baseline.toml")
    for name, switch in IMPROVEMENTS.items():
        off = _settings(ROOT / "experiments" / "baseline.toml", spec.arms[f"no_{name}"])
        assert {k for k in off if off[k] != all_on[k]} == set(switch.off), name


def test_an_improvement_already_off_is_not_ablated_and_a_bad_set_is_one_line(tmp_path: Path) -> None:
    base = tiny_experiment(tmp_path, extra="[optim]\ngrad_clip = 0.0\n")
    spec, skipped = ablation_spec(base, 2, [])
    assert "no_grad_clip" not in spec.arms and skipped == [f"grad_clip: already off in {base.name}"]
    line = one_line_error(
        surgtui("ablate", str(base), "--set", "optim.lr=-1", "--runs-dir", str(tmp_path / "runs"))
    )
    assert "optim.lr" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_an_ablation_runs_each_arm_and_prints_its_change_against_all(tmp_path: Path) -> None:
    """A base with only gradient clipping on: three arms (all, legacy, no_grad_clip), one seed, one epoch."""
    runs = tmp_path / "runs"
    base = tiny_experiment(tmp_path, epochs=1, extra="[optim]\ngrad_clip = 10.0\n")
    text = base.read_text().replace('variant = "YOLOv5-Nano"', 'variant = "YOLOv5-Legacy"')
    base.write_text(text.replace("[model]\n", '[model]\nbackbone = "regnet_x_400mf"\nneck_width = 64\n'))
    try:
        r = surgtui(
            "ablate", str(base), "--seeds", "1", "--parallel", "3", "--runs-dir", str(runs), timeout=300
        )
        assert r.returncode == 0, r.stdout + r.stderr
        skipped = [line for line in r.stderr.splitlines() if line.startswith("not ablated: ")]
        assert len(skipped) == len(IMPROVEMENTS) - 1  # every other improvement is off in Legacy
        members = {
            json.loads((run.path / "sweep.json").read_text())["params"]["arm"]: run for run in list_runs(runs)
        }
        assert set(members) == {"all", "legacy", "no_grad_clip"}
        assert all(run.status == "finished" for run in members.values())
        clip = {arm: (run.path / "config.toml").read_text() for arm, run in members.items()}
        assert "grad_clip = 10.0" in clip["all"] and "grad_clip = 0.0" in clip["no_grad_clip"]
        assert "no_grad_clip" in r.stdout and "Δ mAP50-95" in r.stdout

        sweep_id = list_sweeps(runs)[0].id
        shown = surgtui("sweep", "show", sweep_id, "--json", "--runs-dir", str(runs))
        arms = {a["arm"]: a for a in json.loads(shown.stdout)["arms"]}
        for arm in ("legacy", "no_grad_clip"):
            mine, ref = members[arm].metric("map50_95"), members["all"].metric("map50_95")
            assert arms[arm]["delta_map50_95"][0] == pytest.approx(mine - ref, abs=1e-12)
        assert arms["all"]["delta_map50_95"] is None
    finally:
        for sweep in list_sweeps(runs):
            if sweep.state == "running" and sweep.status.get("pid"):
                os.kill(int(sweep.status["pid"]), signal.SIGKILL)
        kill_leftover_engines(tmp_path)
