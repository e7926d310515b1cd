"""Validation: NMS, COCO mAP (pycocotools), precision/recall at the max-F1 confidence, mean IoU, and the
training loss on the validation set.

`evaluate(model, loader, exp, device)` is shared by training and `surgtui eval`.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.ops import batched_nms, box_iou

from surgtui.config.schema import CLASS_NAMES, Experiment
from surgtui.engine.loss import COMPONENTS, DetectionLoss, targets_to_tensor
from surgtui.engine.model import Detector
from surgtui.runs.metrics import AP50, AP50_95, MAP50, MAP50_95, MEAN_IOU, PRECISION, RECALL

MAX_NMS_CANDIDATES = 30_000  # YOLOv5's cap on boxes entering NMS per image
MATCH_IOU = 0.5
CONF_GRID = np.linspace(0, 1, 1000)  # YOLOv5's confidence grid for the P/R/F1 curves
F1_SMOOTH = 0.1  # YOLOv5 smooths the mean F1 curve with a box filter this fraction of the grid wide


def non_max_suppression(
    preds: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int
) -> list[torch.Tensor]:
    """`[B, N, 5 + nc]` decoded predictions -> per image `[K, 6]` (x1, y1, x2, y2, score, label).

    Multi-label like YOLOv5's validation: a box may survive once per class whose
    score (objectness x class probability) clears `conf_thres`; NMS is per class.
    """
    out = []
    for p in preds:
        scores = p[:, 4:5] * p[:, 5:]
        i, c = (scores > conf_thres).nonzero(as_tuple=True)
        s = scores[i, c]
        if len(s) > MAX_NMS_CANDIDATES:
            s, top = s.topk(MAX_NMS_CANDIDATES)
            i, c = i[top], c[top]
        boxes = p[i, :4]
        keep = batched_nms(boxes, s, c, iou_thres)[:max_det]
        out.append(torch.cat((boxes[keep], s[keep, None], c[keep, None].float()), 1))
    return out


def greedy_match(
    gt_boxes: torch.Tensor, gt_labels: torch.Tensor, det: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Match detections to same-class ground truth at IoU >= 0.5, highest IoU first, one to one.

    Returns (indices of matched detections, their IoUs).
    """
    if not len(gt_boxes) or not len(det):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    iou = box_iou(gt_boxes, det[:, :4])
    iou = torch.where(gt_labels[:, None] == det[None, :, 5].long(), iou, torch.zeros_like(iou)).cpu().numpy()
    g, d = np.nonzero(iou >= MATCH_IOU)
    v = iou[g, d]
    order = np.argsort(-v, kind="stable")
    g, d, v = g[order], d[order], v[order]
    # Keep each detection's best pair, then each ground truth's best among those (YOLOv5's process_batch).
    _, first = np.unique(d, return_index=True)
    first.sort()
    g, d, v = g[first], d[first], v[first]
    _, first = np.unique(g, return_index=True)
    return d[first], v[first]


def coco_map(coco_gt: dict, detections: np.ndarray, max_det: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """COCOeval on `[K, 7]` rows (image_id, x, y, w, h, score, category_id).

    Returns (AP@0.5 per category, AP@0.5:0.95 per category, category ids); -1 where a
    category has no ground truth.
    """
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO()
        gt.dataset = coco_gt
        gt.createIndex()
        cat_ids = sorted(gt.getCatIds())
        if not len(detections):
            return np.full(len(cat_ids), -1.0), np.full(len(cat_ids), -1.0), cat_ids
        dt = gt.loadRes(detections)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, max_det]
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # [iou thr, recall pts, category], area=all, maxDets=max_det
    ap50_95 = np.array([_mean_valid(prec[:, :, k]) for k in range(prec.shape[2])])
    ap50 = np.array([_mean_valid(prec[0, :, k]) for k in range(prec.shape[2])])
    return ap50, ap50_95, cat_ids


def _mean_valid(x: np.ndarray) -> float:
    x = x[x > -1]
    return float(x.mean()) if x.size else -1.0


def _label_to_category(coco_gt: dict, names: tuple[str, ...]) -> np.ndarray:
    """Map label index -> COCO category id, by name when the names match, else by sorted id."""
    by_name = {c["name"]: c["id"] for c in coco_gt["categories"]}
    if all(n in by_name for n in names):
        return np.array([by_name[n] for n in names])
    return np.array(sorted(by_name.values())[: len(names)])


def clip_to_content(det: torch.Tensor, target: dict) -> torch.Tensor:
    """Clip `[K, 6]` detections' boxes (in place) to the image content of the input canvas.

    The content of an `orig_size` (h, w) image letterboxed with (scale, pad_x, pad_y) spans
    x in [pad_x, pad_x + w * scale], y in [pad_y, pad_y + h * scale] (what `predict` clips to).
    """
    scale, pad_x, pad_y = (float(v) for v in target["letterbox"])
    h, w = (float(v) for v in target["orig_size"])
    det[:, [0, 2]] = det[:, [0, 2]].clamp(pad_x, pad_x + w * scale)
    det[:, [1, 3]] = det[:, [1, 3]].clamp(pad_y, pad_y + h * scale)
    return det


def smooth(y: np.ndarray, f: float) -> np.ndarray:
    """Box filter `f` of the length of `y` wide (odd), edges padded with the end values (YOLOv5's `smooth`)."""
    nf = round(len(y) * f * 2) // 2 + 1
    pad = np.ones(nf // 2)
    return np.convolve(np.concatenate((pad * y[0], y, pad * y[-1])), np.ones(nf) / nf, mode="valid")


def pr_at_max_f1(
    tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, n_gt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-class precision and recall at the confidence maximising the class-mean F1 (YOLOv5's `ap_per_class`).

    tp, conf, pred_cls: one entry per detection (true positive at IoU 0.5, score, label);
    n_gt: ground-truth boxes per class. Per class, P and R are cumulative over detections by
    descending score, interpolated on a 1000-point confidence grid (P = 1, R = 0 above the top
    score). F1 is averaged over classes with ground truth, smoothed, and its argmax picks the
    confidence. Returns (precision [nc], recall [nc], that confidence); classes without ground truth get 0.
    """
    nc = len(n_gt)
    p, r = np.zeros((nc, len(CONF_GRID))), np.zeros((nc, len(CONF_GRID)))
    order = np.argsort(-conf, kind="stable")
    tp, conf, pred_cls = tp[order].astype(float), conf[order], pred_cls[order]
    for c in range(nc):
        mine = pred_cls == c
        if not n_gt[c] or not mine.any():
            continue
        tpc = tp[mine].cumsum()
        fpc = (1 - tp[mine]).cumsum()
        # np.interp needs increasing x: scores descend, so interpolate on -confidence.
        r[c] = np.interp(-CONF_GRID, -conf[mine], tpc / n_gt[c], left=0)
        p[c] = np.interp(-CONF_GRID, -conf[mine], tpc / (tpc + fpc), left=1)
    present = n_gt > 0
    if not present.any():
        return np.zeros(nc), np.zeros(nc), 0.0
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    k = int(smooth(f1[present].mean(0), F1_SMOOTH).argmax())
    return np.where(present, p[:, k], 0.0), np.where(present, r[:, k], 0.0), float(CONF_GRID[k])


def best_iou_per_gt(gt_boxes: torch.Tensor, gt_labels: torch.Tensor, det: torch.Tensor) -> np.ndarray:
    """For each ground-truth box, the highest IoU of any same-class detection in `det` (0 if none)."""
    if not len(gt_boxes) or not len(det):
        return np.zeros(len(gt_boxes))
    iou = box_iou(gt_boxes, det[:, :4])
    iou = torch.where(gt_labels[:, None] == det[None, :, 5].long(), iou, torch.zeros_like(iou))
    return iou.max(1).values.cpu().numpy()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader: Any, exp: Experiment, device: torch.device | str
) -> dict[str, Any]:
    """Run `model` over `loader` (a validation DataLoader whose dataset has `coco_gt()`).

    Returns {"metrics": {map50, map50_95, precision, recall, mean_iou},
    "per_class": {name: {ap50, ap50_95, precision, recall}}, "f1_conf": confidence of P and R,
    "loss": {coord, conf, class, total}}. Predicted boxes are clipped to each image's content first.
    Undefined values (no ground truth of a class, no detections) are 0. The loss is the training loss
    (`loss.DetectionLoss`, the experiment's weights) on the raw head outputs, a mean over batches as
    `epoch_end`'s is over steps; None for a model that is not a `Detector` (the loss needs its anchors).
    """
    device = torch.device(device)
    names = CLASS_NAMES
    nc = len(names)
    coco_gt = loader.dataset.coco_gt()
    to_cat = _label_to_category(coco_gt, names)
    was_training = model.training
    model.eval()
    rows: list[np.ndarray] = []
    tp: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    classes: list[np.ndarray] = []
    n_gt = np.zeros(nc, dtype=np.int64)
    ious: list[np.ndarray] = []
    amp = device.type == "cuda" and exp.train.amp
    loss_fn = (
        DetectionLoss(exp.loss, model.anchors, model.strides, model.nc, model.img_size)
        if isinstance(model, Detector)
        else None
    )
    loss_sum, batches = torch.zeros(len(COMPONENTS), device=device), 0
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp):
            outputs = model(images)
        if loss_fn is not None:
            loss_sum += loss_fn(outputs, targets_to_tensor(targets, device))[1]  # float32, as in training
            batches += 1
        preds = model.decode(outputs)
        dets = non_max_suppression(preds, exp.val.conf_thres, exp.val.iou_thres, exp.val.max_det)
        for det, tgt in zip(dets, targets):
            det = clip_to_content(det.float().cpu(), tgt)
            boxes, labels = tgt["boxes"].float(), tgt["labels"].long()
            xywh = torch.cat((det[:, :2], det[:, 2:4] - det[:, :2]), 1)
            image_id = np.full((len(det), 1), int(tgt["image_id"]))
            cats = to_cat[det[:, 5].long().numpy()][:, None]
            rows.append(np.hstack((image_id, xywh.numpy(), det[:, 4:5].numpy(), cats)))
            hit = np.zeros(len(det), dtype=bool)
            hit[greedy_match(boxes, labels, det)[0]] = True
            tp.append(hit)
            scores.append(det[:, 4].numpy())
            classes.append(det[:, 5].long().numpy())
            n_gt += np.bincount(labels.numpy(), minlength=nc)
            ious.append(best_iou_per_gt(boxes, labels, det[det[:, 4] >= exp.val.working_conf]))
    model.train(was_training)

    ap50, ap50_95, cat_ids = coco_map(
        coco_gt, np.concatenate(rows) if rows else np.zeros((0, 7)), exp.val.max_det
    )
    # Re-index COCO's per-category results by label; -1 (undefined) where the category is absent.
    k = [cat_ids.index(c) if c in cat_ids else None for c in to_cat.tolist()]
    ap50 = np.array([ap50[j] if j is not None else -1.0 for j in k])
    ap50_95 = np.array([ap50_95[j] if j is not None else -1.0 for j in k])
    precision, recall, f1_conf = pr_at_max_f1(
        _concat(tp, bool), _concat(scores, np.float32), _concat(classes, np.int64), n_gt
    )
    per_class = {
        name: {
            AP50: max(float(ap50[i]), 0.0),
            AP50_95: max(float(ap50_95[i]), 0.0),
            PRECISION: float(precision[i]),
            RECALL: float(recall[i]),
        }
        for i, name in enumerate(names)
    }
    present = n_gt > 0  # classes without ground truth have no AP or recall: leave them out of the means
    best = _concat(ious, np.float32)
    metrics = {
        MAP50: _mean_of(ap50[present]),
        MAP50_95: _mean_of(ap50_95[present]),
        PRECISION: _mean_of(precision[present]),
        RECALL: _mean_of(recall[present]),
        MEAN_IOU: float(best.mean()) if best.size else 0.0,
    }
    loss = dict(zip(COMPONENTS, (loss_sum / batches).tolist())) if batches else None
    return {"metrics": metrics, "per_class": per_class, "f1_conf": f1_conf, "loss": loss}


def _mean_of(values: np.ndarray) -> float:
    return float(np.clip(values, 0.0, None).mean()) if values.size else 0.0


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)
