"""Parameter groups, weight decay placement, the lr schedule and the EMA ramp."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from surgtui.config.schema import Experiment, ModelConfig, OptimConfig, ScheduleConfig  # noqa: E402
from surgtui.engine.model import build_model  # noqa: E402
from surgtui.engine.optim import ModelEMA, backbone_lr_mult, build_optimizer, group_lrs  # noqa: E402
from surgtui.engine.schedule import apply_lr, lr_factor  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def model():
    return build_model(ModelConfig(pretrained=False, img_size=64, neck_width=16))


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
def test_groups_backbone_at_a_tenth_and_decay_only_on_conv_weights(model, kind):
    opt = build_optimizer(model, OptimConfig(optimizer=kind, lr=0.01))
    assert [(g["name"], g["weight_decay"] > 0) for g in opt.param_groups] == [
        ("backbone", True),
        ("backbone", False),
        ("head", True),
        ("head", False),
    ]
    lrs = group_lrs(opt)
    assert lrs["head"] == 0.01 and lrs["backbone"] == pytest.approx(0.1 * lrs["head"])
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    conv_w = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert decayed == conv_w
    every = [p for g in opt.param_groups for p in g["params"]]
    assert len(every) == len({id(p) for p in every}) == len(list(model.parameters()))
    backbone = {id(p) for p in model.backbone.parameters()}
    assert all(id(p) in backbone for g in opt.param_groups[:2] for p in g["params"])


def test_backbone_learns_slower_only_when_pretrained(model):
    for pretrained, expected in ((True, 0.1), ("weights/resnet18.pth", 0.1), (False, 1.0)):
        exp = Experiment(
            model=ModelConfig(pretrained=pretrained), optim=OptimConfig(lr=0.01, backbone_lr_mult=0.1)
        )
        lrs = group_lrs(build_optimizer(model, exp.optim, backbone_lr_mult(exp)))
        assert lrs["backbone"] == pytest.approx(expected * lrs["head"])


def test_sgd_uses_nesterov_momentum(model):
    opt = build_optimizer(model, OptimConfig(optimizer="sgd", momentum=0.9))
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    assert type(build_optimizer(model, OptimConfig())) is torch.optim.AdamW  # the default: decoupled decay


def cosine(step: int, total: int, warm: int, floor: float) -> float:
    if step <= warm:
        return step / warm
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))


@pytest.mark.parametrize("step", [1, 5, 10, 11, 37, 55, 99, 100])
def test_lr_follows_warmup_then_cosine(model, step):
    cfg = ScheduleConfig(warmup_frac=0.1, min_lr_ratio=0.01)
    opt = build_optimizer(model, OptimConfig(lr=0.001, backbone_lr_mult=0.1))
    apply_lr(opt, step, 100, cfg)
    lrs = group_lrs(opt)
    assert lrs["head"] == pytest.approx(0.001 * cosine(step, 100, 10, 0.01))
    assert lrs["backbone"] == pytest.approx(0.1 * lrs["head"])
    assert all(g["lr"] == lrs[g["name"]] for g in opt.param_groups)


def test_schedule_endpoints_and_constant():
    cfg = ScheduleConfig(warmup_frac=0.1, min_lr_ratio=0.05)
    assert lr_factor(10, 100, cfg) == 1.0
    assert lr_factor(100, 100, cfg) == pytest.approx(0.05)
    const = ScheduleConfig(kind="constant", warmup_frac=0.2)
    assert [lr_factor(s, 10, const) for s in (1, 2, 3, 10)] == [0.5, 1.0, 1.0, 1.0]
    assert lr_factor(1, 10, ScheduleConfig(warmup_frac=0.0)) == pytest.approx(cosine(1, 10, 0, 0.01))


def test_ema_follows_yolov5_ramp():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(net, decay=0.9999)
    before = ema.module[0].weight.clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    ema.update(net)
    d = 0.9999 * (1 - math.exp(-1 / 2000))
    assert torch.allclose(ema.module[0].weight, d * before + (1 - d) * net[0].weight)
    assert not any(p.requires_grad for p in ema.module.parameters())
