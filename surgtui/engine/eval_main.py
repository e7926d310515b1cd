"""`python -m surgtui.engine.eval_main WEIGHTS [DATA] [--split NAME] [--json]`: the engine's validation, standalone.

Started by `surgtui eval`. Runs `surgtui.engine.evaluate.evaluate` — the very function
training validates with — on the model in a checkpoint (its EMA weights, the weights the
`val` events scored) over one split of:

- a COCO, YOLO or prepared SimSurgSkill directory (split: `--split`, else the
  checkpoint config's `data.val_split` when the set has it, else its only split);
- `synthetic`: the synthetic set the checkpoint config's `[data.synthetic]` describes
  (split `val` unless `--split train`), generated into the cache if missing;
- nothing: the checkpoint's own validation data (`data.source`, `data.val_split`).

Images are letterboxed to the checkpoint's `model.img_size` and batched by its
`train.batch_size` (as training validated), with its `[val]` thresholds; on the same
data and weights the numbers equal the run's `val` event of that epoch (bit for bit
on CPU). Prints the metrics and per-class AP as tables, or with --json one object
{"metrics", "per_class"}, the `val` event's own fields.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from surgtui.config.device import DEVICE_CHOICES
from surgtui.config.schema import CLASS_NAMES, Experiment
from surgtui.config.schema import SYNTHETIC_SOURCE as SYNTHETIC
from surgtui.data.cache import VAL_SPLIT, cache_root, check_synthetic_split, synthetic_dataset
from surgtui.data.layouts import Layout, Split, match_split, open_layout, training_splits
from surgtui.engine.datasets import DetectionDataset, collate, resolve_source
from surgtui.engine.evaluate import evaluate
from surgtui.engine.inference import ProgressBar, load_model, main_wrapper
from surgtui.engine.runtime import resolve_device
from surgtui.errors import ExitCode, UserError
from surgtui.runs.inference import check_eval_args, resolve_weights
from surgtui.runs.layout import BEST_WEIGHTS, LAST_WEIGHTS
from surgtui.runs.metrics import METRIC_TITLES, METRICS, PER_CLASS_LABELS


def resolve_split(exp: Experiment, data: str | None, split: str | None) -> tuple[Layout, Split, str]:
    """(layout, split, description) of the data to evaluate on."""
    if data is None:  # the checkpoint's own validation data
        layout = resolve_source(exp.data)
        where = SYNTHETIC if exp.data.source == SYNTHETIC else f"{layout.root} ({layout.format})"
        if split is not None:
            chosen = layout.split(split, "--split")
        elif exp.data.source == SYNTHETIC:
            chosen = layout.split(VAL_SPLIT)
        else:
            chosen = training_splits(layout, exp.data)[1]
        return layout, chosen, f"{where}, the checkpoint's data.source"
    if data == SYNTHETIC:
        name = check_synthetic_split(split or VAL_SPLIT)
        s = exp.data.synthetic
        layout = open_layout(synthetic_dataset(s, cache_root(exp.data.cache_dir)), "coco")
        return (
            layout,
            layout.split(name),
            f"synthetic ({s.train} train + {s.val} val frames, {s.width}x{s.height}, seed {s.seed})",
        )
    # check_eval_args has refused a missing set and a raw SimSurgSkill one
    layout = open_layout(Path(data).expanduser(), "auto", exp.data.classes_map, key="--data format")
    if split is not None:
        return layout, layout.split(split, "--split"), f"{layout.root} ({layout.format})"
    if match_split(exp.data.val_split, list(layout.splits)) is not None:
        return layout, layout.split(exp.data.val_split), f"{layout.root} ({layout.format})"
    if len(layout.splits) == 1:
        return layout, next(iter(layout.splits.values())), f"{layout.root} ({layout.format})"
    raise UserError(
        f"{layout.root}: choose a split with --split ({', '.join(layout.splits) or 'none found'}); "
        f"the checkpoint's data.val_split {exp.data.val_split!r} is not one of them"
    )


def build_dataset(exp: Experiment, layout: Layout, split: Split) -> DetectionDataset:
    records = layout.read(split)
    if not records:
        raise UserError(f"{split.where()}: split {split.name!r} has no images")
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        raise UserError(
            f"{split.where()}: split {split.name!r}: {len(missing)} of {len(records)} images missing, "
            f"e.g. {missing[0]}"
        )
    return DetectionDataset(records, exp.model.img_size, rect=exp.data.rect)  # as validation in training


class _Counting:
    """A loader that advances a progress bar; keeps `.dataset` (evaluate reads its coco_gt())."""

    def __init__(self, loader: DataLoader, bar: ProgressBar) -> None:
        self.loader, self.dataset, self.bar = loader, loader.dataset, bar

    def __iter__(self) -> Iterator[Any]:
        for images, targets in self.loader:
            yield images, targets
            self.bar.advance(len(targets))


def run_eval(
    weights: str,
    data: str | None = None,
    split: str | None = None,
    device: str = "auto",
    batch: int | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Evaluate; returns {"metrics", "per_class", "context"} (context: what was evaluated, for the tables)."""
    check_eval_args(data, batch, device, split)
    path = resolve_weights(weights)
    dev = resolve_device(device, "--device")
    model, exp, ckpt = load_model(path, dev)
    layout, chosen, description = resolve_split(exp, data, split)
    ds = build_dataset(exp, layout, chosen)
    cuda = dev.type == "cuda"
    n_workers = exp.train.workers if workers is None else workers
    loader = DataLoader(
        ds,
        batch_size=batch or exp.train.batch_size,
        shuffle=False,
        num_workers=n_workers,
        collate_fn=collate,
        pin_memory=cuda,
    )
    bar = ProgressBar(
        f"eval {chosen.name}", len(ds), sys.stderr.isatty() if progress is None else progress, stderr=True
    )
    try:
        result = evaluate(model, _Counting(loader, bar), exp, dev)
    finally:
        bar.close()
    gt = (
        np.bincount(np.concatenate([r.labels for r in ds.records]), minlength=len(CLASS_NAMES))
        if ds.records
        else np.zeros(len(CLASS_NAMES), np.int64)
    )
    result["context"] = {
        "weights": str(path),
        "epoch": ckpt.get("epoch"),
        "step": ckpt.get("step"),
        "data": description,
        "split": chosen.name,
        "images": len(ds),
        "boxes": gt.tolist(),
        "img_size": exp.model.img_size,
        "device": str(dev),
    }
    return result


def print_tables(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    c = result["context"]
    console = Console()
    at = f" (epoch {c['epoch']}, step {c['step']})" if c.get("epoch") is not None else ""
    console.print(f"weights  {c['weights']}{at}", highlight=False, soft_wrap=True)
    console.print(
        f"data     {c['data']}, split {c['split']}: {c['images']} images, {sum(c['boxes'])} boxes, "
        f"letterboxed to {c['img_size']}, on {c['device']}",
        highlight=False,
        soft_wrap=True,
    )
    metrics = Table(title="COCO metrics", title_justify="left")
    for key in METRICS:
        metrics.add_column(METRIC_TITLES[key], justify="right")
    metrics.add_row(*(f"{result['metrics'][k]:.4f}" for k in METRICS))
    console.print(metrics)
    per_class = Table(title="per class", title_justify="left")
    per_class.add_column("class")
    for label in ("boxes", *PER_CLASS_LABELS.values()):
        per_class.add_column(label, justify="right")
    for i, (name, m) in enumerate(result["per_class"].items()):
        per_class.add_row(name, str(c["boxes"][i]), *(f"{m[k]:.4f}" for k in PER_CLASS_LABELS))
    console.print(per_class)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surgtui.engine.eval_main",
        description="Validate a checkpoint on a data set, as training validates.",
    )
    parser.add_argument("weights", help=f"weights file ({BEST_WEIGHTS}, {LAST_WEIGHTS}) or a run directory")
    parser.add_argument(
        "data",
        nargs="?",
        help="a COCO/YOLO/prepared directory or 'synthetic' [default: the checkpoint's own validation data]",
    )
    parser.add_argument(
        "--split", help="split to evaluate [default: the config's val split, or the only one]"
    )
    parser.add_argument("--json", action="store_true", help='print {"metrics", "per_class"} as JSON')
    parser.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} [auto]")
    parser.add_argument("--batch", type=int, help="images per forward pass [the config's train.batch_size]")
    parser.add_argument("--workers", type=int, help="data loader workers [the config's train.workers]")
    a = parser.parse_args(argv)

    def run() -> int:
        result = run_eval(a.weights, a.data, a.split, a.device, a.batch, a.workers)
        if a.json:
            print(json.dumps({"metrics": result["metrics"], "per_class": result["per_class"]}), flush=True)
        else:
            print_tables(result)
        return ExitCode.OK

    return main_wrapper(run)


if __name__ == "__main__":
    sys.exit(main())
