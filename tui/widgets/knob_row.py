"""One strategy knob of one player: its value and range, changed by steps or typed in.

Keys while focused: up / right / + raise by the knob's step, down / left / - lower it,
Enter or a digit starts typing a value (Enter applies it, Escape cancels). The row never
changes the knob itself: it posts `KnobRow.Changed`, and the app asks the engine, which
refuses an invalid value with the reason (shown on screen) and keeps the old one.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

from engine.policy.knobs import KnobSpec

LABELS = {  # short names for narrow terminals
    "alpha_action_smoothing": "smoothing",
    "lookahead_horizon": "lookahead",
    "risk_aversion": "risk aversion",
    "emergency_brake_threshold": "e-brake at",
    "gating_bias.rain": "bias rain",
    "gating_bias.drift": "bias drift",
    "gating_bias.straight": "bias straight",
}
TYPING = set("0123456789.-eE")


class KnobRow(Widget, can_focus=True):
    """A focusable line: label, value, a bar over [min, max]."""

    DEFAULT_CSS = "KnobRow { height: 1; }"

    class Changed(Message):
        """The person asks for knob `name` of `player` to become `value` (not yet validated)."""

        def __init__(self, row: KnobRow, value: float | str) -> None:
            super().__init__()
            self.row, self.value = row, value

    def __init__(self, player: int, spec: KnobSpec, value: float | int, **kwargs):
        super().__init__(**kwargs)
        self.player, self.spec, self.value = player, spec, value
        self.editing: str | None = None  # the text typed so far, while typing

    def set_value(self, value: float | int) -> None:
        if value != self.value:
            self.value = value
            self.refresh()

    def nudge(self, direction: int) -> None:
        s = self.spec
        value = min(max(self.value + direction * s.step, s.min), s.max)
        value = int(round(value)) if s.type is int else round(value, 6)
        self.post_message(self.Changed(self, value))

    def on_key(self, event: events.Key) -> None:
        if self.editing is not None:
            if event.key == "enter":
                text, self.editing = self.editing, None
                self.post_message(self.Changed(self, text))
            elif event.key == "escape":
                self.editing = None
            elif event.key == "backspace":
                self.editing = self.editing[:-1]
            elif event.character and event.character in TYPING:
                self.editing += event.character
            else:
                return
        elif event.key in ("up", "right", "plus"):
            self.nudge(+1)
        elif event.key in ("down", "left", "minus"):
            self.nudge(-1)
        elif event.key == "enter":
            self.editing = ""
        elif event.character and event.character in "0123456789.":
            self.editing = event.character
        else:
            return
        event.stop()
        event.prevent_default()
        self.refresh()

    def render(self) -> Text:
        s = self.spec
        label = LABELS.get(s.name, s.name)
        width = max(self.size.width - 22, 0)
        if self.editing is not None:
            return Text.assemble((f"{label:>13} ", "bold"), (f"{self.editing}▏", "reverse"), "  Enter / Esc")
        value = f"{self.value:d}" if s.type is int else f"{self.value:+.2f}" if s.min < 0 else f"{self.value:.2f}"
        fill = round((self.value - s.min) / (s.max - s.min) * width) if width else 0
        default = self.value == s.default
        return Text.assemble(
            (f"{label:>13} ", "bold" if self.has_focus else ""),
            (f"{value:>6} ", "" if default else "bold yellow"),
            ("━" * fill, "yellow" if self.has_focus else "grey50"), ("─" * (width - fill), "grey23"),
        )  # fmt: skip

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.editing = None
        self.refresh()
