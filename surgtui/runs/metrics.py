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
# The loss components of `step`, `epoch_end` and `val` events, in the order the engine computes them.
COORD, CONF, CLASS, TOTAL = "coord", "conf", "class", "total"
LOSS_COMPONENTS = (COORD, CONF, CLASS, TOTAL)

# `surgtui export --format yolov5`: YOLOv5's results.csv columns after `epoch`, in its order
# (ultralytics/yolov5 utils/loggers/__init__.py, `Loggers.keys`), each with the `epoch_rows` key it is read
# from. Its box / obj / cls losses are our coord / conf / class; of its three lr groups (biases, weights, BN
# weights) x/lr0 gets our backbone's lr, x/lr1 and x/lr2 the head's.
YOLOV5_COLUMNS: tuple[tuple[str, str], ...] = (
    ("train/box_loss", TRAIN_PREFIX + COORD),
    ("train/obj_loss", TRAIN_PREFIX + CONF),
    ("train/cls_loss", TRAIN_PREFIX + CLASS),
    ("metrics/precision", VAL_PREFIX + PRECISION),
    ("metrics/recall", VAL_PREFIX + RECALL),
    ("metrics/mAP_0.5", VAL_PREFIX + MAP50),
    ("metrics/mAP_0.5:0.95", VAL_PREFIX + MAP50_95),
    ("val/box_loss", VAL_PREFIX + COORD),
    ("val/obj_loss", VAL_PREFIX + CONF),
    ("val/cls_loss", VAL_PREFIX + CLASS),
    ("x/lr0", "lr/backbone"),
    ("x/lr1", "lr/head"),
    ("x/lr2", "lr/head"),
)
