"""The one spelling of a device: `auto`, `cpu`, `cuda` or `cuda:N`, for train.device and `--device`."""

from __future__ import annotations

import re

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"(auto|cpu|cuda)(?::(\d+))?")


def parse_device(text: str) -> tuple[str, int | None]:
    """`cuda:1` -> ("cuda", 1), `auto` -> ("auto", None); ValueError naming the allowed values otherwise."""
    match = _DEVICE.fullmatch(text)
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ValueError(f"expected {DEVICE_CHOICES}; got {text!r}")
    return match.group(1), None if match.group(2) is None else int(match.group(2))
