"""Validation metrics on known predictions: pycocotools mAP, precision/recall at the working confidence, IoU."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from surgtui.config.load import resolve_data  # noqa: E402
from surgtui.config.schema import SyntheticConfig  # noqa: E402
from surgtui.data.cache import cache_root, synthetic_dataset  # noqa: E402
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


@pytest.fixture(scope="module")
def setup():
    root: Path = synthetic_dataset(SyntheticConfig(train=16, val=4, seed=0), cache_root())
    exp, _ = resolve_data({"model": {"pretrained": False, "img_size": 320},
                           "data": {"source": str(root), "val_split": "train"}}, "test")
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
    assert m["map50"] == 0 and m["precision"] == 0 and m["recall"] == 0 and m["mean_iou"] == 0
    shift = run(setup, lambda b, lab: (b + (b[:, 2:] - b[:, :2]).repeat(1, 2), lab, 0.9))["metrics"]
    assert shift["map50"] == 0 and shift["recall"] == 0


def test_below_working_conf_counts_for_map_but_not_precision_recall(setup):
    m = run(setup, lambda b, lab: (b, lab, 0.1))["metrics"]  # working_conf is 0.25
    assert m["map50"] == pytest.approx(1.0)
    assert m["precision"] == 0 and m["recall"] == 0


def test_half_the_objects_give_half_the_recall(setup):
    m = run(setup, lambda b, lab: (b[::2], lab[::2], 0.9))["metrics"]
    assert m["precision"] == 1.0
    assert 0.3 < m["recall"] < 0.7
    assert 0.3 < m["map50"] < 0.7


def test_nms_keeps_one_of_overlapping_same_class_boxes():
    box = torch.tensor([10.0, 10, 50, 50])
    preds = torch.stack([
        torch.cat((box, torch.tensor([0.9, 1.0, 0.0]))),
        torch.cat((box + 1, torch.tensor([0.8, 1.0, 0.0]))),  # same class, IoU > 0.6: suppressed
        torch.cat((box + 1, torch.tensor([0.8, 0.0, 1.0]))),  # other class: kept
        torch.cat((box + 100, torch.tensor([0.0005, 1.0, 0.0]))),  # under conf_thres
    ])[None]
    (det,) = non_max_suppression(preds, 0.001, 0.6, 300)
    assert det[:, 5].tolist() == [0.0, 1.0]
    assert det[:, 4].tolist() == pytest.approx([0.9, 0.8])


def test_greedy_match_is_one_to_one_by_iou():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10]])
    det = torch.tensor([[0.0, 0, 10, 10, 0.9, 0], [1, 0, 11, 10, 0.8, 0], [20, 0, 30, 10, 0.7, 1]])
    d, iou = greedy_match(gt, torch.tensor([0, 0]), det)
    assert d.tolist() == [0] and iou.tolist() == pytest.approx([1.0])  # det 2 has the wrong class
