"""Experiment files: schema (schema.py), variant presets (variants.py), loading with overrides (load.py),
comment-keeping edits (edit.py), the device spelling (device.py) and TOML reading (toml.py).

Import from the submodules: this package imports nothing, so `surgtui.config.toml` stays light.
"""
