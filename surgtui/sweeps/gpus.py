"""Which GPUs the sweep scheduler and the queue may hand out, and handing one to a process it starts."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator


@contextlib.contextmanager
def on_gpu(gpu: str | None) -> Iterator[None]:
    """Processes started inside see only `gpu` (all GPUs when None)."""
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        yield
    finally:
        if gpu is not None:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved


def visible_gpus() -> list[str]:
    """The GPUs members may be given: CUDA_VISIBLE_DEVICES, else what nvidia-smi lists; none on a CPU box."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def free_gpu(gpus: list[str], taken: list[str | None]) -> str | None:
    """A GPU no running process has (they share one only when there are more processes than GPUs)."""
    if not gpus:
        return None
    free = [g for g in gpus if g not in taken]
    return free[0] if free else min(gpus, key=taken.count)
