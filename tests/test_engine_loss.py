"""Assignment strategies, focal loss, label smoothing and the loss on hand-built boxes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torchvision.ops import sigmoid_focal_loss  # noqa: E402

from surgtui.config.schema import LossConfig  # noqa: E402
from surgtui.engine.assign import assign, candidate_scores  # noqa: E402
from surgtui.engine.loss import DetectionLoss, smooth_targets, targets_to_tensor  # noqa: E402
from surgtui.engine.model import ANCHORS_640, STRIDES  # noqa: E402

ANCHORS = torch.tensor(ANCHORS_640, dtype=torch.float32)
STRIDE_T = torch.tensor(STRIDES, dtype=torch.float32)
GRIDS = [(640 // s, 640 // s) for s in STRIDES]


def boxes(*rows: tuple[float, ...]) -> torch.Tensor:
    """(image, class, cx, cy, w, h) rows."""
    return torch.tensor(rows, dtype=torch.float32)


def scales_of(targets: torch.Tensor, strategy: str, **kw) -> list[set[int]]:
    a = assign(targets, ANCHORS, STRIDE_T, GRIDS, strategy, **kw)
    # Which box each positive came from: boxes here sit in different images.
    return [set(a.scale[a.image == i].tolist()) for i in range(len(targets))]


@pytest.mark.parametrize("strategy", ["iou_center", "size"])
def test_small_box_lands_on_stride_8_and_large_on_stride_32(strategy):
    t = boxes((0, 0, 100, 100, 10, 13), (1, 1, 320, 320, 300, 300))
    small, large = scales_of(t, strategy)
    assert small == {0}
    assert large == {2}


def test_size_and_iou_center_differ_where_shape_matters():
    # 116x90 is exactly YOLOv5's first P5 anchor, but its size sits nearer P4's typical size.
    t = boxes((0, 0, 16 * 32 + 16, 5 * 32 + 16, 116, 90))
    assert scales_of(t, "size") == [{1}]
    assert 2 in scales_of(t, "iou_center")[0]
    a = assign(t, ANCHORS, STRIDE_T, GRIDS, "iou_center")
    assert ((a.scale == 2) & (a.anchor == 0)).any()


def test_iou_center_adds_every_pair_above_the_threshold():
    t = boxes((0, 0, 100, 100, 10, 13))
    strict = assign(t, ANCHORS, STRIDE_T, GRIDS, "iou_center", iou_threshold=0.99)
    loose = assign(t, ANCHORS, STRIDE_T, GRIDS, "iou_center", iou_threshold=0.2)
    assert set(strict.anchor.tolist()) == {0}
    assert set(loose.anchor.tolist()) == {0, 1}  # 10x13 vs 16x30: shape IoU 0.27


def test_centre_distance_lowers_the_score():
    centred = boxes((0, 0, 4, 4, 10, 13))[:, 2:]
    offset = boxes((0, 0, 7.5, 7.5, 10, 13))[:, 2:]
    iou_c, score_c = candidate_scores(centred, ANCHORS, STRIDE_T, 0.5)
    iou_o, score_o = candidate_scores(offset, ANCHORS, STRIDE_T, 0.5)
    assert torch.equal(iou_c, iou_o)  # same shape
    assert score_o[0, 0] < score_c[0, 0] == iou_c[0, 0]
    _, score_0 = candidate_scores(offset, ANCHORS, STRIDE_T, 0.0)
    assert torch.equal(score_0, iou_o)


def test_neighbour_cells_give_three_cells_per_pair():
    # Centre at grid (12.3, 12.7) on stride 8: cell (12, 12), nearer its left and lower neighbours.
    t = boxes((0, 0, 8 * 12.3, 8 * 12.7, 10, 13))
    a = assign(t, ANCHORS, STRIDE_T, GRIDS, "iou_center", iou_threshold=0.99)
    cells = set(zip(a.gi.tolist(), a.gj.tolist()))
    assert cells == {(12, 12), (11, 12), (12, 13)}
    assert torch.allclose(a.box[:, 2:], torch.tensor([10 / 8, 13 / 8]).expand(3, 2))


def _rows(a) -> list[tuple]:
    cols = (a.scale, a.image, a.anchor, a.gj, a.gi, a.cls, a.box, a.anchor_wh)
    return sorted(tuple(torch.cat([c[i].view(-1).float() for c in cols]).tolist()) for i in range(len(a.image)))


@pytest.mark.parametrize("strategy", ["iou_center", "size"])
def test_batched_assignment_equals_one_box_at_a_time(strategy):
    t = boxes((0, 0, 100, 100, 10, 13), (3, 1, 200, 300, 150, 160), (3, 0, 50, 500, 40, 40), (1, 1, 630, 5, 20, 8))
    whole = _rows(assign(t, ANCHORS, STRIDE_T, GRIDS, strategy))
    single = sorted(r for i in range(len(t)) for r in _rows(assign(t[i : i + 1], ANCHORS, STRIDE_T, GRIDS, strategy)))
    assert whole == single


def test_focal_loss_equals_torchvision():
    loss = DetectionLoss(LossConfig(focal=True, focal_gamma=1.5, focal_alpha=0.3), ANCHORS, STRIDE_T, 2)
    logits, target = torch.randn(50, 2), torch.rand(50, 2)
    expected = sigmoid_focal_loss(logits, target, alpha=0.3, gamma=1.5, reduction="mean")
    assert torch.equal(loss.bce(logits, target), expected)
    plain = DetectionLoss(LossConfig(), ANCHORS, STRIDE_T, 2)
    assert torch.allclose(plain.bce(logits, target), F.binary_cross_entropy_with_logits(logits, target))


def test_smoothed_targets_follow_yolov5():
    assert smooth_targets(0.0) == (1.0, 0.0)
    assert smooth_targets(0.1) == pytest.approx((0.95, 0.05))


def constant_outputs(size: int, cls_logits: tuple[float, float]) -> list[torch.Tensor]:
    outs = []
    for s in STRIDES:
        p = torch.zeros(1, 3, size // s, size // s, 7)
        p[..., 5], p[..., 6] = cls_logits
        outs.append(p)
    return outs


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_class_loss_uses_smoothed_targets(eps):
    cfg = LossConfig(label_smoothing=eps)
    loss = DetectionLoss(cfg, ANCHORS, STRIDE_T, 2)
    t = boxes((0, 1, 100, 100, 10, 13))  # class 1 (needle_driver)
    _, parts = loss(constant_outputs(640, (2.0, -1.0)), t)
    cp, cn = 1 - eps / 2, eps / 2
    row = (F.softplus(torch.tensor(2.0)) - cn * 2.0 + F.softplus(torch.tensor(-1.0)) + cp * 1.0) / 2
    n_scales = len(set(loss.assign(constant_outputs(640, (0, 0)), t).scale.tolist()))
    assert parts[2].item() == pytest.approx(cfg.class_ * n_scales * row.item(), rel=1e-5)


def test_loss_components_weights_and_gradient():
    cfg = LossConfig(coord=0.1, conf=1.5, **{"class": 0.8})
    loss = DetectionLoss(cfg, ANCHORS / 4, STRIDE_T, 2)
    outs = [torch.randn(2, 3, 160 // s, 160 // s, 7, requires_grad=True) for s in STRIDES]
    targets = [
        {"boxes": torch.tensor([[10.0, 10, 30, 40], [50, 50, 150, 140]]), "labels": torch.tensor([0, 1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    total, parts = loss(outs, targets_to_tensor(targets, "cpu"))
    assert parts.shape == (4,) and not parts.requires_grad
    assert total.item() == pytest.approx(parts[:3].sum().item()) == pytest.approx(parts[3].item())
    total.backward()
    assert all(o.grad is not None and torch.isfinite(o.grad).all() for o in outs)
    # No objects at all: objectness only, still finite.
    total, parts = loss(outs, targets_to_tensor([targets[1]], "cpu"))
    assert parts[0] == 0 and parts[2] == 0 and torch.isfinite(total)


def test_objectness_weights_per_scale_balance():
    outs = constant_outputs(160, (0.0, 0.0))
    empty = torch.zeros(0, 6)
    a = DetectionLoss(LossConfig(obj_balance=[1.0, 0.0, 0.0]), ANCHORS / 4, STRIDE_T, 2)(outs, empty)[1][1]
    b = DetectionLoss(LossConfig(obj_balance=[2.0, 0.0, 0.0]), ANCHORS / 4, STRIDE_T, 2)(outs, empty)[1][1]
    expected = 1.5 * F.softplus(torch.tensor(0.0))  # conf weight x BCE(0 logit, target 0)
    assert a.item() == pytest.approx(expected.item()) and b.item() == pytest.approx(2 * expected.item())
