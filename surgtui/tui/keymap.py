"""Every key binding, as data. Screens take their BINDINGS from here; the help screen lists them all.

Keys that must work while a text field has focus are control or function keys;
plain letters are only bound where no text field can have focus.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.binding import Binding

# A command palette entry a screen offers: title, help line, what it runs.
PaletteCommand = tuple[str, str, Callable[[], object]]

APP = [
    Binding("f1,question_mark", "app.help", "Help", key_display="?"),
    Binding("f2", "app.show_experiments", "Experiments"),
    Binding("f3", "app.show_runs", "Runs"),
    Binding(
        "f4", "app.follow_latest", "Monitor", tooltip="Follow the newest running run (or the newest run)"
    ),
    Binding(
        "ctrl+q",
        "app.quit",
        "Quit",
        priority=True,
        show=False,
        tooltip="Runs keep running; with unsaved edits: save, discard or cancel",
    ),
]

EXPERIMENTS = [
    Binding("ctrl+s", "save", "Save", tooltip="Show the diff, then write the edited keys"),
    Binding("ctrl+n", "save_as", "Save as", tooltip="Write the edited experiment to a new file"),
    Binding(
        "ctrl+l",
        "launch",
        "Launch",
        tooltip="Start a run of the file and follow it (with unsaved edits: save and launch, or launch as saved)",
    ),
    Binding("ctrl+r", "revert", "Revert", tooltip="Drop the unsaved edits", show=False),
    Binding("escape", "focus_list", "Back to list", show=False),
]

MONITOR = [
    Binding("s", "stop", "Stop run", tooltip="SIGINT: finish the step, save last.pt, end 'stopped'"),
    Binding("escape", "app.pop_screen", "Back"),
]

RUNS = [
    # enter on a row opens it too (the table's own key); the footer shows this one.
    Binding("o", "open", "Open", key_display="⏎/o", tooltip="Follow the run under the cursor (or enter)"),
    Binding("space", "mark", "Mark"),
    Binding("c", "compare", "Compare", tooltip="Compare the marked runs"),
    Binding("s", "sort", "Sort", tooltip="Sort by the column under the cursor; again to reverse"),
    Binding("slash", "filter", "Filter", key_display="/"),
    Binding("x", "stop", "Stop run", show=False),
    Binding("escape", "leave_filter", "Back to table / clear filter", show=False),
    # F4 still works here, unadvertised: the footer is full at 80 columns and enter opens a run.
    Binding("f4", "follow_latest", "Monitor the newest running run", show=False),
]

COMPARE = [
    Binding("escape", "app.pop_screen", "Back"),
]

CONFIRM = [
    Binding("y,enter", "answer(True)", "Yes"),
    Binding("n,escape", "answer(False)", "No"),
]

# Quit while experiment files have unsaved edits.
QUIT = [
    Binding("s", "choose('save')", "Save and quit"),
    Binding("d", "choose('discard')", "Discard and quit"),
    Binding("c,escape", "choose('cancel')", "Cancel"),
]

# Launch an experiment whose file has unsaved edits.
LAUNCH_EDITED = [
    Binding("s", "choose('save')", "Save and launch"),
    Binding("l", "choose('saved')", "Launch as saved"),
    Binding("c,escape", "choose('cancel')", "Cancel"),
]

SAVE_AS = [
    Binding("escape", "cancel", "Cancel"),
]

HELP = [
    Binding("escape,q,f1,question_mark", "app.pop_screen", "Close"),
]

# What the help screen lists, in order.
SCOPES: tuple[tuple[str, list[Binding]], ...] = (
    (
        "Everywhere",
        APP
        + [
            Binding("ctrl+p", "command_palette", "Command palette"),
            Binding("tab,shift+tab", "focus", "Next / previous field"),
        ],
    ),
    ("Experiments", EXPERIMENTS),
    ("Monitor", MONITOR),
    ("Runs", RUNS),
    ("Compare", COMPARE),
    ("Dialogs", CONFIRM),
    ("Quit with unsaved edits", QUIT),
    ("Launch with unsaved edits", LAUNCH_EDITED),
)
