"""YOLOv5-style detector: torchvision trunk (ResNet, or RegNet/MobileNet/EfficientNet), PAN neck, three anchor heads.

Raw outputs are YOLOv5's training layout, one tensor per scale
`[B, anchors, H, W, 5 + nc]` (x, y, w, h, obj, classes; logits). `decode`
turns them into boxes in input pixels for inference and validation.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torchvision
from torch import nn

from surgtui.config.schema import CLASS_NAMES, ModelConfig
from surgtui.errors import UserError

STRIDES: tuple[int, int, int] = (8, 16, 32)
# YOLOv5's anchor priors (w, h) in pixels for 640 px inputs, per scale P3/P4/P5.
ANCHORS_640: tuple[tuple[tuple[float, float], ...], ...] = (
    ((10, 13), (16, 30), (33, 23)),
    ((30, 61), (62, 45), (59, 119)),
    ((116, 90), (156, 198), (373, 326)),
)
# Channels of the stride 8/16/32 outputs per torchvision backbone.
BACKBONE_CHANNELS: dict[str, tuple[int, int, int]] = {
    "resnet18": (128, 256, 512),
    "resnet34": (128, 256, 512),
    "resnet50": (512, 1024, 2048),
    "regnet_x_400mf": (64, 160, 400),
    "mobilenet_v3_large": (40, 112, 960),
    "efficientnet_b0": (40, 112, 1280),
}
# Classifier weights in torchvision state dicts: not part of the detector.
_CLASSIFIER_PREFIXES = ("fc.", "classifier.")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvBNAct(nn.Sequential):
    """Conv (no bias: BN's shift replaces it) + BN + SiLU; BN's momentum and eps are set by `Detector`."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.SiLU(inplace=True),
        )


class Bottleneck(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.cv1 = ConvBNAct(c, c, 1)
        self.cv2 = ConvBNAct(c, c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv2(self.cv1(x))  # no shortcut in the neck, as YOLOv5's head C3 blocks


class C3(nn.Module):
    """YOLOv5's CSP block: half the channels through `depth` bottlenecks, half around them."""

    def __init__(self, c_in: int, c_out: int, depth: int) -> None:
        super().__init__()
        hidden = c_out // 2
        self.cv1 = ConvBNAct(c_in, hidden, 1)
        self.cv2 = ConvBNAct(c_in, hidden, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden) for _ in range(depth)))
        self.cv3 = ConvBNAct(2 * hidden, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class PANNeck(nn.Module):
    """Top-down then bottom-up fusion of strides 8/16/32, every output `width` channels."""

    def __init__(self, channels: tuple[int, int, int], width: int, depth: int) -> None:
        super().__init__()
        self.reduce = nn.ModuleList(ConvBNAct(c, width, 1) for c in channels)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = C3(2 * width, width, depth)
        self.td3 = C3(2 * width, width, depth)
        self.down3 = ConvBNAct(width, width, 3, 2)
        self.bu4 = C3(2 * width, width, depth)
        self.down4 = ConvBNAct(width, width, 3, 2)
        self.bu5 = C3(2 * width, width, depth)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        r3, r4, r5 = (m(f) for m, f in zip(self.reduce, feats))
        t4 = self.td4(torch.cat((self.up(r5), r4), 1))
        p3 = self.td3(torch.cat((self.up(t4), r3), 1))
        p4 = self.bu4(torch.cat((self.down3(p3), t4), 1))
        p5 = self.bu5(torch.cat((self.down4(p4), r5), 1))
        return [p3, p4, p5]


class ResNetTrunk(nn.Module):
    """A torchvision ResNet cut after layer4, returning layer2/3/4 (strides 8/16/32)."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1)
        self.layer2, self.layer3, self.layer4 = resnet.layer2, resnet.layer3, resnet.layer4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.layer2(self.stem(x))
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]


class StagedTrunk(nn.Module):
    """A non-ResNet torchvision backbone cut into the three stages that end at strides 8, 16 and 32."""

    def __init__(self, name: str, net: nn.Module) -> None:
        super().__init__()
        if name.startswith("regnet"):
            t = net.trunk_output
            stages = [nn.Sequential(net.stem, t.block1, t.block2), t.block3, t.block4]
        elif name.startswith("mobilenet_v3_large"):
            f = net.features
            stages = [f[:7], f[7:13], f[13:]]
        elif name.startswith("efficientnet"):
            f = net.features
            stages = [f[:4], f[4:6], f[6:]]
        else:
            raise ValueError(f"no stage split for backbone {name!r}")
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def build_trunk(name: str, pretrained: bool | str) -> nn.Module:
    """The backbone cut into stride 8/16/32 outputs: ResNets keep their layer names, others are staged."""
    net = build_backbone(name, pretrained)
    return ResNetTrunk(net) if name.startswith("resnet") else StagedTrunk(name, net)


class Detector(nn.Module):
    """Trunk + PAN + three YOLOv5 heads. `backbone` and `neck`+`heads` are the two lr groups."""

    def __init__(self, cfg: ModelConfig, num_classes: int = len(CLASS_NAMES)) -> None:
        super().__init__()
        self.nc = num_classes
        self.no = 5 + num_classes
        self.na = 3
        self.img_size = cfg.img_size
        self.register_buffer("strides", torch.tensor(STRIDES, dtype=torch.float32), persistent=False)
        # Priors scale with the input: a needle fills the same share of a 320 px frame as of 640.
        anchors = torch.tensor(ANCHORS_640, dtype=torch.float32) * (cfg.img_size / 640)
        self.register_buffer("anchors", anchors)  # [3 scales, 3 anchors, 2] pixels
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.backbone = build_trunk(cfg.backbone, cfg.pretrained)
        self.neck = PANNeck(BACKBONE_CHANNELS[cfg.backbone], cfg.neck_width, cfg.neck_depth)
        self.heads = nn.ModuleList(nn.Conv2d(cfg.neck_width, self.na * self.no, 1) for _ in STRIDES)
        for m in self.neck.modules():  # the seed's head BN settings (model.bn_momentum, model.bn_eps)
            if isinstance(m, nn.BatchNorm2d):
                m.momentum, m.eps = cfg.bn_momentum, cfg.bn_eps
        self._init_head_biases()
        self._grids: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def _init_head_biases(self) -> None:
        # YOLOv5's priors: ~8 objects per image and a 0.6-ish class prior, so early
        # objectness loss is not swamped by confident false positives on every cell.
        for head, s in zip(self.heads, STRIDES):
            b = head.bias.detach().view(self.na, self.no)
            b[:, 4] += math.log(8 / (self.img_size / s) ** 2)
            b[:, 5:] += math.log(0.6 / (self.nc - 0.99))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.neck(self.backbone((x - self.mean) / self.std))
        outs = []
        for head, f in zip(self.heads, feats):
            p = head(f)
            b, _, h, w = p.shape
            outs.append(p.view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).contiguous())
        return outs

    def _grid(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        key = (h, w, device)
        if key not in self._grids:
            ys, xs = torch.meshgrid(
                torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
            )
            self._grids[key] = torch.stack((xs, ys), -1).view(1, 1, h, w, 2).float()
        return self._grids[key]

    @torch.no_grad()
    def decode(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Raw outputs -> `[B, N, 4 + 1 + nc]`: xyxy in input pixels, objectness, class probabilities."""
        decoded = []
        for i, p in enumerate(outputs):
            b, na, h, w, no = p.shape
            p = p.float().sigmoid()
            xy = (p[..., :2] * 2 - 0.5 + self._grid(h, w, p.device)) * self.strides[i]
            wh = (p[..., 2:4] * 2) ** 2 * self.anchors[i].view(1, na, 1, 1, 2)
            boxes = torch.cat((xy - wh / 2, xy + wh / 2, p[..., 4:]), -1)
            decoded.append(boxes.view(b, -1, no))
        return torch.cat(decoded, 1)

    def param_counts(self) -> dict[str, int]:
        backbone = sum(p.numel() for p in self.backbone.parameters())
        total = sum(p.numel() for p in self.parameters())
        return {"backbone": backbone, "head": total - backbone, "total": total}


def build_backbone(name: str, pretrained: bool | str) -> nn.Module:
    """A torchvision classification network, random, ImageNet (torch hub cache) or from a local state-dict file."""
    if pretrained is True:
        weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
        model = torchvision.models.get_model(name, weights=None)
        model.load_state_dict(_hub_state_dict(weights))
        return model
    model = torchvision.models.get_model(name, weights=None)
    if pretrained:
        _load_local(model, Path(str(pretrained)).expanduser(), name)
    return model


def _hub_state_dict(weights: torchvision.models.WeightsEnum) -> dict[str, torch.Tensor]:
    file = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # no network (URLError), a truncated file, ...
        raise UserError(
            f"model.pretrained = true: ImageNet weights not found or unloadable at {file} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); copy {file.name} "
            f"there (from {weights.url}), or set model.pretrained = false or a path to a weights file"
        ) from None


def _load_local(model: nn.Module, path: Path, name: str) -> None:
    where = f"model.pretrained = {str(path)!r}"
    if not path.is_file():
        raise UserError(
            f"{where}: no such weights file {path.resolve()}; set model.pretrained = false, true or a path"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{where}: cannot load {path.resolve()}: {type(exc).__name__}: {exc}") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    # The classifier is not part of the detector; a checkpoint without it is fine.
    state = {k: v for k, v in state.items() if not k.startswith(_CLASSIFIER_PREFIXES)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(_CLASSIFIER_PREFIXES)]
    if missing or unexpected:
        bad = (missing or unexpected)[:3]
        raise UserError(
            f"{where}: not a torchvision {name} state dict ({len(missing)} missing, "
            f"{len(unexpected)} unexpected keys, e.g. {', '.join(bad)})"
        )


def build_model(cfg: ModelConfig, num_classes: int = len(CLASS_NAMES)) -> Detector:
    return Detector(cfg, num_classes)
