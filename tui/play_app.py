"""`vmc-duel play`: a person drives one car from the keyboard against a learned controller in the other.

The duel's app (tui/app.py) with one change of cast: the person's car (`human`, B by default) takes
its action from the keys (tui/human_controls.py) instead of its controller, through the same
environment, renderer and physics (engine.race.duel: `Duel(human=...)`); the model's car races
exactly as it would against another controller, its knobs beside it. The screen is the duel's: both
views, the map with both dots and the gap, telemetry; the person's row shows the key mode instead
of knobs.

Keys: arrows or WASD drive (priority bindings: they drive even while a knob has focus; the knobs
keep + / - and typing), space starts and pauses, r races the track again, n a new track, ctrl+s
saves a replay (`w` is the gas here), v the model's view, m the map, q quits.

Where the terminal reports key releases (tui/kitty_keys.py) a key is held until it comes up;
elsewhere a tap is a short push that fades, and a held key's auto-repeat keeps it on. The app
starts in the second mode and switches when the terminal says it sends releases; the person's row
says which is active.

A finished race goes to the local leaderboard (tui/scores.py) and, with `record`, to that race
record; quitting mid-race writes the record of the race so far.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.events import AppBlur

from engine.race.duel import PLAYERS
from engine.race.live import RaceRunner, Snapshot
from tui.app import RECORD_DIR, DuelApp, result_line
from tui.human_controls import HumanControls
from tui.kitty_keys import KeyboardFlags, KeyReleased, release_driver
from tui.scores import Entry, Scores, ScoresError, now_utc
from tui.widgets.human_panel import HumanPanel
from tui.widgets.player_panel import PlayerPanel

KEYS = ("auto", "repeat", "hold")  # auto: repeat until the terminal says it reports releases
KEY_CONTROL = {"up": "gas", "w": "gas", "down": "brake", "s": "brake", "left": "left", "a": "left",
               "right": "right", "d": "right"}  # fmt: skip
STEER = Binding.Group("steer")


class PlayRunner(RaceRunner):
    """A RaceRunner whose `human` car takes `controls`' action each step; every reset starts the keys afresh."""

    def __init__(self, controls: HumanControls, human: str, **kwargs):
        self.controls = controls
        super().__init__(human=human, human_input=controls.action, **kwargs)

    def reset(self, seed: int | None = None) -> int:
        with self._lock:  # no step between the new track and the fresh keys
            seed = super().reset(seed)
            self.controls.reset()
            self.race_id = getattr(self, "race_id", 0) + 1  # which race a finish or a record belongs to
            return seed


class PlayApp(DuelApp, inherit_bindings=False):
    """A person against a controller. See the module's docstring."""

    TITLE = "VMC Duel: play"
    CSS_PATH = ["app.tcss", "play.tcss"]
    RECORD_PREFIX = "play"
    BINDINGS = [
        *App.BINDINGS,
        Binding("up,w", "drive('gas')", "gas", key_display="↑ w", priority=True),
        Binding("down,s", "drive('brake')", "brake", key_display="↓ s", priority=True),
        Binding("left,a", "drive('left')", "steer", key_display="← a", priority=True, group=STEER),
        Binding("right,d", "drive('right')", "steer", key_display="→ d", priority=True, group=STEER),
        Binding("space", "toggle", "start/pause"),
        Binding("q", "quit", "quit"),  # before the rest: an 80-column footer shows the first seven or so
        Binding("r", "reset", "again"),
        Binding("n", "new_seed", "new track"),
        Binding("ctrl+s", "write_record", "save replay"),
        Binding("v", "toggle_view", "model view"),
        Binding("m", "toggle_map", "map"),
        Binding("t", "toggle_telemetry", "telemetry", show=False),
    ]

    def __init__(self, runner: PlayRunner, keys: str = "auto", record: Path | None = None, force: bool = False,
                 scores: Scores | None = None, against: str = "", auto_record: bool = False, **kwargs):  # fmt: skip
        if keys not in KEYS:
            raise ValueError(f"keys must be one of {', '.join(KEYS)}, got {keys!r}")
        self.key_mode = keys  # before App.__init__: get_driver_class reads it
        super().__init__(runner, **kwargs)
        self.controls = runner.controls
        self.human = PLAYERS.index(runner.human)
        self.model = 1 - self.human
        self.record, self.force, self.scores, self.against = record, force, scores, against
        self.auto_record = auto_record  # every race to a new file in record_dir (`vmc-duel web`'s play tabs)
        self._record_written = False  # this session wrote `record`: a later race may replace it
        self._done_race: int | None = None  # the race whose finish was scored and recorded
        self.messages: list[str] = []  # what happened to records and scores, for the command line after the app

    def get_driver_class(self):
        """Textual's driver, or one that also reports key releases (tui/kitty_keys.py) when they can be used."""
        driver = release_driver() if self.key_mode in ("auto", "hold") else None
        return driver or super().get_driver_class()

    def player_panel(self, p: int, name: str, snap: Snapshot) -> PlayerPanel:
        if p == self.human:
            return HumanPanel(p, name, self.controls, self.graphics, self.truecolor, id=f"player-{name}")
        return super().player_panel(p, name, snap)

    def on_mount(self) -> None:
        super().on_mount()
        self.notify(f"You drive car {PLAYERS[self.human]} against {self.against or 'the controller'}. "
                    f"{self.controls.describe(long=True)}. Space starts.", timeout=8)  # fmt: skip

    # -- keys --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The driving keys belong to the dialogs (a seed, the command palette) while one is open."""
        if action == "drive" and self.screen is not self.screen_stack[0]:
            return False
        return True

    def action_drive(self, control: str) -> None:
        self.controls.press(control)

    def on_key_released(self, message: KeyReleased) -> None:
        if self.controls.mode != "hold" and self.key_mode == "auto":  # releases do come: hold from now on
            self._use_hold()
        if message.key in KEY_CONTROL:
            self.controls.release(KEY_CONTROL[message.key])

    def on_keyboard_flags(self, message: KeyboardFlags) -> None:
        if message.releases and self.key_mode == "auto" and self.controls.mode != "hold":
            self._use_hold()

    def on_app_blur(self, _event: AppBlur) -> None:
        """The terminal lost focus: its key releases go elsewhere, so no key stays down."""
        self.controls.release_all()

    def _use_hold(self) -> None:
        self.controls.set_mode("hold")
        self.notify(f"{self.controls.describe(long=True)}.", timeout=6)
        self.draw(force=True)

    # -- the race ----------------------------------------------------------------------------
    def action_defaults(self) -> None:
        """Restore the model's knobs (the person's car has none)."""
        self.runner.restore_defaults(self.model)
        self.notify(f"defaults restored: player {PLAYERS[self.model]}")
        self.draw()

    def draw(self, force: bool = False) -> None:
        super().draw(force)
        snap = self.runner.snapshot()
        race = self.runner.race_id
        if snap.status == "finished" and self._done_race != race:
            self._done_race = race
            self._finished(snap)

    def _finished(self, snap: Snapshot) -> None:
        """Score the race and write its record (once per race)."""
        self._write_race_record()
        if self.scores is None:
            return
        me, them = snap.telemetry[self.human], snap.telemetry[self.model]
        winner = "draw" if snap.winner in (None, "draw") else "you" if snap.winner == PLAYERS[self.human] else "model"
        entry = Entry(seed=snap.seed, weather=snap.weather, renderer=self.runner.duel.renderer,
                      seat=PLAYERS[self.human], human_reward=round(me["reward"], 3),
                      model_reward=round(them["reward"], 3), winner=winner, against=self.against,
                      steps=me["step"], tiles_percent=round(me["tiles_percent"], 2),
                      lap_finished=me["lap_finished"], date=now_utc())  # fmt: skip
        try:
            self.scores.add(entry)
        except (OSError, ScoresError) as e:
            self._say(f"the score was not saved: {e}", error=True)
            return
        self._say(f"scored: track {snap.seed}, you {me['reward']:.1f}, the model {them['reward']:.1f} "
                  f"({self.scores.path})")  # fmt: skip

    def _write_race_record(self) -> None:
        """The race so far to `record`, or to a new file in record_dir with `auto_record`."""
        if self.record is not None:
            self._save_record()
        elif self.auto_record:
            path = self.action_write_record()
            if path is not None:
                self.messages.append(f"race record: {path}")

    def _save_record(self) -> bool:
        """Write the race so far to `record`: a file that was there before is replaced only with `force`,
        this session's own earlier record always (the last race driven is kept)."""
        try:
            self.runner.save_record(self.record, force=self.force or self._record_written)
        except (OSError, RuntimeError) as e:
            self._say(f"the race record was not saved: {e}", error=True)
            return False
        self._record_written = True
        human = PLAYERS[self.human]
        self._say(f"race record: {self.record} (player {human} driven by you; vmc-duel replay {self.record})")
        return True

    def _say(self, text: str, error: bool = False) -> None:
        self.messages.append(("error: " if error else "") + text)
        self.notify(text, severity="error" if error else "information", timeout=8)

    def _summary_text(self, snap: Snapshot) -> str:
        seat = PLAYERS[self.human]
        if snap.winner in (None, "draw"):
            head = "[b]Race over: a draw[/b]"
        else:
            head = "[b]Race over: you win![/b]" if snap.winner == seat else "[b]Race over: the model wins[/b]"
        lines = [head]
        lines += [result_line(f"{name} ({'you' if p == self.human else 'model'})", snap.telemetry[p])
                  for p, name in enumerate(PLAYERS)]
        lines.append("[dim]r: this track again  n: a new track  q: quit[/dim]")
        return "   ".join(lines[:1]) + "\n" + "\n".join(lines[1:])

    def on_unmount(self) -> None:
        """Quitting mid-race still writes the record of the race so far (when it has steps)."""
        snap = self.runner.snapshot()
        if self._done_race != self.runner.race_id and snap.step > 0:
            self._write_race_record()
        super().on_unmount()


def make_play_app(seed: int | None = None, human: str = "B", against: Path | None = None, device: str = "auto",
                  weather: str = "clear", graphics: str = "auto", renderer: str = "exact",
                  speed: float | None = 1.0, truecolor: bool | None = None, weights_dir: Path | None = None,
                  driver: str = "model", keys: str = "auto", record: Path | None = None, force: bool = False,
                  scores: Scores | None = None, record_dir: Path = RECORD_DIR, auto_record: bool = False,
                  human_controller: Path | None = None) -> PlayApp:  # fmt: skip
    """The play app with its race. human: the car the person drives ("A" or "B"); against: the controller
    file of the other car (None: that seat's file in weights_dir); human_controller: the file that fills
    the person's row of the model's batch (decides nothing; None: that seat's file). scores: where finished
    races are scored (None: nowhere). record: the race record file; auto_record: every race to a new file in
    record_dir instead. driver="autopilot" races the scripted driver instead of the model
    (the same screen on every CPU: snapshot tests)."""
    if human not in PLAYERS:
        raise ValueError(f"human must be one of {', '.join(PLAYERS)}, got {human!r}")
    controls = HumanControls("hold" if keys == "hold" else "repeat")
    controllers: list[Path | None] = [None, None]
    controllers[PLAYERS.index(human)] = human_controller
    controllers[1 - PLAYERS.index(human)] = against
    runner = PlayRunner(controls, human, seed=seed, speed=speed, device=device, weather=weather, renderer=renderer,
                        weights_dir=weights_dir, driver=driver, controllers=controllers)  # fmt: skip
    model = 1 - PLAYERS.index(human)
    info = runner.controller_info[model] if runner.controller_info else None
    label = f"{info['name']} (sha256 {info['sha256'][:8]})" if info else runner.controllers[model]
    return PlayApp(runner, keys=keys, record=record, force=force, scores=scores, against=label, graphics=graphics,
                   truecolor=truecolor, record_dir=record_dir, auto_record=auto_record)  # fmt: skip


__all__ = ["KEYS", "PlayApp", "PlayRunner", "ScoresError", "make_play_app"]
