"""Widgets: each takes its data as attributes from its screen and posts messages up."""
