"""The validation metrics' names: keys in `val` events, labels in tables, and the metric that picks best.pt."""

from __future__ import annotations

MAP50, MAP50_95, PRECISION, RECALL, MEAN_IOU = "map50", "map50_95", "precision", "recall", "mean_iou"
METRICS = (MAP50, MAP50_95, PRECISION, RECALL, MEAN_IOU)  # the order every table shows them in
BEST_METRIC = MAP50_95  # best.pt is the epoch with the highest
METRIC_LABELS = {MAP50: "mAP50", MAP50_95: "mAP50-95", PRECISION: "P", RECALL: "R", MEAN_IOU: "IoU"}
METRIC_TITLES = {**METRIC_LABELS, MEAN_IOU: "mean IoU"}  # reports with room for a longer name
# Per class (val events' per_class, eval's table): AP at IoU 0.5 and 0.5:0.95, P and R at the best-F1 score.
AP50, AP50_95 = "ap50", "ap50_95"
PER_CLASS_METRICS = (AP50, AP50_95, PRECISION, RECALL)
PER_CLASS_LABELS = {AP50: "AP50", AP50_95: "AP50-95", PRECISION: "P", RECALL: "R"}
VAL_PREFIX, TRAIN_PREFIX = "val/", "train/"  # per-epoch rows: `val/map50_95`, `train/total`
