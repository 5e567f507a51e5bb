"""A scripted driver that follows the track's centre line (pure pursuit).

It reads the track and the car's pose straight from the simulator, which a learned
controller never sees, so it is no contestant: it steers the collection policy
(train.collect), is a baseline, and drives `Duel(driver="autopilot")`, a race in which no
model float decides anything and which is therefore the same on every CPU (the screen
snapshot tests use it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DrivingStyle:
    """How the autopilot drives."""

    lookahead: int = 6
    """Track points ahead (about 3.5 m each) to aim at."""
    steer_gain: float = 2.0
    """Steering action per radian of heading error."""
    top_speed: float = 70.0
    """Target speed on straights, m/s (simulator units)."""
    corner_slowdown: float = 60.0
    """Target speed lost per radian of upcoming turn."""
    corner_window: int = 12
    """Track points ahead scanned for turns."""


STYLES = {
    "A": DrivingStyle(top_speed=75.0, corner_slowdown=55.0),  # races hard
    "B": DrivingStyle(top_speed=55.0, corner_slowdown=70.0, lookahead=7),  # careful
}


class Autopilot:
    """Pure pursuit on CarRacing's centre line for one car."""

    def __init__(self, style: DrivingStyle):
        self.style = style
        self._track_id = None
        self._xy = np.zeros((0, 2))
        self._beta = np.zeros(0)

    def act(self, env) -> np.ndarray:
        """Action (3,) float64 (steer, gas, brake) for the unwrapped CarRacing `env`."""
        if self._track_id is not id(env.track):
            track = np.asarray(env.track, dtype=np.float64)  # (T, 4) alpha, beta, x, y
            self._xy, self._beta = track[:, 2:4], track[:, 1]
            self._track_id = id(env.track)
        s = self.style
        hull = env.car.hull
        pos = np.array(hull.position)
        n = len(self._xy)
        i0 = int(np.argmin(((self._xy - pos) ** 2).sum(axis=1)))
        target = self._xy[(i0 + s.lookahead) % n] - pos
        heading = hull.angle
        forward = (-math.sin(heading), math.cos(heading))  # the car's local +y
        cross = forward[0] * target[1] - forward[1] * target[0]
        dot = forward[0] * target[0] + forward[1] * target[1]
        error = math.atan2(cross, dot)  # > 0: target to the left
        steer = float(np.clip(-s.steer_gain * error, -1.0, 1.0))

        ahead = self._beta[np.arange(i0, i0 + s.corner_window) % n]
        bends = (np.diff(ahead) + math.pi) % (2 * math.pi) - math.pi  # wrapped at the lap's end
        turn = float(np.abs(bends).sum())  # radians of turning in the window
        target_speed = max(s.top_speed - s.corner_slowdown * turn, 15.0)
        vx, vy = hull.linearVelocity
        speed = math.hypot(vx, vy)
        gas = 1.0 if speed < target_speed else 0.0
        brake = 0.6 if speed > target_speed + 8.0 else 0.0
        return np.array([steer, gas, brake])
