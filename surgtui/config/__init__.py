"""Experiment files: schema, variant presets, loading with overrides, comment-keeping edits."""

from surgtui.config.load import (
    ENV_OVERRIDES,
    Resolved,
    experiment_to_toml,
    load_experiment,
    load_frozen,
    parse_value,
)
from surgtui.config.schema import CLASS_NAMES, Experiment
from surgtui.config.variants import DEFAULT_VARIANT, VARIANTS

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_VARIANT",
    "ENV_OVERRIDES",
    "VARIANTS",
    "Experiment",
    "Resolved",
    "experiment_to_toml",
    "load_experiment",
    "load_frozen",
    "parse_value",
]
