"""A run on disk: its directory layout, events, summary, live state, status and engine process. Renders nothing."""
