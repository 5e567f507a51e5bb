"""The row of the car a person drives (`vmc-duel play`): the frame, how the keys work, what the car does.

The duel's `PlayerPanel` with the knobs replaced (a person has none): beside the frame, the key mode
(hold to steer, or keys that fade: tui/human_controls.py), then the person's numbers (reward, speed,
off-track time, tiles, the action as bars) and the reward sparkline. It fits an 80x24 terminal's
10-row player body without a drawer.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from engine.race.live import Snapshot
from tui.human_controls import HumanControls
from tui.map_image import CAR_COLOURS
from tui.widgets.frame_view import FrameView
from tui.widgets.player_panel import SPARK_POINTS, PlayerPanel
from tui.widgets.telemetry_view import car_rows
from tui.widgets.track_map import rgb


class DriverView(Static):
    """The key mode on one line, then the person's car: reward, speed, off track, tiles, steer, gas, brake."""

    def show(self, t: dict, mode: str) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_row("keys", Text(mode, style="italic"))
        car_rows(table, t)
        if t["done"]:
            table.add_row("", Text("lap finished" if t["lap_finished"] else "finished", style="bold magenta"))
        self.update(table)


class HumanPanel(PlayerPanel):
    """The person's row: title, frame, `DriverView` and the reward sparkline."""

    def __init__(self, player: int, name: str, controls: HumanControls, graphics: str, truecolor: bool, **kwargs):
        super().__init__(player, name, None, {}, graphics, truecolor, **kwargs)  # type: ignore[arg-type]  # no knobs
        self.controls = controls

    def compose(self) -> ComposeResult:
        yield Static(f"Player {self.player_name}", classes="player-title", id=f"title-{self.player}")
        with Horizontal(classes="body"):
            yield FrameView(self.graphics, self.truecolor, classes="frame", id=f"frame-{self.player}")
            with Vertical(classes="side"):
                yield DriverView(classes="driver", id=f"driver-{self.player}")
                yield Sparkline([0.0], classes="spark human-spark", id=f"spark-{self.player}")

    def show(self, snap: Snapshot, frame, controller: str) -> None:
        self.query_one(f"#title-{self.player}", Static).update(
            f"[b {rgb(CAR_COLOURS[self.player])}]● Player {self.player_name}[/]  [b]you[/b] [dim]at the keyboard[/dim]"
        )
        self.query_one(FrameView).show(frame)
        self.query_one(DriverView).show(snap.telemetry[self.player], self.controls.describe())
        rewards = snap.rewards[self.player]
        if len(rewards):
            step = max(len(rewards) // SPARK_POINTS, 1)
            self.query_one(Sparkline).data = list(rewards[::step])


__all__ = ["DriverView", "HumanPanel"]
