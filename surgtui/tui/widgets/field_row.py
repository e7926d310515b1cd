"""One labelled field of the experiment form, with its error line under it."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from surgtui.tui.form_model import FieldSpec


class FieldRow(Widget):
    """Shows one field's value and error (set by the form); posts `Edited` when the user changes it."""

    @dataclass
    class Edited(Message):
        """The user changed the field to `raw` (text as typed, or a switch's bool)."""

        key: str
        raw: str | bool

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__(id="field-" + spec.key.replace(".", "-"))
        self.spec = spec

    def compose(self) -> ComposeResult:
        spec = self.spec
        with Horizontal(classes="field-line"):
            yield Label(spec.label, classes="field-label")
            if spec.kind == "select":
                yield Select([(c, c) for c in spec.choices], allow_blank=False, compact=True)
            elif spec.kind == "switch":
                yield Switch()
                yield Label("off", classes="switch-state")  # the word, not only a colour, says on/off
            else:
                yield Input(placeholder=spec.hint, compact=True, select_on_focus=False)
        yield Static("", classes="field-error", markup=False)

    @property
    def control(self) -> Input | Select | Switch:
        return self.query_one("Input, Select, Switch")  # type: ignore[return-value]

    @dataclass
    class Left(Message):
        """The user moved out of this field."""

        key: str

    def show(self, value: str | bool, error: str, edited: bool, typed: bool = False) -> None:
        """Attributes down: the form sets what to show; no Changed message echoes back.

        `typed`: the value is the user's own text. While they are in the field it is never written
        back: an older echo (queued behind a paste or fast typing) would move the cursor or undo keys.
        """
        control = self.control
        if isinstance(control, Select) and value not in self.spec.choices:
            error = error or f"{value!r} is not one of the choices"  # a Select cannot show it: say so
        elif not (typed and isinstance(control, Input) and control.has_focus):
            with self.prevent(Input.Changed, Select.Changed, Switch.Changed):
                if control.value != value:
                    control.value = value
        if isinstance(control, Switch):
            self.query_one(".switch-state", Label).update("on" if value else "off")
        self.query_one(".field-error", Static).update(f"✗ {error}" if error else "")
        self.set_class(bool(error), "-invalid")
        self.set_class(edited, "-edited")
        self.query_one(".field-label", Label).update(self.spec.label + (" *" if edited else ""))

    def on_descendant_focus(self, _: events.DescendantFocus) -> None:
        # A class, not :focus-within: that pseudo-class left the old label marked after fast tabs.
        self.add_class("-focused")

    def on_descendant_blur(self, _: events.DescendantBlur) -> None:
        self.remove_class("-focused")

    def on_input_blurred(self, event: Input.Blurred) -> None:
        event.stop()
        self.post_message(self.Left(self.spec.key))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Edited(self.spec.key, event.value))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.post_message(self.Edited(self.spec.key, str(event.value)))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self.post_message(self.Edited(self.spec.key, event.value))
