"""The process around a training or inference run: the device, seeding, the stop flag, distributed ranks."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sys
from typing import Any

import numpy as np
import torch

from surgtui.config.device import DEVICE_CHOICES, parse_device
from surgtui.errors import UserError


def _setting(option: str, value: str) -> str:
    """How the user writes `value` for `option`: `--device cpu` on a command line, `train.device = 'cpu'` in a config."""
    return f"{option} {value}" if option.startswith("-") else f"{option} = {value!r}"


def resolve_device(name: str, option: str, local_rank: int = 0) -> torch.device:
    """`auto` is CUDA when available, else CPU; CUDA always with its index (`cuda:0`), as events report it.

    `option` names the setting in errors (`train.device`, `--device`). Plain `cuda` is the current
    GPU, or under torchrun the GPU of the local rank. UserError for an unknown spelling, CUDA
    missing, or an index past the GPUs there are.
    """
    try:
        kind, index = parse_device(name)
    except ValueError:
        raise UserError(f"{_setting(option, name)}: expected {DEVICE_CHOICES}") from None
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(
            f"{_setting(option, name)}: CUDA is not available here; "
            f"use {_setting(option, 'auto')} or {_setting(option, 'cpu')}"
        )
    if index is None:
        index = local_rank if int(os.environ.get("WORLD_SIZE", 1)) > 1 else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise UserError(f"{_setting(option, name)}: only {torch.cuda.device_count()} CUDA device(s) here")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class StopFlag:
    """SIGINT/SIGTERM set `requested`; the loop finishes its step, checkpoints and stops.

    A second signal raises KeyboardInterrupt: the user does not want to wait. Under
    torchrun the agent relays one stop as SIGTERM to every rank, so ranks stay patient.
    """

    def __init__(self, patient: bool = False, pending: list[int] | None = None) -> None:
        self.patient = patient
        self.requested = False
        self.signal_name = ""
        self._pending = pending  # signals caught before this flag was installed (engine start-up)
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and not self.patient:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        if self._pending:  # a stop sent while torch was still loading
            self.requested, self.signal_name = True, signal.Signals(self._pending[0]).name
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Dist:
    """The few collective operations the loop needs; no-ops in a single process."""

    def __init__(self) -> None:
        self.rank = int(os.environ.get("RANK", 0))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def node_lead(self) -> bool:
        """The first rank on its machine: it writes that machine's run directory (rank 0's is node 0's)."""
        return self.local_rank == 0

    def init(self, device: torch.device) -> None:
        if self.active and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any rank: stops and skips happen everywhere or nowhere."""
        if not self.active:
            return flag
        t = torch.tensor([int(flag)])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def from_rank0(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (pickled; tensors in it must be on the CPU)."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, 0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def same_parameters(self, model: torch.nn.Module) -> bool:
        """Whether every rank holds rank 0's parameters exactly (DDP keeps them in lockstep)."""
        flat = torch.cat([p.detach().reshape(-1).float().cpu() for p in model.parameters()])
        ref = flat.clone()
        torch.distributed.broadcast(ref, 0)
        return not self.any(not torch.equal(flat, ref))

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def parameter_digest(model: torch.nn.Module) -> str:
    """A short hash of the parameters' bytes: equal on two ranks exactly when their weights are."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def die_with_parent() -> None:
    """Under torchrun the ranks run in sessions of their own: have the kernel end them if the agent dies."""
    if sys.platform.startswith("linux") and os.environ.get("TORCHELASTIC_RUN_ID"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
