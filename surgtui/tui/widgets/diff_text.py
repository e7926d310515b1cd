"""A unified diff as Rich text, coloured with the 16 standard colours."""

from __future__ import annotations

import difflib

from rich.text import Text


def diff_text(old: str, new: str, name: str) -> Text:
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"{name} (saved)", f"{name} (edited)", lineterm=""
    )
    text = Text()
    for line in lines:
        style = (
            "bold"
            if line.startswith(("---", "+++"))
            else "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else "cyan"
            if line.startswith("@@")
            else ""
        )
        text.append(line + "\n", style=style)
    return text or Text("no changes", style="dim")
