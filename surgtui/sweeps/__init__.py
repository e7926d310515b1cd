"""Hyper-parameter sweeps: the sweep file (spec.py) and the members it launches."""
