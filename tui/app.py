"""The terminal app: watch the duel live and tune each player's knobs while it runs.

A thin `App`: the race runs in `engine.race.live.RaceRunner`'s worker thread; a 30 Hz timer
draws the latest snapshot (only when it changed); keys become runner commands. Layout
and widgets live in tui/widgets/, the look in app.tcss. `make_app()` builds it for tests.

Layout: the two players stacked on the left (a square frame beside the knobs, so every knob
keeps its name, value and bar at 80x24), the track map on the right. `on_resize` sizes the
frames and the map to the terminal, and makes the knob column a drawer (`t` swaps knobs and
telemetry) when a player's row is too short for both.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterable
from pathlib import Path

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.policy.knobs import KnobError
from engine.race.duel import PLAYERS
from engine.race.live import RaceRunner, Snapshot
from tui.graphics import detect_graphics
from tui.widgets.frame_view import FrameView
from tui.widgets.knob_row import KnobRow
from tui.widgets.player_panel import PlayerPanel
from tui.widgets.race_header import RaceHeader
from tui.widgets.seed_screen import SeedScreen
from tui.widgets.track_map import MapInfo, TrackMapView

DRAW_HZ = 30  # screen updates per second, at most
MIN_SIZE = (60, 20)  # columns, rows: below this the panels do not fit and the app says so
GRAPHICS = ("auto", "halfblock", "sixel", "kitty", "ascii")
MAP_WIDTH = (26, 48)  # columns of the map pane, at least and at most (a third of the terminal between)
FULL_ROW = 18  # rows a player's row needs for knobs, sparkline and telemetry together; below: a drawer
RECORD_DIR = Path("replays")  # where `w` writes race records (relative to the working directory)


def result_line(label: str, t: dict) -> str:
    """One car's result for the race-over summary: "LABEL: reward pts, off-track s, tiles %[, lap finished]"."""
    lap = ", lap finished" if t["lap_finished"] else ""
    return (f"{label}: {t['reward']:.1f} pts, {t['off_track_seconds']:.1f} s off track, "
            f"{t['tiles_percent']:.0f}% of tiles{lap}")


class DuelApp(App):
    """VMC Duel in the terminal."""

    CSS_PATH = "app.tcss"
    AUTO_FOCUS = None  # tab enters the knobs; until then "d" restores both players
    TITLE = "VMC Duel"
    RECORD_PREFIX = "duel"  # race records written by `w` are called duel-SEED-stepN-TIME.json
    BINDINGS = [
        Binding("space", "toggle", "start/pause"),
        Binding("r", "reset", "reset"),
        Binding("n", "new_seed", "new track"),
        Binding("s", "type_seed", "seed"),
        Binding("d", "defaults", "defaults"),
        Binding("v", "toggle_view", "model view"),
        Binding("m", "toggle_map", "map"),
        Binding("t", "toggle_telemetry", "telemetry"),
        Binding("w", "write_record", "save replay"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, runner: RaceRunner, graphics: str = "auto", truecolor: bool | None = None,
                 draw_hz: float = DRAW_HZ, record_dir: Path = RECORD_DIR):  # fmt: skip
        super().__init__()
        if graphics not in GRAPHICS:
            raise ValueError(f"graphics {graphics!r} is not one of {', '.join(GRAPHICS)}")
        self.runner = runner
        self.graphics = detect_graphics(os.environ) if graphics == "auto" else graphics
        if truecolor is None:
            from tui.halfblock import detect_truecolor

            truecolor = detect_truecolor(os.environ)
        self.truecolor, self.draw_hz, self.record_dir = truecolor, draw_hz, Path(record_dir)
        self.model_view = False
        self._drawn_version = -1
        self._reported_error: str | None = None
        self._decoder = None

    def compose(self) -> ComposeResult:
        yield RaceHeader(id="header")
        snap = self.runner.snapshot()
        with Horizontal(id="main"):
            with Vertical(id="players"):
                for p, name in enumerate(PLAYERS):
                    yield self.player_panel(p, name, snap)
            with Vertical(id="map-pane"):
                yield TrackMapView(self.graphics, self.truecolor, id="map")
                yield MapInfo(id="map-info")
        yield Static(id="summary")
        yield Static(id="too-small")
        yield Footer()

    def player_panel(self, p: int, name: str, snap: Snapshot) -> PlayerPanel:
        """Player `p`'s row (`vmc-duel play` gives the person's car another)."""
        return PlayerPanel(p, name, self.runner.duel.bounds, snap.knobs[p], self.graphics, self.truecolor,
                           id=f"player-{name}")  # fmt: skip

    def on_mount(self) -> None:
        self.runner.start_thread()
        self.draw(force=True)
        gc.freeze()  # what is alive now lives for the whole session: no 20-50 ms collections over it
        self.set_interval(1 / self.draw_hz, self.draw)
        self.on_resize()  # the size check, now that the widgets exist

    def on_resize(self) -> None:
        w, h = self.size
        small = w < MIN_SIZE[0] or h < MIN_SIZE[1]
        self.screen.set_class(small, "too-small")
        self._fit(w, h)
        if small and self.screen.query("#too-small"):
            self.screen.query_one("#too-small", Static).update(
                f"The terminal is {w}x{h}: VMC Duel needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]} (80x24 is comfortable). "
                "Enlarge it; the race carries on meanwhile (space pauses, q quits)."
            )

    def _fit(self, w: int, h: int) -> None:
        """Size the map pane and the frames to a w x h terminal; a drawer when a player's row is short."""
        try:
            screen = self.screen_stack[0]
            pane = screen.query_one("#map-pane")
            panels = [screen.query_one(f"#player-{name}", PlayerPanel) for name in PLAYERS]
        except (NoMatches, IndexError):
            return
        map_w = min(max(w // 3, MAP_WIDTH[0]), MAP_WIDTH[1])
        pane.styles.width = map_w
        screen.query_one("#map", TrackMapView).styles.height = max(min((map_w - 1) // 2, h - 8), 4)  # square
        players_w = w - (0 if screen.has_class("map-hidden") else map_w)
        body = max((h - 2) // 2 - 1, 1)  # header and footer; a title row per player
        screen.set_class(body < FULL_ROW, "drawer")
        for panel in panels:
            panel.fit_frame(body, players_w)

    def on_unmount(self) -> None:
        self.runner.close()

    # -- drawing -----------------------------------------------------------------------------
    def draw(self, force: bool = False) -> None:
        """Show the latest snapshot, if it changed since the last draw."""
        snap = self.runner.snapshot()
        if snap.version == self._drawn_version and not force:
            return
        try:
            header = self.screen_stack[0].query_one(RaceHeader)
            panels = [self.screen_stack[0].query_one(f"#player-{name}", PlayerPanel) for name in PLAYERS]
            summary = self.screen_stack[0].query_one("#summary", Static)
            track_map = self.screen_stack[0].query_one("#map", TrackMapView)
            map_info = self.screen_stack[0].query_one("#map-info", MapInfo)
        except (NoMatches, IndexError):  # not mounted yet, or shutting down: the next tick draws
            return
        self._drawn_version = snap.version
        if snap.error is not None and snap.error != self._reported_error:  # once per failure, until reset
            self.notify(f"the race stopped: {snap.error}. Press r to reset (fresh environments).",
                        severity="error", timeout=30)  # fmt: skip
        self._reported_error = snap.error
        header.show(snap)
        frames = self._model_frames(snap) if self.model_view else snap.frames
        for p, panel in enumerate(panels):  # which controller drives: file, generation, sha256 prefix
            info = snap.controller_info[p]["short"] if snap.controller_info else snap.controllers[p]
            panel.show(snap, frames[p], info)
        if track_map.display:
            track_map.show_snapshot(snap)
            map_info.show(snap)
        if self.graphics in ("sixel", "kitty"):
            self.call_after_refresh(self._write_graphics)
        summary.set_class(snap.status == "finished", "shown")
        if snap.status == "finished":
            summary.update(self._summary_text(snap))

    def _write_graphics(self) -> None:
        """Sixel / kitty frames go straight to the terminal, after Textual's own update."""
        data = "".join(self.query_one(f"#frame-{p}", FrameView).graphics(p) for p in range(len(PLAYERS)))
        data += self.query_one("#map", TrackMapView).graphics(len(PLAYERS))
        if data and self._driver is not None:
            self._driver.write(data)

    def _model_frames(self, snap: Snapshot):
        if self._decoder is None:
            from engine.world_model.runtime import Decoder

            self._decoder = Decoder("cpu", weights_dir=self.runner.weights_dir)
        return self._decoder(snap.z)

    @staticmethod
    def _summary_text(snap: Snapshot) -> str:
        parts = [f"[b]Race over: {'draw' if snap.winner == 'draw' else 'player ' + snap.winner + ' wins'}[/b]"]
        parts += [result_line(name, snap.telemetry[p]) for p, name in enumerate(PLAYERS)]
        parts.append("[dim]r: race this track again  n: a new track  s: type a seed[/dim]")
        return "   ".join(parts[:1]) + "\n" + "\n".join(parts[1:])

    # -- actions -----------------------------------------------------------------------------
    def action_toggle(self) -> None:
        self.runner.toggle()
        self.draw()

    def action_reset(self) -> None:
        self.runner.reset()
        self.draw()

    def action_new_seed(self) -> None:
        seed = self.runner.new_seed()
        self.notify(f"new track: seed {seed}")
        self.draw()

    def action_type_seed(self) -> None:
        def chosen(seed: int | None) -> None:
            if seed is not None:
                self.runner.reset(seed)
                self.draw()

        self.runner.pause()
        self.push_screen(SeedScreen(), chosen)

    def action_defaults(self) -> None:
        """Restore the focused player's knobs (both players' when no knob has focus)."""
        focused = self.focused
        players = [focused.player] if isinstance(focused, KnobRow) else [0, 1]
        for p in players:
            self.runner.restore_defaults(p)
        self.notify(f"defaults restored: player {' and '.join(PLAYERS[p] for p in players)}")
        self.draw()

    def action_toggle_view(self) -> None:
        self.model_view = not self.model_view
        self.notify("what the model sees (VAE reconstruction)" if self.model_view else "camera view")
        self.draw(force=True)

    def action_toggle_map(self) -> None:
        self.screen_stack[0].toggle_class("map-hidden")
        self.on_resize()
        self.draw(force=True)

    def action_toggle_telemetry(self) -> None:
        self.screen_stack[0].toggle_class("show-telemetry")

    def action_write_record(self) -> Path | None:
        """Write the race so far as a record for `vmc-duel replay` (a new file, never one that exists);
        returns its path (None when it could not be written: the reason is on screen)."""
        snap = self.runner.snapshot()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.record_dir / f"{self.RECORD_PREFIX}-{snap.seed}-step{snap.step}-{stamp}.json"
        k = 1
        while path.exists():
            k += 1
            path = self.record_dir / f"{self.RECORD_PREFIX}-{snap.seed}-step{snap.step}-{stamp}-{k}.json"
        try:
            self.runner.save_record(path)
        except (OSError, RuntimeError) as e:
            self.notify(f"could not save the replay: {e}", severity="error", timeout=6)
            return None
        self.notify(f"replay saved: {path} (vmc-duel replay {path})")
        return path

    def on_knob_row_changed(self, message: KnobRow.Changed) -> None:
        row = message.row
        value = message.value
        try:
            if isinstance(value, str):
                if value.strip() == "":
                    return
                try:
                    value = float(value)
                except ValueError:
                    who = f"player {PLAYERS[row.player]}"
                    raise KnobError(f"{who}: {row.spec.name} = {value!r} is not a number") from None
            self.runner.set_knob(row.player, row.spec.name, value)
        except KnobError as e:
            self.notify(f"refused: {e}", severity="error", timeout=6)
            row.refresh()
            return
        self.draw()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Start / pause", "Start the race, or pause it", self.action_toggle)
        yield SystemCommand("Reset", "Race the same track again from the start", self.action_reset)
        yield SystemCommand("New track", "Race a new random track", self.action_new_seed)
        yield SystemCommand("Type a seed", "Choose the track by its seed", self.action_type_seed)
        yield SystemCommand("Restore defaults", "Knobs back to their defaults", self.action_defaults)
        yield SystemCommand("Model view", "Show what the model sees (VAE reconstruction)", self.action_toggle_view)
        yield SystemCommand("Track map", "Show or hide the track map", self.action_toggle_map)
        yield SystemCommand("Telemetry", "Swap knobs and telemetry where they share a drawer",
                            self.action_toggle_telemetry)  # fmt: skip
        yield SystemCommand("Save replay", "Write this race to a file for `vmc-duel replay`", self.action_write_record)


def make_app(seed: int | None = None, device: str = "auto", weather: str = "clear", graphics: str = "auto",
             renderer: str = "exact", speed: float | None = 1.0, truecolor: bool | None = None,
             weights_dir: Path | None = None, driver: str = "model",
             controllers: tuple[Path | None, Path | None] | None = None) -> DuelApp:  # fmt: skip
    """The app with its race engine. A fixed `seed` makes it deterministic on one machine;
    with driver="autopilot" as well, on every CPU (no model float steers: the snapshots).
    controllers: files for A and B (None: weights_dir's controllerA.npz / controllerB.npz)."""
    runner = RaceRunner(seed=seed, speed=speed, device=device, weather=weather, renderer=renderer,
                        weights_dir=weights_dir, driver=driver, controllers=controllers)  # fmt: skip
    return DuelApp(runner, graphics=graphics, truecolor=truecolor)


__all__ = ["DuelApp", "FrameView", "make_app"]
