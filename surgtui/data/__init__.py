"""Data sets: synthetic generator, SimSurgSkill preparation, format detection and checks.

Nothing under this package imports torch: the CLI uses it and must start fast.
"""
