"""The experiment schema: one pydantic model per TOML section.

Field names are a contract: scripts, `--set` overrides and the TUI form use them.
Defaults are the seed's recommended values (docs/experiments.md explains each).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from surgtui.config.device import parse_device

CLASS_NAMES: tuple[str, ...] = ("needle", "needle_driver")
DROP_CLASS = "drop"  # a data.classes_map value: boxes of that class are left out
CLASS_MAP_VALUES: tuple[str, ...] = (*CLASS_NAMES, DROP_CLASS)  # what data.classes_map maps to


def normal_name(name: str) -> str:
    """A class name as compared: 'Needle Driver', 'needle-driver' and 'NEEDLE_DRIVER' all read 'needle_driver'."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


SYNTHETIC_SOURCE = "synthetic"  # data.source for the built-in generated scenes


class Section(BaseModel):
    # strict: `lr = "fast"` is an error, not a silent cast; forbid: typos are errors.
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class ModelConfig(Section):
    backbone: Literal[
        "resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "regnet_x_400mf", "efficientnet_b0"
    ] = "resnet18"
    pretrained: bool | str = True
    img_size: int = Field(640, ge=64, le=2048)
    neck_width: int = Field(128, ge=16, le=1024)
    neck_depth: int = Field(1, ge=1, le=6)
    autoanchor: bool = True
    # BatchNorm of the neck and heads: the seed's settings (torch's defaults are 0.1 and 1e-5)
    bn_momentum: float = Field(0.03, gt=0, le=1)
    bn_eps: float = Field(1e-4, gt=0, le=0.1)
    init_from: str = ""  # a run (id, prefix, latest) or a checkpoint: start from its weights

    @field_validator("img_size")
    @classmethod
    def _multiple_of_32(cls, v: int) -> int:
        if v % 32:
            raise ValueError(f"must be a multiple of 32 (the largest stride), got {v}")
        return v

    @field_validator("pretrained")
    @classmethod
    def _pretrained_path(cls, v: bool | str) -> bool | str:
        if isinstance(v, str) and not v.strip():
            raise ValueError("must be true, false or a path to a weights file")
        return v


class LossConfig(Section):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True, populate_by_name=True)

    coord: float = Field(0.1, ge=0)
    conf: float = Field(1.5, ge=0)
    class_: float = Field(0.8, ge=0, alias="class")
    focal: bool = False
    focal_gamma: float = Field(2.0, ge=0, le=10)
    focal_alpha: float = Field(0.25, ge=0, le=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    assignment: Literal["iou_center", "size"] = "iou_center"
    anchor_iou_threshold: float = Field(0.2, ge=0, le=1)
    center_weight: float = Field(0.5, ge=0, le=10)
    obj_balance: list[float] = Field(default_factory=lambda: [4.0, 1.0, 0.4])
    yolov5_scaling: bool = True
    anchor_t: float = Field(4.0, ge=0, le=100)

    @field_validator("obj_balance")
    @classmethod
    def _three_scales(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or any(x < 0 for x in v):
            raise ValueError("must be three non-negative numbers, one per scale (stride 8, 16, 32)")
        return v


class OptimConfig(Section):
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = Field(0.001, gt=0, le=10)
    backbone_lr_mult: float = Field(0.1, ge=0, le=10)
    weight_decay: float = Field(0.0005, ge=0, le=1)
    momentum: float = Field(0.937, ge=0, lt=1)
    grad_clip: float = Field(10.0, ge=0)
    ema: bool = True
    ema_decay: float = Field(0.9999, gt=0, lt=1)


class ScheduleConfig(Section):
    kind: Literal["cosine", "constant"] = "cosine"
    warmup_frac: float = Field(0.1, ge=0, lt=1)
    min_lr_ratio: float = Field(0.01, ge=0, le=1)


class TrainConfig(Section):
    epochs: int = Field(50, ge=1, le=100_000)
    batch_size: int = Field(4, ge=1, le=4096)
    device: str = "auto"
    devices: int = Field(1, ge=1, le=64)
    workers: int = Field(2, ge=0, le=64)
    seed: int = Field(0, ge=0)
    amp: bool = True
    val_every: int = Field(1, ge=1)
    max_bad_steps: int = Field(5, ge=1)
    patience: int = Field(0, ge=0, le=100_000)  # epochs without a better best metric, then stop; 0: off
    nodes: int = Field(1, ge=1, le=4096)  # machines; each runs `surgtui run` with its own node_rank
    node_rank: int = Field(0, ge=0)  # this machine's; node 0 validates, checkpoints and holds the metrics
    rdzv_endpoint: str = Field("", validate_default=True)  # HOST:PORT of node 0, where the nodes meet

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        parse_device(v)  # ValueError names the allowed values
        return v

    @field_validator("node_rank")
    @classmethod
    def _node_rank_below_nodes(cls, v: int, info: Any) -> int:
        nodes = info.data.get("nodes")  # absent when nodes itself was invalid
        if nodes is not None and v >= nodes:
            raise ValueError(f"must be below train.nodes = {nodes} (0 to {nodes - 1}), got {v}")
        return v

    @field_validator("rdzv_endpoint")
    @classmethod
    def _host_and_port(cls, v: str, info: Any) -> str:
        expected = 'expected HOST:PORT of node 0 with a port 1-65535, e.g. "10.0.0.1:29500"'
        if not v:
            nodes = info.data.get("nodes") or 1
            if nodes > 1:
                raise ValueError(f"required when train.nodes = {nodes}: {expected}")
            return v
        host, _, port = v.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")  # IPv6: [fe80::1]:29500
        if (
            not host
            or any(c.isspace() or c in "/[]" for c in host)
            or not (port.isascii() and port.isdigit())
        ):
            raise ValueError(f"{expected}, got {v!r}")
        if not 1 <= int(port) <= 65535:
            raise ValueError(f"{expected}, got port {port}")
        return v


class SyntheticConfig(Section):
    train: int = Field(64, ge=1, le=100_000)
    val: int = Field(16, ge=1, le=100_000)
    width: int = Field(640, ge=32, le=4096)
    height: int = Field(360, ge=32, le=4096)
    seed: int = Field(0, ge=0)


class AugmentConfig(Section):
    enabled: bool = True
    hflip: float = Field(0.5, ge=0, le=1)
    hsv_h: float = Field(0.015, ge=0, le=0.5)
    hsv_s: float = Field(0.7, ge=0, le=1)
    hsv_v: float = Field(0.4, ge=0, le=1)
    scale: float = Field(0.5, ge=0, lt=1)
    translate: float = Field(0.1, ge=0, le=0.5)
    mosaic: float = Field(1.0, ge=0, le=1)
    close_mosaic: int = Field(10, ge=0, le=100_000)


class SplitPaths(Section):
    """One split given by path, relative to data.source: COCO `annotations` + `images`, or YOLO `images`
    (folders or .txt lists, as a data.yaml split) with `labels` found by Ultralytics' rule unless given."""

    annotations: str = ""
    images: list[str] = Field(default_factory=list)
    labels: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_yaml_style(cls, v: Any) -> Any:
        # `train = "images/train"` or a list of them: a data.yaml split key.
        if isinstance(v, str | list):
            v = {"images": v}
        elif not isinstance(v, dict | SplitPaths):
            raise ValueError(
                'expected a folder, a list of folders, or a table { annotations = "...", images = "..." }'
            )
        if isinstance(v, dict) and isinstance(v.get("images"), str):
            v = {**v, "images": [v["images"]]}
        return v

    @model_validator(mode="after")
    def _complete(self) -> SplitPaths:
        if not self.images or not all(p.strip() for p in self.images):
            raise ValueError("images: expected a folder, a .txt list of images, or a list of them")
        if self.annotations and self.labels:
            raise ValueError("give annotations (a COCO file) or labels (a YOLO folder), not both")
        if self.annotations and len(self.images) != 1:
            raise ValueError(
                "with annotations (COCO), images must be the one folder file_name is relative to"
            )
        return self


class DataConfig(Section):
    source: str = SYNTHETIC_SOURCE
    format: Literal["auto", "coco", "yolo", "simsurgskill"] = "auto"
    train_split: str = "train"
    val_split: str = "val"
    train: SplitPaths | None = None
    val: SplitPaths | None = None
    classes_map: dict[str, str] = Field(default_factory=dict)
    cache_dir: str = ""
    rect: bool = True
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("classes_map")
    @classmethod
    def _maps_to_our_classes(cls, v: dict[str, str]) -> dict[str, str]:
        for theirs, ours in v.items():
            if normal_name(ours) not in CLASS_MAP_VALUES:
                raise ValueError(f"{theirs!r} = {ours!r}: allowed values: {', '.join(CLASS_MAP_VALUES)}")
        return v

    @model_validator(mode="after")
    def _both_splits(self) -> DataConfig:
        if (self.train is None) != (self.val is None):
            given, missing = ("train", "val") if self.train is not None else ("val", "train")
            raise ValueError(f"data.{given} is given but data.{missing} is not; give both or neither")
        return self


class ValConfig(Section):
    conf_thres: float = Field(0.001, ge=0, le=1)
    iou_thres: float = Field(0.6, gt=0, le=1)
    max_det: int = Field(300, ge=1, le=10_000)
    working_conf: float = Field(0.25, ge=0, le=1)


class LoggingConfig(Section):
    wandb: bool = False
    wandb_project: str = "surgtui"
    wandb_entity: str = ""
    wandb_group: str = ""
    wandb_tags: list[str] = Field(default_factory=list)
    tensorboard: bool = False  # event files in RUN_DIR/tensorboard/ (needs the tensorboard package)
    log_every: int = Field(10, ge=1)


class Experiment(Section):
    name: str = ""
    description: str = ""
    variant: str = "YOLOv5-Small"
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    val: ValConfig = Field(default_factory=ValConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, v: str) -> str:
        from surgtui.config.variants import VARIANTS

        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; allowed: {', '.join(VARIANTS)}")
        return v

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, v: str) -> str:
        # The name becomes part of a run directory's name.
        if not re.fullmatch(r"[A-Za-z0-9_.-]*", v):
            raise ValueError(f"may hold only letters, digits, '-', '_' and '.'; got {v!r}")
        return v

    def to_dict(self) -> dict:
        """Plain nested dict with TOML key names (`class`, not `class_`)."""
        return self.model_dump(
            by_alias=True, exclude_none=True
        )  # TOML has no null: unset splits are left out
