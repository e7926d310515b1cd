"""surgtui: a terminal experiment manager for surgical-instrument detectors."""

__version__ = "0.1.0"
