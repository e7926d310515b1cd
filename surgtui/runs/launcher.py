"""Start, stop and watch engine processes. Never imports torch: the engine is a separate process.

The engine runs in its own session (`start_new_session`), so an SSH drop (SIGHUP)
or Ctrl-C in the terminal that started it never reaches it; `stop` sends SIGINT
to its process group, which lets it finish the step, checkpoint and say `stopped`.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from surgtui.config import toml as tomllib
from surgtui.errors import UserError
from surgtui.runs.layout import CONFIG_FILE, ENGINE_LOCK, ENGINE_LOCK_FD_ENV, STDERR_LOG, STDOUT_LOG
from surgtui.runs.lock import acquire_engine_lock, proc_start_time, write_lock_owner
from surgtui.runs.store import Run, create_run, read_json, update_run_json

if TYPE_CHECKING:
    from surgtui.config.schema import Experiment

LOCK_WAIT_S = 3.0


@dataclass(frozen=True)
class Topology:
    """Where a run trains: `devices` processes on each of `nodes` machines, this one being `node_rank`."""

    devices: int = 1
    nodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = ""  # HOST:PORT of node 0 when nodes > 1

    @property
    def distributed(self) -> bool:
        """Trained under torchrun (its agent's exit code is not the engine's)."""
        return self.devices > 1 or self.nodes > 1

    @classmethod
    def of(cls, run_dir: Path) -> Topology:
        """The run's frozen `train` settings (what the launcher and `resume` need)."""
        with open(run_dir / CONFIG_FILE, "rb") as fh:
            train = tomllib.load(fh).get("train", {})
        return cls(
            int(train.get("devices", 1)),
            int(train.get("nodes", 1)),
            int(train.get("node_rank", 0)),
            str(train.get("rdzv_endpoint", "")),
        )


def engine_command(run_dir: Path, topo: Topology = Topology(), resume: bool = False) -> list[str]:
    """The engine's command line: one process, or torchrun for several devices or machines."""
    args = [str(run_dir)] + (["--resume"] if resume else [])
    if not topo.distributed:
        return [sys.executable, "-m", "surgtui.engine", *args]
    if topo.nodes == 1:
        where = ["--standalone"]
    else:
        # The static rendezvous: torchrun's c10d one ignores --node_rank (it orders nodes by host name),
        # and node 0 must hold rank 0, the one that validates and checkpoints. Node 0 hosts the store.
        # The id only has to agree: one job at a time meets at an endpoint, and the engine checks the configs.
        where = [
            f"--nnodes={topo.nodes}",
            f"--node_rank={topo.node_rank}",
            "--rdzv_backend=static",
            f"--rdzv_endpoint={topo.rdzv_endpoint}",
            "--rdzv_id=surgtui",
        ]
    # torchrun as a module: no reliance on a `torchrun` script being on PATH.
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *where,
        f"--nproc_per_node={topo.devices}",
        "-m",
        "surgtui.engine",
        *args,
    ]


def start_engine(run_dir: str | Path, resume: bool = False) -> subprocess.Popen:
    """Spawn the engine detached, holding the run's lock; record pid, pgid and the command in run.json.

    The lock is taken here, before anything is written, and handed to the engine: of two
    launches at once exactly one starts, and the other is told the run is running.
    """
    run_dir = Path(run_dir)
    cmd = engine_command(run_dir, Topology.of(run_dir), resume)
    try:
        # An engine that has written run_end still takes a moment to exit: wait for it, not error.
        lock = acquire_engine_lock(run_dir, wait_s=LOCK_WAIT_S)
    except OSError as exc:
        raise UserError(f"{run_dir}: cannot lock the run ({exc.strerror or exc})") from None
    if lock is None:
        owner = read_json(run_dir / ENGINE_LOCK).get("pid")
        raise UserError(
            f"run {run_dir.name} is already running" + (f" (engine pid {owner})" if owner else "")
        )
    try:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{ENGINE_LOCK_FD_ENV: str(lock)})
        mode = "a" if resume else "w"
        with open(run_dir / STDOUT_LOG, mode) as out, open(run_dir / STDERR_LOG, mode) as err:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
                close_fds=True,
                pass_fds=(lock,),
            )
        write_lock_owner(lock, proc.pid)
        update_run_json(
            run_dir,
            pid=proc.pid,
            pgid=proc.pid,
            proc_start=proc_start_time(proc.pid),
            command=shlex.join(cmd),
            started=time.time(),
            exit_code=None,
        )
    finally:
        os.close(lock)  # the engine holds it now
    return proc


def launch_run(
    experiment: Experiment, config_toml: str, runs_dir: Path, where: str
) -> tuple[Path, subprocess.Popen]:
    """`surgtui run` and the UI's launch: check what can be checked, make the run directory, start the engine.

    A data source that is missing, holds no known layout or lacks a split is refused before a run
    directory is made for nothing.
    """
    from surgtui.data.layouts import check_training_source

    try:
        check_training_source(experiment.data)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    if experiment.model.init_from:  # frozen as the weights file: `latest` now is not `latest` later
        from surgtui.config.edit import edit_text
        from surgtui.runs.inference import resolve_weights

        try:
            weights = resolve_weights(experiment.model.init_from, runs_dir).resolve()
        except UserError as exc:
            raise UserError(f"{where}: model.init_from = {experiment.model.init_from!r}: {exc}") from None
        config_toml = edit_text(config_toml, {"model.init_from": str(weights)}, where)
    run_dir = create_run(runs_dir, experiment.name, config_toml)
    return run_dir, start_engine(run_dir)


def signal_run(run: Run, sig: int = signal.SIGINT) -> bool:
    """Signal the engine's process group; False when it is not running."""
    if not run.alive:
        return False
    pgid = run.pgid
    if pgid is None:
        return False
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        raise UserError(
            f"run {run.id}: not allowed to signal process group {pgid} (started by another user?)"
        ) from None
    return True


def wait_exit(proc: subprocess.Popen | None, run_dir: Path, timeout: float | None = None) -> int | None:
    """Reap our own child (so it leaves no zombie) and record its exit code."""
    if proc is None:
        return None
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    update_run_json(run_dir, exit_code=code)
    return code
