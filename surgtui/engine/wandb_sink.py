"""Mirror the event stream to Weights & Biases.

wandb is imported only when `[logging] wandb = true`. Without an API key (and no
WANDB_MODE set) the run goes offline and says so once; `surgtui sync RUN` (or
`surgtui sync --all`) or `wandb sync` uploads it later. Any W&B failure turns the
mirror off with a warning (EventWriter drops a sink that raises): training never
stops for it.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any, Callable

from surgtui.config.schema import Experiment
from surgtui.engine.scalars import event_scalars
from surgtui.errors import ExitCode
from surgtui.runs.layout import BEST_WEIGHTS, RUN_JSON, WANDB_DIR, WEIGHTS_DIR
from surgtui.runs.store import read_json, update_run_json


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC") or os.path.expanduser("~/.netrc"))
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in auth.hosts)


def choose_mode() -> tuple[str, str | None]:
    """(mode, note): WANDB_MODE wins; no key means offline, said once."""
    mode = os.environ.get("WANDB_MODE", "").strip()
    if mode:
        return mode, None
    if has_api_key():
        return "online", None
    return "offline", "W&B: no API key found, logging offline; upload later with `surgtui sync RUN`"


def id_on_disk(run_dir: Path) -> str | None:
    """The W&B id in the newest `wandb/[offline-]run-<time>-<id>` directory: what run.json's `wandb_id` said,
    should an engine have died before writing it there."""
    dirs = sorted((run_dir / WANDB_DIR).glob("*run-*-*"), key=lambda d: d.name.split("run-", 1)[1])
    return dirs[-1].name.rsplit("-", 1)[1] if dirs else None


class WandbSink:
    """Called with every event the engine writes; turns them into W&B history, config and summary."""

    name = "W&B logging"

    def __init__(self, exp: Experiment, run_dir: Path, run_id: str, log: Callable[[str, str], Any]) -> None:
        import wandb  # only here: W&B costs a second of import time

        self.wandb = wandb
        self.run_dir = run_dir
        mode, note = choose_mode()
        if note:
            log("info", note)
        # A resumed run goes on as the same W&B run: `wandb sync` then uploads its offline parts as one.
        previous = read_json(run_dir / RUN_JSON).get("wandb_id") or id_on_disk(run_dir)
        self.run = wandb.init(
            project=exp.logging.wandb_project,
            entity=exp.logging.wandb_entity or None,
            group=exp.logging.wandb_group or None,
            tags=list(exp.logging.wandb_tags) or None,
            name=run_id,
            id=previous,
            resume="allow",
            dir=str(run_dir),
            mode=mode,
            config=exp.to_dict(),
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )
        self.online = mode == "online"
        self.step = 0
        update_run_json(
            run_dir,
            wandb_id=self.run.id,
            wandb_mode=mode,
            wandb_dir=str(Path(self.run.dir).parent.resolve()),
            wandb_url=getattr(self.run, "url", None) if self.online else None,
        )

    def __call__(self, e: dict[str, Any]) -> None:
        kind = e["type"]
        if kind == "step":
            self.step = e["step"]
        row = event_scalars(e)
        if row:
            self.run.log(row, step=self.step)
        if kind == "run_end":
            best = e.get("best") or {}
            self.run.summary.update({"status": e["status"], **{f"best/{k}": v for k, v in best.items()}})
            best_pt = self.run_dir / WEIGHTS_DIR / BEST_WEIGHTS
            if self.online and best_pt.exists():
                artifact = self.wandb.Artifact(f"{self.run.id}-best", type="model")
                artifact.add_file(str(best_pt))
                self.run.log_artifact(artifact)
            self.run.finish(exit_code=int(ExitCode.OK if e["status"] == "finished" else ExitCode.FAILED))

    def close(self) -> None:
        if self.wandb.run is not None:
            self.run.finish()
