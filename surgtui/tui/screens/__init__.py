"""Screens: each composes widgets, pushes data down to them, and posts requests up to the app."""
