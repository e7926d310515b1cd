"""Mirror the event stream to TensorBoard event files in RUN_DIR/tensorboard/ (`[logging] tensorboard = true`).

Through torch's SummaryWriter, which needs the `tensorboard` package (`pip install 'surgtui[tensorboard]'`).
Every scalar is at the global optimizer step, as in W&B (`scalars.event_scalars` names them). A resumed run
appends a new event file that purges what the earlier ones hold from its first step on, so the steps a
crashed attempt had logged past its checkpoint are not shown twice. Any failure turns the mirror off with a
warning (EventWriter drops a sink that raises): training never stops for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from surgtui.engine.scalars import event_scalars
from surgtui.runs.layout import TENSORBOARD_DIR


class TensorBoardSink:
    """Called with every event the engine writes; opens its writer at `run_start`."""

    name = "TensorBoard logging"

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch's module imports the tensorboard package
            raise ImportError(f"{exc} (pip install 'surgtui[tensorboard]')") from None
        self._writer_class = SummaryWriter
        self.log_dir = run_dir / TENSORBOARD_DIR
        self.writer: Any = None
        self.step = 0

    def __call__(self, e: dict[str, Any]) -> None:
        kind = e["type"]
        if kind == "run_start":
            self.close()
            resumed = e.get("resumed_from_step")
            self.step = resumed or 0
            # purge_step: TensorBoard drops the earlier files' scalars at steps >= it (a crashed attempt's redo).
            self.writer = self._writer_class(
                str(self.log_dir), purge_step=resumed + 1 if resumed is not None else None
            )
            return
        if self.writer is None:  # nothing to log before the run starts (a failed start)
            return
        if kind == "step":
            self.step = e["step"]
        for tag, value in event_scalars(e).items():
            self.writer.add_scalar(tag, value, self.step, walltime=e.get("time"))
        if kind in ("epoch_end", "val"):
            self.writer.flush()  # a few times per epoch: TensorBoard shows the run as it trains
        elif kind == "run_end":
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
