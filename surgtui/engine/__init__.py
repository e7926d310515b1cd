"""The training engine: the only package that imports torch. Run as `python -m surgtui.engine RUN_DIR`."""
