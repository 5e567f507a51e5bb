"""How drivable are `vmc-duel play`'s keys? A scripted keyboard driver through tui/human_controls.py.

No person here to try them, so a stand-in: the centre-line autopilot (engine.env.autopilot, style B)
decides what it wants each step, and a "person" turns that into keys by tapping in proportion: in
each window of 8 steps (6 taps a second, humanly possible) a key is down for |value| x 8 steps
(left or right for the steer, gas, or brake). The terminal then reports those keys as one of two
kinds does: hold (press and release) or repeat (the press, then the auto-repeat every 2 steps after
25 steps while the key stays down, no release). The car gets `HumanControls.action` each step.

Prints, per track, the reward and the share of tiles covered in 1000 steps (fast renderer), for the
autopilot's own continuous actions (the reference), hold mode, repeat mode, and the feel variants
that tuning tried. Not a human's skill: a check that the keys can carry fine control at all.

    .venv/bin/python tools/play_keys_drivability.py            # tracks 1-8, about 30 s on one core
    .venv/bin/python tools/play_keys_drivability.py --tracks 3
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from engine.env.autopilot import STYLES, Autopilot
from engine.env.racing_env import make_env
from tui.human_controls import Feel, HumanControls

WINDOW = 8  # steps per tap window
REPEAT_DELAY, REPEAT_EVERY = 25, 2  # the terminal's auto-repeat, in steps (0.5 s, then 25 a second)


def keys_down(action: np.ndarray, step: int) -> set[str]:
    """The keys the tapping person holds down at `step` for the autopilot's `action`."""
    steer, gas, brake = action
    phase = step % WINDOW
    down = set()
    if abs(steer) > 0.05 and phase < math.ceil(min(abs(steer), 1) * WINDOW):
        down.add("right" if steer > 0 else "left")
    if brake > 0.05 and phase < math.ceil(min(brake, 1) * WINDOW):
        down.add("brake")
    elif gas > 0.05 and phase < math.ceil(min(gas, 1) * WINDOW):
        down.add("gas")
    return down


def race(seed: int, mode: str, feel: Feel, steps: int = 1000) -> tuple[float, float]:
    """(reward, share of tiles) of one track driven in `mode`: analog, hold or repeat."""
    env = make_env(renderer="fast")
    env.reset(seed=seed)
    pilot = Autopilot(STYLES["B"])
    controls = HumanControls("hold" if mode == "hold" else "repeat", feel)
    down_since: dict[str, int] = {}
    total = 0.0
    for k in range(steps):
        wanted = pilot.act(env.unwrapped)
        if mode == "analog":
            action = wanted
        else:
            want = keys_down(wanted, k)
            for key in [key for key in down_since if key not in want]:
                del down_since[key]
                controls.release(key)  # repeat mode ignores it, as no such terminal reports it
            for key in want:
                if key not in down_since:
                    down_since[key] = k
                    controls.press(key)
                elif mode == "repeat" and (held := k - down_since[key]) >= REPEAT_DELAY and \
                        (held - REPEAT_DELAY) % REPEAT_EVERY == 0:  # fmt: skip
                    controls.press(key)
            action = controls.action(k)
        _, reward, terminated, truncated, _ = env.step(action)
        total += reward
        if terminated or truncated:
            break
    car_racing = env.unwrapped
    tiles = car_racing.tile_visited_count / len(car_racing.track)
    env.close()
    return total, tiles


VARIANTS = [
    ("analog", "the autopilot itself", Feel()),
    ("hold", "shipped", Feel()),
    ("hold", "steer ramp 0.25/step", Feel(steer_rate=0.25)),
    ("repeat", "shipped", Feel()),
    ("repeat", "taps held 0.2 s", Feel(tap_hold=10, repeat_gap=40, fade=(8.0, 8.0, 25.0, 6.0))),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=8, help="tracks 1..N (default 8)")
    args = parser.parse_args()
    seeds = list(range(1, args.tracks + 1))
    for mode, name, feel in VARIANTS:
        results = [race(s, mode, feel) for s in seeds]
        per_track = " ".join(f"{r:5.0f}/{100 * t:3.0f}%" for r, t in results)
        print(f"{mode:6s} {name:22s} {per_track}   mean {np.mean([r for r, _ in results]):6.1f} pts, "
              f"{100 * np.mean([t for _, t in results]):.0f}% of the tiles", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
