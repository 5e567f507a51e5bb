"""A small dialog to type a track seed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class SeedScreen(ModalScreen[int | None]):
    """Returns the seed typed (Enter), or None (Escape)."""

    BINDINGS = [("escape", "cancel", "cancel")]
    AUTO_FOCUS = "Input"

    def compose(self) -> ComposeResult:
        with Vertical(id="seed-dialog"):
            yield Label("Track seed (0 - 4294967295), Enter to race it, Esc to cancel")
            yield Input(placeholder="e.g. 7", type="integer", id="seed-input")
            yield Label("", id="seed-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            seed = int(event.value)
        except ValueError:
            self.query_one("#seed-error", Label).update(f"[red]{event.value!r} is not a whole number[/red]")
            return
        if not 0 <= seed < 2**32:
            self.query_one("#seed-error", Label).update(f"[red]{seed} is outside 0 - 4294967295[/red]")
            return
        self.dismiss(seed)

    def action_cancel(self) -> None:
        self.dismiss(None)
