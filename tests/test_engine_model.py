"""The detector: shapes, head conv/BN settings, YOLOv5 bias priors, decode, pretrained weights."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from surgtui.config.schema import ModelConfig  # noqa: E402
from surgtui.engine.model import ANCHORS_640, STRIDES, build_model  # noqa: E402
from surgtui.errors import UserError  # noqa: E402

torch.set_num_threads(2)


def small(**kw) -> ModelConfig:
    return ModelConfig(**{"pretrained": False, "img_size": 128, "neck_width": 32, **kw})


def test_outputs_have_one_tensor_per_stride_in_yolov5_layout():
    model = build_model(small())
    outs = model(torch.rand(2, 3, 128, 128))
    assert [tuple(o.shape) for o in outs] == [(2, 3, 128 // s, 128 // s, 7) for s in STRIDES]


@pytest.mark.parametrize("backbone", ["regnet_x_400mf", "mobilenet_v3_large", "efficientnet_b0"])
def test_light_backbones_give_strides_8_16_32_on_rectangular_frames(backbone):
    model = build_model(small(backbone=backbone))
    outs = model(torch.rand(1, 3, 96, 160))  # a 16:9 frame letterboxed to 160x96
    assert [tuple(o.shape) for o in outs] == [(1, 3, 96 // s, 160 // s, 7) for s in STRIDES]


def test_nano_is_lighter_than_small():
    from surgtui.config.load import resolve_data

    nano, _ = resolve_data({"variant": "YOLOv5-Nano", "model": {"pretrained": False}}, "nano", env={})
    small_exp, _ = resolve_data({"variant": "YOLOv5-Small", "model": {"pretrained": False}}, "small", env={})
    n, s = build_model(nano.model).param_counts(), build_model(small_exp.model).param_counts()
    assert nano.model.backbone == "regnet_x_400mf" and small_exp.model.backbone == "resnet18"
    assert n["total"] < s["total"] / 2


def test_neck_convs_have_no_bias_and_the_seed_bn_settings():
    model = build_model(small(neck_depth=2))
    convs = [m for m in model.neck.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.neck.modules() if isinstance(m, nn.BatchNorm2d)]
    assert convs and len(convs) == len(bns)
    assert all(c.bias is None for c in convs)
    assert all(b.momentum == 0.03 and b.eps == 1e-4 for b in bns)


def test_prediction_convs_keep_their_bias_with_yolov5_priors():
    cfg = small(img_size=640)
    model = build_model(cfg)
    for head, s in zip(model.heads, STRIDES):
        assert head.kernel_size == (1, 1) and head.bias is not None
        b = head.bias.detach().view(3, 7)
        bound = 1 / math.sqrt(cfg.neck_width)  # PyTorch's default bias init range
        obj = math.log(8 / (640 / s) ** 2)
        cls = math.log(0.6 / (2 - 0.99))
        assert ((b[:, 4] - obj).abs() <= bound + 1e-6).all()
        assert ((b[:, 5:] - cls).abs() <= bound + 1e-6).all()


def test_anchors_scale_with_image_size():
    model = build_model(small(img_size=320))
    assert torch.allclose(model.anchors, torch.tensor(ANCHORS_640, dtype=torch.float32) / 2)


def test_decode_gives_xyxy_pixels_and_probabilities():
    model = build_model(small()).eval()
    with torch.no_grad():
        dec = model.decode(model(torch.rand(1, 3, 128, 128)))
    n = sum(3 * (128 // s) ** 2 for s in STRIDES)
    assert dec.shape == (1, n, 7)
    assert (dec[..., 2] > dec[..., 0]).all() and (dec[..., 3] > dec[..., 1]).all()
    assert ((dec[..., 4:] >= 0) & (dec[..., 4:] <= 1)).all()
    # Zero logits: a box centred in its cell with exactly the anchor's size.
    zeros = [torch.zeros(1, 3, 128 // s, 128 // s, 7) for s in STRIDES]
    dec = model.decode(zeros)
    first = dec[0, 0]
    aw, ah = model.anchors[0, 0].tolist()
    assert torch.allclose(first[:4], torch.tensor([4 - aw / 2, 4 - ah / 2, 4 + aw / 2, 4 + ah / 2]))


def test_param_counts_split_backbone_and_head():
    counts = build_model(small()).param_counts()
    assert counts["backbone"] > 0 and counts["head"] > 0
    assert counts["total"] == counts["backbone"] + counts["head"]


def test_missing_imagenet_weights_give_one_line_naming_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # fail fast even where a network exists
    with pytest.raises(UserError) as err:
        build_model(small(pretrained=True))
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert "pretrained = false" in msg


def test_missing_local_weights_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such weights file"):
        build_model(small(pretrained=str(tmp_path / "nope.pth")))


def test_local_state_dict_is_loaded(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    model = build_model(small(pretrained=str(path)))
    assert torch.equal(model.backbone.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    torch.save({"not": torch.zeros(1)}, path)
    with pytest.raises(UserError, match="not a torchvision resnet18 state dict"):
        build_model(small(pretrained=str(path)))
