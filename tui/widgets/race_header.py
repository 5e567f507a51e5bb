"""The race header: track, step, state, who leads, weather."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.race.live import Snapshot

STATUS_STYLE = {"ready": "bold cyan", "running": "bold green", "paused": "bold yellow", "finished": "bold magenta",
                "error": "bold white on red"}  # fmt: skip


class RaceHeader(Static):
    """One line: VMC Duel | track 7 | step 245/1000 | RUNNING | A leads | clear."""

    def show(self, snap: Snapshot) -> None:
        text = Text.assemble(
            ("VMC Duel", "bold"), "  track ", (str(snap.seed), "bold"), f"  step {snap.step:4d}/1000  ",
            (snap.status.upper(), STATUS_STYLE[snap.status]), "  ",
        )  # fmt: skip
        if snap.status == "error":
            text.append("stopped: press r to reset", "bold red")
        elif snap.status == "finished":
            text.append("winner: " + (snap.winner or "draw"), "bold magenta")
        else:
            text.append(f"{snap.leader} leads" if snap.leader else "level", "bold")
        text.append(f"  {snap.weather}")
        self.update(text)
