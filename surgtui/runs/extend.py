"""`surgtui resume RUN --set KEY=VALUE`: the keys a run may change when it goes on, and changing them.

A run's weights, optimizer state and data order were made by its config; only keys that leave them
meaningful may change (more epochs, patience, how often to validate or log, where to run or meet).
"""

from __future__ import annotations

from collections.abc import Sequence

from surgtui.config.edit import edit_text
from surgtui.config.load import parse_assignment
from surgtui.errors import UserError
from surgtui.fileio import write_text_atomic
from surgtui.runs.layout import CONFIG_FILE
from surgtui.runs.store import Run

RESUME_KEYS: tuple[str, ...] = (
    "train.epochs",
    "train.patience",
    "train.val_every",
    "train.max_bad_steps",
    "train.workers",
    "train.device",
    "train.rdzv_endpoint",
    "logging.log_every",
)


def resume_changes(run: Run, assignments: Sequence[str]) -> dict[str, object]:
    """The `--set` changes for resuming `run`, checked; UserError naming a key that may not change."""
    changes: dict[str, object] = {}
    for text in assignments:
        key, value = parse_assignment(text)
        if key not in RESUME_KEYS:
            raise UserError(
                f"--set {key}: cannot change when resuming (the trained state depends on it); allowed: "
                f'{", ".join(RESUME_KEYS)}; or start a new run with model.init_from = "{run.id}"'
            )
        changes[key] = value
    return changes


def apply_resume_changes(run: Run, changes: dict[str, object]) -> str:
    """Write `changes` into the run's frozen config (validated, atomically); returns the new text.

    A finished run goes on only when the changes leave epochs to train.
    """
    path = run.path / CONFIG_FILE
    new_text = edit_text(path.read_text(encoding="utf-8"), changes, f"--set on resuming {run.id}")
    if run.status == "finished":
        from surgtui.config import toml as tomllib

        epochs = tomllib.loads(new_text)["train"]["epochs"]
        done = int(run.summary.get("epoch") or 0)
        if epochs <= done:
            raise UserError(
                f"run {run.id} finished after epoch {done} of train.epochs = {epochs}; "
                f"to go on, give more: --set train.epochs={done + 10}"
            )
    if changes:
        write_text_atomic(path, new_text)
    return new_text
