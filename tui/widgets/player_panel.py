"""One player's row: title, the live frame beside its knobs, reward sparkline and telemetry.

The frame is square (its width follows the row's height, see `fit_frame`); the knobs, the
sparkline and the telemetry share the column beside it. When the row is too short for all
three (an 80x24 terminal), the column is a drawer: the knobs show, and `t` swaps them for the
telemetry (the app sets the screen classes `drawer` and `show-telemetry`).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from engine.policy.knobs import Bounds
from engine.race.live import Snapshot
from tui.map_image import CAR_COLOURS
from tui.widgets.frame_view import FrameView
from tui.widgets.knob_row import KnobRow
from tui.widgets.telemetry_view import TelemetryView
from tui.widgets.track_map import rgb

SPARK_POINTS = 60  # sparkline samples (the reward curve is resampled to this)
FRAME_SHARE = 0.5  # at most this share of the row's width goes to the frame


class PlayerPanel(Vertical):
    def __init__(self, player: int, name: str, bounds: Bounds, values: dict, graphics: str, truecolor: bool,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.player, self.player_name, self.bounds, self.values = player, name, bounds, values
        self.graphics, self.truecolor = graphics, truecolor

    def compose(self) -> ComposeResult:
        yield Static(f"Player {self.player_name}", classes="player-title", id=f"title-{self.player}")
        with Horizontal(classes="body"):
            yield FrameView(self.graphics, self.truecolor, classes="frame", id=f"frame-{self.player}")
            with Vertical(classes="side"):
                with Vertical(classes="knobs"):
                    for name, spec in self.bounds.knobs.items():
                        row_id = f"knob-{self.player}-{name.replace('.', '-')}"
                        yield KnobRow(self.player, spec, self.values[name], id=row_id)
                yield Sparkline([0.0], classes="spark", id=f"spark-{self.player}")
                yield TelemetryView(classes="telemetry", id=f"telemetry-{self.player}")

    def fit_frame(self, body_height: int, width: int) -> None:
        """A square frame: two cells wide per row of height (half-block pixels are square)."""
        self.query_one(FrameView).styles.width = max(min(2 * body_height, int(width * FRAME_SHARE)), 4)

    def show(self, snap: Snapshot, frame, controller: str) -> None:
        self.query_one(f"#title-{self.player}", Static).update(
            f"[b {rgb(CAR_COLOURS[self.player])}]● Player {self.player_name}[/]  [dim]{controller}[/dim]"
        )
        self.query_one(FrameView).show(frame)
        self.query_one(TelemetryView).show(snap.telemetry[self.player])
        rewards = snap.rewards[self.player]
        if len(rewards):
            step = max(len(rewards) // SPARK_POINTS, 1)
            self.query_one(Sparkline).data = list(rewards[::step])
        for row in self.query(KnobRow):
            row.set_value(snap.knobs[self.player][row.spec.name])
