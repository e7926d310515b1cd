"""Mirror the event stream to Weights & Biases.

wandb is imported only when `[logging] wandb = true`. Without an API key (and no
WANDB_MODE set) the run goes offline and says so once; `surgtui sync RUN` or
`wandb sync` uploads it later. Any W&B failure turns the mirror off with a
warning (EventWriter drops a sink that raises): training never stops for it.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any, Callable

from surgtui.config.schema import Experiment
from surgtui.errors import ExitCode
from surgtui.runs.layout import BEST_WEIGHTS, RUN_JSON, WEIGHTS_DIR
from surgtui.runs.metrics import VAL_PREFIX
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
        previous = read_json(run_dir / RUN_JSON).get("wandb_id")
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
            row = {f"lr/{k}": v for k, v in e["lr"].items()}
            row.update({f"loss/{k}": v for k, v in e["loss"].items() if v is not None})
            row.update(
                {
                    "grad_norm": e["grad_norm"],
                    "clipped": int(e["clipped"]),
                    "imgs_per_s": e["imgs_per_s"],
                    "epoch": e["epoch"],
                }
            )
            self.run.log(row, step=self.step)
        elif kind == "epoch_end":
            self.run.log(
                {f"epoch_loss/{k}": v for k, v in e["loss"].items() if v is not None}, step=self.step
            )
        elif kind == "val":
            row = {f"{VAL_PREFIX}{k}": v for k, v in e["metrics"].items()}
            for cls, m in e.get("per_class", {}).items():
                row.update({f"{VAL_PREFIX}{cls}/{k}": v for k, v in m.items()})
            self.run.log(row, step=self.step)
        elif kind == "run_end":
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
