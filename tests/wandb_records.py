"""Read history rows back from an offline W&B run's `run-<id>.wandb` file.

The file is a LevelDB-style log (32 KiB blocks of checksummed chunks) of W&B's
protobuf `Record`s after a 7-byte header; wandb ships the protobuf classes but
no public reader, so the tests read it here instead of trusting what was logged.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    out: list[bytes] = []
    pending = b""
    pos = HEADER
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
            pending = b""
    return out


def history(run_dir: Path, offline_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every `wandb.log` row of the offline run under `run_dir/wandb` (the only one, or `offline_dir`), as dicts."""
    from wandb.proto import wandb_internal_pb2

    where = offline_dir or run_dir / "wandb"
    (path,) = list(where.glob("run-*.wandb" if offline_dir else "offline-run-*/run-*.wandb"))
    rows = []
    for raw in records(path):
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "history":
            row = {}
            for item in rec.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            rows.append(row)
    return rows
