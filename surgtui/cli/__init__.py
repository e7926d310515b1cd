"""The command line: the Typer app and everything it prints (tables, the follow view, predict/eval and data fronts)."""
