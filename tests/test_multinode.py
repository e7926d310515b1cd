"""Training on several machines: two `surgtui run`s on this one, each with its own runs dir, gloo on CPU."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, kill_leftover_engines, one_line_error, surgtui, tiny_experiment
from surgtui.runs.launcher import Topology, engine_command
from surgtui.runs.store import Run

TIMEOUT_S = 300  # a node left alone waits 10 minutes for the other: never that long here


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return run_dir


def digest(evs: list[dict]) -> str:
    """The last parameter digest a node's run logged."""
    found = [
        m for e in evs if e["type"] == "log" and (m := re.match(r"DDP: parameter digest (\w+)", e["message"]))
    ]
    assert found, [e.get("message") for e in evs if e["type"] == "log"]
    return found[-1].group(1)


def on_both_nodes(root: Path, *args_per_node: list[str]) -> list[subprocess.CompletedProcess]:
    """Start the nodes' CLI commands at once, as two machines would, and wait for both."""
    env = dict(os.environ, OMP_NUM_THREADS="1")  # two engines on two cores: no thread oversubscription
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "surgtui", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in args_per_node
    ]
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in procs]  # a few lines each: no full pipe
        return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        kill_leftover_engines(root)


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """One epoch of the tiny experiment on nodes 0 and 1: (root, node 0's run, node 1's run)."""
    root = tmp_path_factory.mktemp("multinode")
    exp = tiny_experiment(root, epochs=1, name="two")
    endpoint = f"127.0.0.1:{free_port()}"
    base = [
        "--set",
        "train.nodes=2",
        "--set",
        f"train.rdzv_endpoint={endpoint}",
        "--set",
        "train.batch_size=2",
    ]
    results = on_both_nodes(
        root,
        ["run", str(exp), "--runs-dir", str(root / "node0" / "runs"), *base],
        ["run", str(exp), "--runs-dir", str(root / "node1" / "runs"), *base, "--set", "train.node_rank=1"],
    )
    for r in results:
        assert r.returncode == 0, r.stderr
    return root, only_run(root / "node0" / "runs"), only_run(root / "node1" / "runs")


@pytest.mark.slow
def test_two_nodes_train_as_one_world_and_node_0_holds_the_metrics(
    two_nodes: tuple[Path, Path, Path],
) -> None:
    _, run0, run1 = two_nodes
    ev0, ev1 = events(run0), events(run1)
    for evs in (ev0, ev1):
        assert evs[0]["type"] == "run_start" and evs[0]["world_size"] == 2
        assert evs[-1]["type"] == "run_end" and evs[-1]["status"] == "finished"
    assert "--node_rank=1" in json.loads((run1 / "run.json").read_text())["command"]

    # Node 0: validation, checkpoints and the best metric; node 1: its training, and where the rest is.
    assert any(e["type"] == "val" for e in ev0) and (run0 / "weights" / "last.pt").is_file()
    assert ev0[-1]["best"] is not None
    assert not any(e["type"] in ("val", "checkpoint") for e in ev1) and not (run1 / "weights").exists()
    assert any(e["type"] == "epoch_end" for e in ev1)
    assert any(e["type"] == "log" and f"in node 0's run {run0.name}" in e["message"] for e in ev1)
    assert Run.load(run1).status == "finished"  # what `surgtui runs` shows on node 1's machine

    # The ranks trained in lockstep: each machine's run records the same weights.
    assert digest(ev0) == digest(ev1)
    assert any(e.get("message") == "DDP: parameters identical on all 2 ranks" for e in ev1)


@pytest.mark.slow
def test_both_nodes_resume_from_node_0s_checkpoint(two_nodes: tuple[Path, Path, Path]) -> None:
    root, run0, run1 = two_nodes
    before = digest(events(run0))
    new_endpoint = f"train.rdzv_endpoint=127.0.0.1:{free_port()}"  # a new job: node 0 may be elsewhere
    more = ["--set", "train.epochs=2", "--set", new_endpoint]
    results = on_both_nodes(
        root,
        ["resume", "latest", "--runs-dir", str(root / "node0" / "runs"), *more],
        ["resume", "latest", "--runs-dir", str(root / "node1" / "runs"), *more],  # holds no checkpoint
    )
    for r in results:
        assert r.returncode == 0, r.stderr
    ev0, ev1 = events(run0), events(run1)
    starts = [e for e in ev1 if e["type"] == "run_start"]
    assert len(starts) == 2 and starts[-1]["resumed_from_step"] == 2  # node 0's last.pt, sent to node 1
    assert [e["step"] for e in ev0 if e["type"] == "step"] == [1, 2, 3, 4]
    assert ev0[-1]["status"] == ev1[-1]["status"] == "finished"
    assert digest(ev0) == digest(ev1) != before


@pytest.mark.slow
def test_a_node_with_another_experiment_fails_every_node_naming_the_key(tmp_path: Path) -> None:
    exp = tiny_experiment(tmp_path, epochs=1)
    base = ["--set", "train.nodes=2", "--set", f"train.rdzv_endpoint=127.0.0.1:{free_port()}"]
    node1 = ["--set", "train.node_rank=1", "--set", "optim.lr=0.002", "--set", "train.workers=1"]
    results = on_both_nodes(
        tmp_path,
        ["run", str(exp), "--runs-dir", str(tmp_path / "node0" / "runs"), *base],
        ["run", str(exp), "--runs-dir", str(tmp_path / "node1" / "runs"), *base, *node1],
    )
    for node, r in enumerate(results):
        assert r.returncode != 0
        end = events(only_run(tmp_path / f"node{node}" / "runs"))[-1]
        assert end["status"] == "failed" and "node 1's experiment differs from node 0's" in end["reason"]
        assert (
            "optim.lr 0.001 -> 0.002" in end["reason"]
            and "train.workers" not in end["reason"].split("(only")[0]
        )


def test_the_launcher_starts_torchrun_with_the_node_0_rendezvous() -> None:
    run_dir = Path("runs/r")
    cmd = engine_command(run_dir, Topology(devices=4, nodes=2, node_rank=1, rdzv_endpoint="node0:29500"))
    assert cmd == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--node_rank=1",
        "--rdzv_backend=static",
        "--rdzv_endpoint=node0:29500",
        "--rdzv_id=surgtui",
        "--nproc_per_node=4",
        "-m",
        "surgtui.engine",
        "runs/r",
    ]
    one_machine = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert engine_command(run_dir, Topology(devices=2), resume=True)[:5] == one_machine
    assert engine_command(run_dir) == [sys.executable, "-m", "surgtui.engine", "runs/r"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (
            ["train.node_rank=2", "train.rdzv_endpoint=node0:29500"],
            ["train.node_rank", "below train.nodes = 2"],
        ),
        ([], ["train.rdzv_endpoint", "required when train.nodes = 2", "HOST:PORT"]),
        (["train.rdzv_endpoint=node0:70000"], ["train.rdzv_endpoint", "HOST:PORT", "port 70000"]),
        (["train.rdzv_endpoint=node0"], ["train.rdzv_endpoint", "HOST:PORT", "'node0'"]),
    ],
)
def test_a_bad_multi_node_setting_is_one_line_naming_the_key(
    tmp_path: Path, overrides: list[str], words: list[str]
) -> None:
    sets = [a for o in ["train.nodes=2", *overrides] for a in ("--set", o)]
    line = one_line_error(surgtui("validate", str(tiny_experiment(tmp_path)), *sets))
    for word in words:
        assert word in line
