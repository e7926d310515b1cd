"""The validation metrics' names: keys in `val` events, labels in tables, and the metric that picks best.pt."""

from __future__ import annotations

MAP50, MAP50_95, PRECISION, RECALL, MEAN_IOU = "map50", "map50_95", "precision", "recall", "mean_iou"
METRICS = (MAP50, MAP50_95, PRECISION, RECALL, MEAN_IOU)  # the order every table shows them in
BEST_METRIC = MAP50_95  # best.pt is the epoch with the highest
METRIC_LABELS = {MAP50: "mAP50", MAP50_95: "mAP50-95", PRECISION: "P", RECALL: "R", MEAN_IOU: "IoU"}
METRIC_TITLES = {**METRIC_LABELS, MEAN_IOU: "mean IoU"}  # reports with room for a longer name
VAL_PREFIX, TRAIN_PREFIX = "val/", "train/"  # per-epoch rows: `val/map50_95`, `train/total`
