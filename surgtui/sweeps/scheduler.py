"""`python -m surgtui.sweeps.scheduler SWEEP_DIR`: the detached process that drives one sweep.

It launches members (ordinary runs, each a detached engine) up to `parallel` at once, feeds their `val`
events to the study's pruner, stops a member the pruner gives up on (the run ends `stopped`, reason
`pruned at epoch N (...)`), and tells the study each member's result. SIGINT/SIGTERM stop the sweep:
running members are stopped (resumable) and the sweep reads `stopped`. Started again (`surgtui sweep
resume`), it picks up the study as it is: finished members are kept, stopped or crashed ones resumed,
members still training are watched again.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from surgtui.config.load import load_experiment, load_frozen
from surgtui.errors import UserError, one_line
from surgtui.fileio import write_json_atomic, write_text_atomic
from surgtui.runs.events import read_events
from surgtui.runs.launcher import launch_run, signal_run, start_engine
from surgtui.runs.layout import CONFIG_FILE, STOP_REASON_FILE
from surgtui.runs.metrics import METRIC_LABELS
from surgtui.runs.store import Run, read_json
from surgtui.runs.tags import set_tags
from surgtui.sweeps import study as st
from surgtui.sweeps.detach import log
from surgtui.sweeps.gpus import free_gpu, on_gpu, visible_gpus
from surgtui.sweeps.spec import SweepSpec
from surgtui.sweeps.store import BASE_TOML, MEMBER_JSON, SWEEP_JSON, claim_sweep, set_status

POLL_S = 0.5


@dataclass
class Member:
    trial: optuna.Trial
    run_dir: Path
    proc: subprocess.Popen | None = None
    reported: set[int] = field(default_factory=set)  # epochs told to the pruner
    pruned_at: int | None = None
    gpu: str | None = None


class Scheduler:
    def __init__(self, sweep_dir: Path) -> None:
        self.dir = sweep_dir
        info = read_json(sweep_dir / SWEEP_JSON)
        self.spec = SweepSpec.from_dict(info["spec"])
        self.runs_dir = Path(info["runs_dir"])
        self.study = st.open_study(self.spec, info["storage"], info["study"])
        # Schedulers on several machines may share the study: each runs and adopts only its own members.
        self.owner = info.get("owner", sweep_dir.name)
        self.shared = bool(info.get("shared"))
        self.running: dict[int, Member] = {}  # trial number -> member
        self.stop_requested = False
        self.gpus = visible_gpus()

    # ---- members ---------------------------------------------------------------------------

    def _launch(self, trial: optuna.Trial) -> None:
        config, seed = trial.user_attrs[st.CONFIG_ATTR], trial.user_attrs[st.SEED_ATTR]
        overrides = [
            *self.spec.member_overrides(trial.params, seed),
            f'name="{self.spec.name}-c{config}-s{seed}"',
        ]
        resolved = load_experiment(self.dir / BASE_TOML, overrides, env={})
        env_gpu = self._free_gpu() if resolved.experiment.train.device != "cpu" else None
        with on_gpu(env_gpu):
            run_dir, proc = launch_run(resolved.experiment, resolved.to_toml(), self.runs_dir, str(BASE_TOML))
        member = {
            "sweep": self.dir.name,
            "trial": trial.number,
            "config": config,
            "seed": seed,
            "params": trial.params,
        }
        write_json_atomic(run_dir / MEMBER_JSON, member)
        set_tags(run_dir, {"sweep": self.dir.name, "config": config, "seed": seed, **trial.params})
        trial.set_user_attr(st.RUN_ATTR, run_dir.name)
        self.running[trial.number] = Member(trial, run_dir, proc, gpu=env_gpu)
        log(
            f"started {run_dir.name}: config {config} seed {seed} {trial.params}"
            + (f" on GPU {env_gpu}" if env_gpu else "")
        )

    def _free_gpu(self) -> str | None:
        return free_gpu(self.gpus, [m.gpu for m in self.running.values()])

    def _watch(self, m: Member, vals: list[dict]) -> None:
        """Report val epochs not reported yet; stop the member when the pruner says so."""
        metric = self.spec.metric
        for e in vals:
            if e["epoch"] in m.reported or m.pruned_at is not None:
                continue
            m.reported.add(e["epoch"])
            value = float(e["metrics"][metric])
            m.trial.report(value, e["epoch"])
            if m.trial.should_prune():
                median = st.median_at(self.study, e["epoch"], m.trial.number)
                label = METRIC_LABELS.get(metric, metric)
                than = f" < median {median:.4f}" if median is not None else ""
                reason = f"pruned at epoch {e['epoch']} ({label} {value:.4f}{than})"
                write_text_atomic(m.run_dir / STOP_REASON_FILE, reason)
                signal_run(Run.load(m.run_dir), signal.SIGINT)
                m.pruned_at = e["epoch"]
                log(f"{m.run_dir.name}: {reason}")

    def _poll(self, m: Member) -> bool:
        """Feed the member's new val events to the pruner; once it has ended, tell the study how.
        True when the member is done with."""
        if m.proc is not None:
            m.proc.poll()  # reap our child; a watched run from before a restart is not ours
        run = Run.load(m.run_dir)
        ended = not run.alive  # read before the events, so none written before the end is missed
        vals = [e for e in read_events(m.run_dir / "events.jsonl") if e.get("type") == "val"]
        self._watch(m, vals)
        if not ended:
            return False
        values = [float(e["metrics"][self.spec.metric]) for e in vals]
        if m.pruned_at is not None:
            self.study.tell(m.trial, state=optuna.trial.TrialState.PRUNED)
        elif run.status == "finished" and values:
            best = max(values) if self.spec.direction == "maximize" else min(values)
            self.study.tell(m.trial, best)
        elif run.status == "stopped" and self.stop_requested:
            log(f"{m.run_dir.name}: stopped with the sweep; `surgtui sweep resume` continues it")
            return True  # the trial stays RUNNING: resume continues the run
        else:
            self.study.tell(m.trial, state=optuna.trial.TrialState.FAIL)
        reason = (run.summary.get("end") or {}).get("reason")
        log(f"{m.run_dir.name}: {run.status}" + (f" ({reason})" if reason else ""))
        return True

    def _adopt(self) -> None:
        """After a restart: watch members still training, resume stopped or crashed ones, launch unlaunched ones."""
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner = t.user_attrs.get(st.OWNER_ATTR)
            if owner != self.owner and (owner is not None or self.shared):
                continue  # another machine's member
            trial = optuna.Trial(self.study, t._trial_id)
            trial.set_user_attr(st.OWNER_ATTR, self.owner)
            run_id = t.user_attrs.get(st.RUN_ATTR) or self._orphan(
                t.user_attrs[st.CONFIG_ATTR], t.user_attrs[st.SEED_ATTR]
            )
            if run_id is None:  # asked, never launched
                self._launch(trial)
                continue
            trial.set_user_attr(st.RUN_ATTR, run_id)
            run_dir = self.runs_dir / run_id
            run = Run.load(run_dir)
            member = Member(trial, run_dir, reported=set(t.intermediate_values))
            if not run.alive and run.status in ("stopped", "crashed"):
                device = load_frozen(run_dir / CONFIG_FILE).train.device
                member.gpu = self._free_gpu() if device != "cpu" else None
                with on_gpu(member.gpu):
                    member.proc = start_engine(run_dir, resume=True)
                log(f"resumed {run_id}" + (f" on GPU {member.gpu}" if member.gpu else ""))
            self.running[t.number] = member

    def _orphan(self, config: int, seed: int) -> str | None:
        """A member run launched just before the scheduler was killed, before the study heard of it."""
        suffix = f"-{self.spec.name}-c{config}-s{seed}"
        created = read_json(self.dir / SWEEP_JSON).get("created", 0)
        for run_dir in sorted(self.runs_dir.iterdir(), reverse=True):
            if not re.search(re.escape(suffix) + r"(-\d+)?$", run_dir.name):
                continue
            member = read_json(run_dir / MEMBER_JSON)
            if member.get("sweep") == self.dir.name or (not member and run_dir.stat().st_mtime >= created):
                return run_dir.name
        return None

    # ---- the loop --------------------------------------------------------------------------

    def run(self) -> str:
        self._adopt()
        while True:
            for number, m in list(self.running.items()):
                if self._poll(m):
                    del self.running[number]
            if self.stop_requested:
                if not self.running:
                    return "stopped"
            else:
                while len(self.running) < self.spec.parallel:
                    trial = st.next_trial(self.study, self.spec, st.configs_made(self.study))
                    if trial is None:
                        break
                    trial.set_user_attr(st.OWNER_ATTR, self.owner)
                    self._launch(trial)
                if not self.running:
                    return "finished"
            time.sleep(POLL_S)

    def request_stop(self, signum: int, frame: Any) -> None:
        if not self.stop_requested:
            log(f"{signal.Signals(signum).name}: stopping the sweep's running members")
            self.stop_requested = True
            for m in self.running.values():
                signal_run(Run.load(m.run_dir), signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    sweep_dir = Path((argv or sys.argv[1:])[0])
    if claim_sweep(sweep_dir) is None:
        print(f"error: sweep {sweep_dir.name} already has a scheduler", file=sys.stderr)
        return 2
    try:
        scheduler = Scheduler(sweep_dir)
        signal.signal(signal.SIGINT, scheduler.request_stop)
        signal.signal(signal.SIGTERM, scheduler.request_stop)
        state = scheduler.run()
    except UserError as exc:
        set_status(sweep_dir, "failed", str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        set_status(sweep_dir, "failed", one_line(exc))
        raise
    set_status(sweep_dir, state)
    log(f"sweep {state}")
    return 0 if state == "finished" else 130


if __name__ == "__main__":
    sys.exit(main())
