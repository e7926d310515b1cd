"""The scalars the W&B and TensorBoard mirrors log for an event: one naming for both."""

from __future__ import annotations

from typing import Any

from surgtui.runs.metrics import VAL_PREFIX

STEP_LOSS, EPOCH_LOSS, VAL_LOSS, LR = "loss/", "epoch_loss/", "val_loss/", "lr/"


def event_scalars(e: dict[str, Any]) -> dict[str, float]:
    """{tag: value} for a `step`, `epoch_end` or `val` event (values the event left null are left out);
    {} for any other event."""
    kind = e.get("type")
    row: dict[str, Any] = {}
    if kind == "step":
        row.update({f"{LR}{k}": v for k, v in (e.get("lr") or {}).items()})
        row.update({f"{STEP_LOSS}{k}": v for k, v in (e.get("loss") or {}).items()})
        row.update(
            grad_norm=e.get("grad_norm"),
            clipped=int(bool(e.get("clipped"))),
            imgs_per_s=e.get("imgs_per_s"),
            epoch=e.get("epoch"),
        )
    elif kind == "epoch_end":
        row.update({f"{EPOCH_LOSS}{k}": v for k, v in (e.get("loss") or {}).items()})
    elif kind == "val":
        row.update({f"{VAL_PREFIX}{k}": v for k, v in (e.get("metrics") or {}).items()})
        for cls, m in (e.get("per_class") or {}).items():
            row.update({f"{VAL_PREFIX}{cls}/{k}": v for k, v in m.items()})
        row.update({f"{VAL_LOSS}{k}": v for k, v in (e.get("loss") or {}).items()})
    return {k: v for k, v in row.items() if isinstance(v, (int, float))}
