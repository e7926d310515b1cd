"""Validation metrics on known predictions: pycocotools mAP, precision/recall at the max-F1 confidence, IoU."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from surgtui.config.load import resolve_data  # noqa: E402
from surgtui.config.schema import Experiment, SyntheticConfig  # noqa: E402
from surgtui.data.cache import cache_root, synthetic_dataset  # noqa: E402
from surgtui.data.formats import coco_annotation, coco_dict  # noqa: E402
from surgtui.engine.datasets import build_datasets, collate  # noqa: E402
from surgtui.engine.evaluate import evaluate, greedy_match, non_max_suppression  # noqa: E402


class Oracle(nn.Module):
    """Predicts each image's ground truth, transformed by `edit(boxes, labels) -> (boxes, labels, score)`."""

    def __init__(self, loader: DataLoader, edit) -> None:
        super().__init__()
        self.queue = [t for _, targets in loader for t in targets]
        self.edit = edit

    def forward(self, images: torch.Tensor) -> int:
        return len(images)

    def decode(self, n: int) -> torch.Tensor:
        rows = []
        for t in self.queue[:n]:
            boxes, labels, score = self.edit(t["boxes"], t["labels"])
            cls = nn.functional.one_hot(labels, 2).float()
            pad = torch.zeros(5, 7)  # padding rows score 0: never kept
            rows.append(torch.cat((torch.cat((boxes, torch.full((len(boxes), 1), score), cls), 1), pad)))
        del self.queue[:n]
        width = max(len(r) for r in rows)
        return torch.stack([torch.cat((r, torch.zeros(width - len(r), 7))) for r in rows])


class Fixed(nn.Module):
    """Returns the same decoded rows (x1, y1, x2, y2, obj, one-hot class) for image i of every batch."""

    def __init__(self, rows: list[list[list[float]]]) -> None:
        super().__init__()
        self.rows = rows

    def forward(self, images: torch.Tensor) -> int:
        return len(images)

    def decode(self, n: int) -> torch.Tensor:
        width = max(len(r) for r in self.rows)
        return torch.stack([torch.tensor(r + [[0.0] * 7] * (width - len(r))) for r in self.rows[:n]])


class OneBatch(list):
    """A loader of one batch whose `.dataset.coco_gt()` describes the given canvases and boxes."""

    def __init__(self, images: list[dict]) -> None:
        anns, targets = [], []
        for i, im in enumerate(images):
            for (x1, y1, x2, y2), label in zip(im["boxes"], im["labels"]):
                anns.append(coco_annotation(len(anns) + 1, i, label, x1, y1, x2 - x1, y2 - y1))
            targets.append(
                {
                    "boxes": torch.tensor(im["boxes"], dtype=torch.float32).view(-1, 4),
                    "labels": torch.tensor(im["labels"], dtype=torch.int64),
                    "image_id": i,
                    "orig_size": im["orig_size"],
                    "letterbox": im["letterbox"],
                }
            )
        gt = coco_dict(
            [
                {"id": i, "file_name": f"{i}.jpg", "width": im["canvas"][0], "height": im["canvas"][1]}
                for i, im in enumerate(images)
            ],
            anns,
        )
        super().__init__([(torch.zeros(len(images), 3, 8, 8), targets)])
        self.dataset = type("GT", (), {"coco_gt": staticmethod(lambda: gt)})()


EXP = Experiment()  # default [val]: conf_thres 0.001, iou_thres 0.6, working_conf 0.25


def det(box: list[float], score: float, label: int = 0) -> list[float]:
    return [*box, score, float(label == 0), float(label == 1)]


def square_image(boxes: list[list[float]], labels: list[int]) -> dict:
    return {
        "boxes": boxes,
        "labels": labels,
        "canvas": (200, 200),
        "orig_size": (200, 200),
        "letterbox": (1.0, 0, 0),
    }


@pytest.fixture(scope="module")
def setup():
    root: Path = synthetic_dataset(SyntheticConfig(train=16, val=4, seed=0), cache_root())
    exp, _ = resolve_data(
        {
            "model": {"pretrained": False, "img_size": 320},
            "data": {"source": str(root), "val_split": "train"},
        },
        "test",
    )
    _, val = build_datasets(exp)
    return exp, DataLoader(val, batch_size=4, shuffle=False, collate_fn=collate)


def run(setup, edit):
    exp, loader = setup
    return evaluate(Oracle(loader, edit), loader, exp, "cpu")


def test_perfect_predictions_score_one(setup):
    r = run(setup, lambda b, lab: (b, lab, 0.9))
    m = r["metrics"]
    assert m["map50"] == pytest.approx(1.0) and m["map50_95"] == pytest.approx(1.0)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["mean_iou"] == pytest.approx(1.0)
    assert set(r["per_class"]) == {"needle", "needle_driver"}
    assert all(c["ap50"] == pytest.approx(1.0) for c in r["per_class"].values())


def test_wrong_class_and_poor_boxes_score_zero(setup):
    m = run(setup, lambda b, lab: (b, 1 - lab, 0.9))["metrics"]
    assert m["map50"] == 0 and m["precision"] == 0 and m["recall"] == 0
    assert m["mean_iou"] < 0.1  # a relabelled box only counts where it overlaps a box of the other class
    shift = run(setup, lambda b, lab: (b + (b[:, 2:] - b[:, :2]).repeat(1, 2), lab, 0.9))["metrics"]
    assert shift["map50"] == 0 and shift["recall"] == 0


def test_below_working_conf_counts_for_map_precision_recall_but_not_mean_iou(setup):
    r = run(setup, lambda b, lab: (b, lab, 0.1))  # working_conf is 0.25
    m = r["metrics"]
    assert m["map50"] == pytest.approx(1.0)
    # P and R are taken at the max-F1 confidence, wherever it lies: below 0.1 here.
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and r["f1_conf"] < 0.1
    assert m["mean_iou"] == 0  # every box is missed at the working confidence


def test_half_the_objects_give_half_the_recall(setup):
    m = run(setup, lambda b, lab: (b[::2], lab[::2], 0.9))["metrics"]
    assert m["precision"] == 1.0
    assert 0.3 < m["recall"] < 0.7
    assert 0.3 < m["map50"] < 0.7


def test_mean_iou_is_over_ground_truth_with_misses_as_zero(setup):
    m = run(setup, lambda b, lab: (b[lab == 0], lab[lab == 0], 0.9))["metrics"]  # needles only
    # Needles fit exactly; needle drivers have no same-class detection and count 0.
    _, loader = setup
    labels = torch.cat([t["labels"] for _, ts in loader for t in ts])
    assert m["mean_iou"] == pytest.approx(float((labels == 0).float().mean()))
    assert m["recall"] == pytest.approx(0.5)  # mean over classes of 1 and 0


A, B = [10.0, 10, 50, 50], [100.0, 100, 150, 150]  # two needles
FAR = [10.0, 120, 40, 150]  # overlaps neither


def test_precision_recall_at_the_max_f1_confidence():
    # By hand, YOLOv5's ap_per_class: detections by score 0.9 (A, TP), 0.3 (FP), 0.2 (B, TP);
    # cumulative P = 1, 1/2, 2/3 and R = 1/2, 1/2, 1. Below 0.2 on the grid P = 2/3, R = 1,
    # F1 = 0.8; between the scores F1 is lower (0.67 at 0.3, dropping from 0.8 between 0.2 and
    # 0.3), above 0.9 R = 0. The smoothed F1 is highest from confidence 0 (end values pad the
    # filter), the first argmax: f1_conf = 0, P = 2/3, R = 1. A fixed 0.25 would give P = R = 1/2.
    loader = OneBatch([square_image([A, B], [0, 0])])
    r = evaluate(Fixed([[det(A, 0.9), det(FAR, 0.3), det(B, 0.2)]]), loader, EXP, "cpu")
    assert r["f1_conf"] == 0.0
    assert r["metrics"]["precision"] == pytest.approx(2 / 3) and r["metrics"]["recall"] == 1.0
    assert r["per_class"]["needle"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["needle_driver"] == {"ap50": 0.0, "ap50_95": 0.0, "precision": 0.0, "recall": 0.0}
    # Mean IoU at working_conf 0.25: A is found exactly, B's only detection scores 0.2: (1 + 0) / 2.
    assert r["metrics"]["mean_iou"] == pytest.approx(0.5)


def test_max_f1_confidence_between_detections():
    # Scores 0.9 (A), 0.8 (B), 0.5 (FP), 0.4 (FP). Unsmoothed F1 peaks at 0.8 (P = R = 1); above
    # it R falls to 1/2 within 0.1, below it P falls only to 2/3 at 0.5, so the box filter moves
    # the peak a little below 0.8. There R = 1 and P is interpolated between 1 at 0.8 and 2/3 at
    # 0.5: P(c) = 2/3 + (c - 0.5) / 0.9. A fixed 0.25 would give P = 1/2, R = 1.
    loader = OneBatch([square_image([A, B], [0, 0])])
    dets = [det(A, 0.9), det(B, 0.8), det(FAR, 0.5), det([160.0, 10, 190, 40], 0.4)]
    r = evaluate(Fixed([dets]), loader, EXP, "cpu")
    c = r["f1_conf"]
    assert 0.7 < c < 0.8
    assert r["metrics"]["recall"] == 1.0
    assert r["metrics"]["precision"] == pytest.approx(2 / 3 + (c - 0.5) / 0.9)


def test_mean_iou_counts_poor_fits_and_misses():
    # A is covered by a box of IoU 0.4 (under the 0.5 match threshold, still counted); B is
    # missed: its only box has the other class.
    poor = [10.0, 10, 50, 26]  # 40 x 16 inside A's 40 x 40
    loader = OneBatch([square_image([A, B], [0, 0])])
    m = evaluate(Fixed([[det(poor, 0.9), det(B, 0.9, label=1)]]), loader, EXP, "cpu")["metrics"]
    assert m["mean_iou"] == pytest.approx((0.4 + 0) / 2)
    assert m["recall"] == 0 and m["precision"] == 0


def test_predictions_are_clipped_to_the_image_content():
    # Image 0: 200 x 100 letterboxed into 200 x 200 with 50 px bands above and below.
    # Image 1: 640 x 384 at scale 0.5 in a 320 x 224 canvas (a batch padded at the bottom).
    top, right = [10.0, 50, 60, 80], [150.0, 60, 200, 100]
    bottom = [100.0, 150, 180, 192]
    images = [
        {
            "boxes": [top, right],
            "labels": [0, 1],
            "canvas": (200, 200),
            "orig_size": (100, 200),
            "letterbox": (1.0, 0, 50),
        },
        {
            "boxes": [bottom],
            "labels": [1],
            "canvas": (320, 224),
            "orig_size": (384, 640),
            "letterbox": (0.5, 0, 0),
        },
    ]
    rows = [
        [det([10.0, 30, 60, 80], 0.9, 0), det([150.0, 60, 230, 100], 0.9, 1)],  # into the band / off the edge
        [det([100.0, 150, 180, 220], 0.9, 1)],
    ]  # into the batch padding
    m = evaluate(Fixed(rows), OneBatch(images), EXP, "cpu")["metrics"]
    assert m["map50_95"] == pytest.approx(1.0) and m["mean_iou"] == pytest.approx(1.0)
    assert m["precision"] == 1.0 and m["recall"] == 1.0


def test_nms_keeps_one_of_overlapping_same_class_boxes():
    box = torch.tensor([10.0, 10, 50, 50])
    preds = torch.stack(
        [
            torch.cat((box, torch.tensor([0.9, 1.0, 0.0]))),
            torch.cat((box + 1, torch.tensor([0.8, 1.0, 0.0]))),  # same class, IoU > 0.6: suppressed
            torch.cat((box + 1, torch.tensor([0.8, 0.0, 1.0]))),  # other class: kept
            torch.cat((box + 100, torch.tensor([0.0005, 1.0, 0.0]))),  # under conf_thres
        ]
    )[None]
    (det,) = non_max_suppression(preds, 0.001, 0.6, 300)
    assert det[:, 5].tolist() == [0.0, 1.0]
    assert det[:, 4].tolist() == pytest.approx([0.9, 0.8])


def test_greedy_match_is_one_to_one_by_iou():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10]])
    det = torch.tensor([[0.0, 0, 10, 10, 0.9, 0], [1, 0, 11, 10, 0.8, 0], [20, 0, 30, 10, 0.7, 1]])
    d, iou = greedy_match(gt, torch.tensor([0, 0]), det)
    assert d.tolist() == [0] and iou.tolist() == pytest.approx([1.0])  # det 2 has the wrong class
