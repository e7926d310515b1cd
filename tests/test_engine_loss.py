"""Assignment strategies, focal loss, label smoothing and the loss on hand-built boxes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torchvision.ops import sigmoid_focal_loss  # noqa: E402

from surgtui.config.schema import LossConfig, ModelConfig  # noqa: E402
from surgtui.engine.assign import assign, candidate_scores  # noqa: E402
from surgtui.engine.loss import DetectionLoss, loss_weights, smooth_targets, targets_to_tensor  # noqa: E402
from surgtui.engine.model import ANCHORS_640, STRIDES, build_model  # noqa: E402

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
    return sorted(
        tuple(torch.cat([c[i].view(-1).float() for c in cols]).tolist()) for i in range(len(a.image))
    )


@pytest.mark.parametrize("strategy", ["iou_center", "size"])
def test_batched_assignment_equals_one_box_at_a_time(strategy):
    t = boxes(
        (0, 0, 100, 100, 10, 13), (3, 1, 200, 300, 150, 160), (3, 0, 50, 500, 40, 40), (1, 1, 630, 5, 20, 8)
    )
    whole = _rows(assign(t, ANCHORS, STRIDE_T, GRIDS, strategy))
    single = sorted(
        r for i in range(len(t)) for r in _rows(assign(t[i : i + 1], ANCHORS, STRIDE_T, GRIDS, strategy))
    )
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
    cfg = LossConfig(label_smoothing=eps, yolov5_scaling=False)
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


def test_yolov5_scaling_of_the_seed_weights_at_two_classes_and_320_px():
    # docs/engine.md: box x 3/nl, objectness x (320/640)^2, class x 2/80 (nl = 3).
    assert loss_weights(LossConfig(), 2, 320) == pytest.approx((0.1, 0.375, 0.02))
    assert loss_weights(LossConfig(yolov5_scaling=False), 2, 320) == (0.1, 1.5, 0.8)


def test_doubling_coord_doubles_the_box_component_only():
    outs = [torch.randn(2, 3, 160 // s, 160 // s, 7) for s in STRIDES]
    t = boxes((0, 0, 40, 50, 20, 30), (1, 1, 100, 80, 60, 50))
    _, one = DetectionLoss(LossConfig(coord=0.1), ANCHORS / 4, STRIDE_T, 2, 160)(outs, t)
    _, two = DetectionLoss(LossConfig(coord=0.2), ANCHORS / 4, STRIDE_T, 2, 160)(outs, t)
    assert one[0] > 0 and two[0].item() == pytest.approx(2 * one[0].item())
    assert torch.equal(one[1:3], two[1:3])


def test_the_four_times_filter_drops_pairs_the_head_cannot_reach():
    # 45x58 px is 4.5x P3's first anchor (10x13) but within 3x of its others: the filter keeps only
    # (scale, anchor) pairs whose width and height ratios are both below anchor_t.
    t = boxes((0, 0, 300, 300, 45, 58))
    a = assign(t, ANCHORS, STRIDE_T, GRIDS, "iou_center", anchor_t=4.0)
    wh = torch.tensor([45.0, 58.0])
    for s, k in zip(a.scale.tolist(), a.anchor.tolist()):
        r = wh / ANCHORS[s, k]
        assert torch.max(r, 1 / r).max() < 4.0
    assert not ((a.scale == 0) & (a.anchor == 0)).any()
    unfiltered = assign(t, ANCHORS, STRIDE_T, GRIDS, "iou_center", iou_threshold=0.0, anchor_t=0.0)
    assert ((unfiltered.scale == 0) & (unfiltered.anchor == 0)).any()
    # A box beyond 4x of every anchor has no positive at all (YOLOv5: autoanchor is the cure).
    huge = assign(boxes((0, 0, 320, 320, 600, 20)), ANCHORS, STRIDE_T, GRIDS, "size", anchor_t=4.0)
    assert len(huge.image) == 0


@pytest.mark.parametrize("strategy", ["iou_center", "size"])
def test_targets_encoded_by_the_assignment_decode_back_to_the_boxes(strategy):
    size = 160
    model = build_model(ModelConfig(pretrained=False, img_size=size, neck_width=16, backbone="resnet18"))
    t = boxes((0, 0, 40, 50, 20, 30), (0, 1, 100, 80, 60, 50), (1, 1, 81, 120, 100, 44))
    loss = DetectionLoss(LossConfig(), model.anchors, model.strides, 2, size)
    outs = [torch.full((2, 3, size // s, size // s, 7), -20.0) for s in STRIDES]
    asg = loss.assign(outs, t)
    # Invert the YOLOv5 parametrisation at each positive: xy = 2 sigma - 0.5, wh = (2 sigma)^2 anchor.
    sxy = (asg.box[:, :2] + 0.5) / 2
    swh = (asg.box[:, 2:] / asg.anchor_wh).sqrt() / 2
    logits = torch.logit(torch.cat((sxy, swh), 1).double()).float()
    for i in range(len(asg.image)):
        outs[asg.scale[i]][asg.image[i], asg.anchor[i], asg.gj[i], asg.gi[i], :4] = logits[i]
    _, parts = loss(outs, t)
    assert parts[0].item() == pytest.approx(0.0, abs=1e-4)  # 1 - CIoU of a perfect box
    decoded = model.decode(outs)  # [B, N, 4 + 1 + nc], scales concatenated
    offsets = [0]
    for o in outs[:-1]:
        offsets.append(offsets[-1] + o[0].numel() // o.shape[-1])
    for i in range(len(asg.image)):
        s, (b, k, j, g) = asg.scale[i], (int(v[i]) for v in (asg.image, asg.anchor, asg.gj, asg.gi))
        h, w = outs[s].shape[2:4]
        row = decoded[b, offsets[s] + (k * h + j) * w + g, :4]
        source = t[(t[:, 0] == b) & (t[:, 1] == asg.cls[i])]
        gt = torch.cat((source[:, 2:4] - source[:, 4:6] / 2, source[:, 2:4] + source[:, 4:6] / 2), 1)
        assert torch.isclose(row[None], gt, atol=1e-3).all(1).any(), (row, gt)


def test_degenerate_predictions_give_a_finite_loss_and_gradient():
    # Every logit saturated: sigmoid(-1e4) is exactly 0, so predicted boxes have w = h = 0.
    outs = [torch.full((1, 3, 160 // s, 160 // s, 7), -1e4, requires_grad=True) for s in STRIDES]
    t = boxes((0, 0, 40, 50, 20, 30), (0, 1, 100, 80, 60, 50))
    total, parts = DetectionLoss(LossConfig(), ANCHORS / 4, STRIDE_T, 2, 160)(outs, t)
    assert torch.isfinite(parts).all() and parts[0] > 0
    total.backward()
    assert all(torch.isfinite(o.grad).all() for o in outs)
