"""A person's keys as a car's action (steer, gas, brake), step by step.

Two ways a terminal can report keys:

- hold: it reports releases (the kitty keyboard protocol, tui/kitty_keys.py): a control is on from
  its key's press to its release, as on a game pad.
- repeat: it reports presses only, and a held key as the terminal's auto-repeat (after a first delay
  of 0.25-0.66 s, then 25-40 presses a second; xterm, tmux, SSH, the browser). A tap is a short pulse:
  its control is on for the step it lands on and fades within a few steps (the gas a little slower), so
  steering is done by tapping, finely, as often as wanted. Presses closer than `repeat_gap` steps are
  the auto-repeat of a held key (nobody taps 16 times a second): each holds its control until the next
  (at least 2 steps), so a held key stays on, and the car answers its release within 40 ms. A held
  key's first press is a tap too: the terminal's first repeat delay is a gap before it takes over.

  Why short taps: a scripted keyboard driver that taps in proportion to what the centre-line autopilot
  asks (in each 8 steps a key is down for |value| x 8 steps; seeds 1-8, 1000 steps, fast renderer)
  covered 55% of the tiles with these taps (1 step, fades of 1 step, the gas 3), 44% in hold mode, 48%
  the autopilot itself; with taps held 10 steps and fading over 8 (a bridge over the first repeat
  delay for a held key) it covered 7%: every small correction became a swerve
  (tools/play_keys_drivability.py).

Time is counted in race steps (50 a second at real time), not on the clock: a paused race holds its
keys as they were, and the action for a step depends only on which keys came before it, which keeps
tests exact. `action(step)` is asked once per step, in order, by the race's thread; `press` and
`release` come from the app's thread (a lock between them).

Steering goes to full lock at once, the brake gives 0.8 and the gas 1.0, as in gymnasium's own
keyboard play of CarRacing (a full brake locks the wheels), the human baseline people know. A ramp
(`steer_rate` below 1) was tried and dropped: a scripted keyboard driver that taps the keys in
proportion to what the centre-line autopilot asks (in each 8 steps a key is down for |steer| x 8
steps) covered 44% of the tiles in hold mode with instant steering (the autopilot itself: 48%) and
14% with full lock in 4 steps: short taps then steer too little, and late.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

CONTROLS = ("left", "right", "gas", "brake")
MODES = ("hold", "repeat")
OPPOSITE = {"left": "right", "right": "left", "gas": "brake", "brake": "gas"}


@dataclass(frozen=True)
class Feel:
    """How keys become an action; in race steps (50 a second)."""

    steer_rate: float = 2.0  # steer change per step towards its target: 2.0, any steer at once, lock to lock too
    brake_level: float = 0.8  # the brake a key gives (gymnasium's keyboard play)
    tap_hold: int = 1  # repeat mode: steps a tap is fully on (the step it lands on)
    repeat_hold: int = 2  # repeat mode: steps an auto-repeat holds its control, at least (25 repeats a second: 2)
    repeat_gap: int = 3  # presses at most this many steps apart (60 ms) are a held key's auto-repeat
    fade: tuple[float, float, float, float] = (1.0, 1.0, 3.0, 1.0)  # per control (CONTROLS), after the hold:
    # the time constant in steps of its exponential fade; the gas a little slower (the car rolls on)


@dataclass
class _Key:
    last: int | None = None  # the step of the last press (repeat mode)
    hold: int = 0  # steps that press counts as held
    down: bool = False  # hold mode: between press and release


class HumanControls:
    """Keys -> (steer, gas, brake). mode: "hold" (releases reported) or "repeat" (presses and repeats only)."""

    def __init__(self, mode: str = "repeat", feel: Feel | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.feel = mode, feel or Feel()
        self._lock = threading.Lock()
        self._keys = {c: _Key() for c in CONTROLS}
        self._steer = 0.0
        self._now = 0  # the step the next action is for: presses are stamped with it
        self.presses = 0  # presses received (the app shows nothing of it; tests and the footer's hint)

    # -- the app's thread --------------------------------------------------------------------
    def press(self, control: str) -> None:
        """A press (or an auto-repeat) of `control`'s key."""
        if control not in CONTROLS:
            raise ValueError(f"control must be one of {', '.join(CONTROLS)}, got {control!r}")
        with self._lock:
            self.presses += 1
            key, other = self._keys[control], self._keys[OPPOSITE[control]]
            other.last, other.down = None, False  # the opposite key gives way at once
            if self.mode == "hold":
                key.down = True
                return
            f = self.feel
            gap = None if key.last is None else self._now - key.last
            if gap is not None and gap <= f.repeat_gap:  # the auto-repeat of a held key: on until the next
                key.hold = max(gap, f.repeat_hold)
            else:  # a tap (or a held key's first press)
                key.hold = f.tap_hold
            key.last = self._now

    def release(self, control: str) -> None:
        """`control`'s key came up (hold mode; in repeat mode no terminal reports it, and it is ignored)."""
        with self._lock:
            if self.mode == "hold":
                self._keys[control].down = False

    def release_all(self) -> None:
        """Every key up: the terminal lost focus (its releases go elsewhere), the race was reset."""
        with self._lock:
            for key in self._keys.values():
                key.last, key.down = None, False

    def set_mode(self, mode: str) -> None:
        """Switch between hold and repeat (the terminal has just said which it does); every key up."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.release_all()
        self.mode = mode

    def reset(self) -> None:
        """A new race: keys up, steering centred, step 0."""
        self.release_all()
        with self._lock:
            self._steer, self._now = 0.0, 0

    # -- the race's thread -------------------------------------------------------------------
    def level(self, control: str, step: int) -> float:
        """How much `control` is on for the step after `step` steps, in [0, 1]."""
        key = self._keys[control]
        if self.mode == "hold":
            return 1.0 if key.down else 0.0
        if key.last is None:
            return 0.0
        age = step - key.last
        if age < key.hold:
            return 1.0
        value = math.exp(-(age - key.hold + 1) / self.feel.fade[CONTROLS.index(control)])
        return value if value > 0.01 else 0.0  # a fade ends, rather than leaving a trace of throttle for ever

    def action(self, step: int) -> np.ndarray:
        """(steer, gas, brake) for the step after `step` steps (float64). Once per step, in order."""
        with self._lock:
            target = self.level("right", step) - self.level("left", step)
            rate = self.feel.steer_rate
            self._steer = min(max(target, self._steer - rate), self._steer + rate)
            self._now = step + 1
            return np.array([self._steer, self.level("gas", step), self.feel.brake_level * self.level("brake", step)])

    def describe(self, long: bool = False) -> str:
        """The mode in words, for the screen: short for the player's row, long for a notice."""
        if self.mode == "hold":
            return ("Hold to steer: this terminal reports key releases (kitty keyboard protocol)" if long
                    else "hold (key releases)")  # fmt: skip
        return ("Tap to steer: this terminal reports no key releases, so a tap is a short push and a held key "
                "takes over once the terminal repeats it" if long else "repeat, fading")  # fmt: skip


__all__ = ["CONTROLS", "MODES", "Feel", "HumanControls"]
