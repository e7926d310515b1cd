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
    Binding("f1,question_mark", "app.help", "Help", key_display="?", id="app.help"),
    Binding("f2", "app.show_experiments", "Experiments", id="app.experiments"),
    Binding("f3", "app.show_runs", "Runs", id="app.runs"),
    Binding(
        "f4",
        "app.follow_latest",
        "Monitor",
        tooltip="Follow the newest running run (or the newest run)",
        id="app.monitor",
    ),
    Binding("f5", "app.show_sweeps", "Sweeps", id="app.sweeps"),
    Binding(
        "ctrl+q",
        "app.quit",
        "Quit",
        priority=True,
        show=False,
        tooltip="Runs keep running; with unsaved edits: save, discard or cancel",
        id="app.quit",
    ),
]

EXPERIMENTS = [
    Binding(
        "ctrl+s", "save", "Save", tooltip="Show the diff, then write the edited keys", id="experiments.save"
    ),
    Binding(
        "ctrl+n",
        "save_as",
        "Save as",
        tooltip="Write the edited experiment to a new file",
        id="experiments.save_as",
    ),
    Binding(
        "ctrl+l",
        "launch",
        "Launch",
        tooltip="Start a run of the file and follow it (with unsaved edits: save and launch, or launch as saved)",
        id="experiments.launch",
    ),
    Binding(
        "ctrl+r", "revert", "Revert", tooltip="Drop the unsaved edits", show=False, id="experiments.revert"
    ),
    Binding("escape", "focus_list", "Back to list", show=False, id="experiments.focus_list"),
]

MONITOR = [
    Binding(
        "s",
        "stop",
        "Stop run",
        tooltip="SIGINT: finish the step, save last.pt, end 'stopped'",
        id="monitor.stop",
    ),
    Binding("escape", "app.pop_screen", "Back", id="monitor.back"),
]

RUNS = [
    # enter on a row opens it too (the table's own key); the footer shows this one.
    Binding(
        "o",
        "open",
        "Open",
        key_display="⏎/o",
        tooltip="Follow the run under the cursor (or enter)",
        id="runs.open",
    ),
    Binding("space", "mark", "Mark", id="runs.mark"),
    Binding("c", "compare", "Compare", tooltip="Compare the marked runs", id="runs.compare"),
    Binding(
        "s", "sort", "Sort", tooltip="Sort by the column under the cursor; again to reverse", id="runs.sort"
    ),
    Binding("slash", "filter", "Filter", key_display="/", id="runs.filter"),
    Binding("x", "stop", "Stop run", show=False, id="runs.stop"),
    Binding(
        "delete",
        "trash",
        "Move to trash",
        key_display="del",
        show=False,
        tooltip="Confirm, then move the marked runs (or the one under the cursor) to runs/.trash",
        id="runs.trash",
    ),
    Binding(
        "n", "note", "Note", show=False, tooltip="Write the note of the run under the cursor", id="runs.note"
    ),
    Binding(
        "t", "tag", "Tag", show=False, tooltip="Add key=value tags to the run under the cursor", id="runs.tag"
    ),
    Binding("escape", "leave_filter", "Back to table / clear filter", show=False, id="runs.leave_filter"),
    # F4 still works here, unadvertised: the footer is full at 80 columns and enter opens a run.
    Binding("f4", "follow_latest", "Monitor the newest running run", show=False, id="runs.follow_latest"),
]

SWEEPS = [
    # enter on a configuration opens a member too (the table's own key); the footer shows this one.
    Binding(
        "o",
        "open",
        "Open",
        key_display="⏎/o",
        tooltip="Follow the member under the cursor: on a seed's column that seed, else the configuration's first",
        id="sweeps.open",
    ),
    Binding(
        "x",
        "stop",
        "Stop sweep",
        tooltip="Confirm, then SIGINT to the scheduler: running members stop (resumable), then the sweep",
        id="sweeps.stop",
    ),
    Binding("escape", "focus_list", "Back to the sweep list", show=False, id="sweeps.focus_list"),
]

COMPARE = [
    Binding("escape", "app.pop_screen", "Back", id="compare.back"),
]

CONFIRM = [
    Binding("y,enter", "answer(True)", "Yes", id="confirm.yes"),
    Binding("n,escape", "answer(False)", "No", id="confirm.no"),
]

# Quit while experiment files have unsaved edits.
QUIT = [
    Binding("s", "choose('save')", "Save and quit", id="quit.save"),
    Binding("d", "choose('discard')", "Discard and quit", id="quit.discard"),
    Binding("c,escape", "choose('cancel')", "Cancel", id="quit.cancel"),
]

# Launch an experiment whose file has unsaved edits.
LAUNCH_EDITED = [
    Binding("s", "choose('save')", "Save and launch", id="launch_edited.save"),
    Binding("l", "choose('saved')", "Launch as saved", id="launch_edited.saved"),
    Binding("c,escape", "choose('cancel')", "Cancel", id="launch_edited.cancel"),
]

SAVE_AS = [
    Binding("escape", "cancel", "Cancel", id="save_as.cancel"),
]

PROMPT = [
    Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
]

HELP = [
    Binding("escape,q,f1,question_mark", "app.pop_screen", "Close", id="help.close"),
]

# What the help screen lists, in order.
SCOPES: tuple[tuple[str, list[Binding]], ...] = (
    (
        "Everywhere",
        APP
        + [
            Binding("ctrl+p", "command_palette", "Command palette", id="app.palette"),
            Binding("tab,shift+tab", "focus", "Next / previous field", id="app.focus_next"),
        ],
    ),
    ("Experiments", EXPERIMENTS),
    ("Monitor", MONITOR),
    ("Runs", RUNS),
    ("Sweeps", SWEEPS),
    ("Compare", COMPARE),
    ("Dialogs", CONFIRM),
    ("Quit with unsaved edits", QUIT),
    ("Launch with unsaved edits", LAUNCH_EDITED),
)
