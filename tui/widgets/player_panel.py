"""One player's column: title, live frame beside its telemetry, a reward sparkline, the knobs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from engine.policy.knobs import Bounds
from engine.race.live import Snapshot
from tui.widgets.frame_view import FrameView
from tui.widgets.knob_row import KnobRow
from tui.widgets.telemetry_view import TelemetryView

SPARK_POINTS = 60  # sparkline samples (the reward curve is resampled to this)


class PlayerPanel(Vertical):
    def __init__(self, player: int, name: str, bounds: Bounds, values: dict, graphics: str, truecolor: bool,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.player, self.player_name, self.bounds, self.values = player, name, bounds, values
        self.graphics, self.truecolor = graphics, truecolor

    def compose(self) -> ComposeResult:
        yield Static(f"Player {self.player_name}", classes="player-title", id=f"title-{self.player}")
        yield FrameView(self.graphics, self.truecolor, classes="frame", id=f"frame-{self.player}")
        yield Sparkline([0.0], classes="spark", id=f"spark-{self.player}")
        with Horizontal(classes="controls"):
            yield TelemetryView(classes="telemetry", id=f"telemetry-{self.player}")
            with Vertical(classes="knobs"):
                for name, spec in self.bounds.knobs.items():
                    row_id = f"knob-{self.player}-{name.replace('.', '-')}"
                    yield KnobRow(self.player, spec, self.values[name], id=row_id)

    def show(self, snap: Snapshot, frame, controller: str) -> None:
        self.query_one(f"#title-{self.player}", Static).update(
            f"[b]Player {self.player_name}[/b]  [dim]{controller}[/dim]"
        )
        self.query_one(FrameView).show(frame)
        self.query_one(TelemetryView).show(snap.telemetry[self.player])
        rewards = snap.rewards[self.player]
        if len(rewards):
            step = max(len(rewards) // SPARK_POINTS, 1)
            self.query_one(Sparkline).data = list(rewards[::step])
        for row in self.query(KnobRow):
            row.set_value(snap.knobs[self.player][row.spec.name])
