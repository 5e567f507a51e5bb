"""Rain: less grip on the road and seeded streaks drawn over the observation.

Grip: gymnasium's car model takes each wheel's friction limit as the largest
`road_friction` of the tiles under it (1.0 on a dry road), or 0.6 on grass. In rain
every tile's `road_friction` is RAIN_ROAD_FRICTION, so the dry road's grip drops by a
quarter while grass keeps its 0.6 (the car model fixes that value).

Streaks: RAIN_DROPS short slanted lines falling over the play area, a pure function
of (seed, frame index): two cars given the same seed see the same rain, whatever
they do, and whichever renderer draws the road.
"""

from __future__ import annotations

import numpy as np

RAIN_ROAD_FRICTION = 0.75  # road grip in rain, relative to CarRacing's dry 1.0
RAIN_DROPS = 48  # streaks on screen at any time
RAIN_LENGTH = (3, 7)  # streak length range, pixels of the 96x96 observation
RAIN_FALL = (2.0, 4.0)  # fall speed range, pixels per step
RAIN_SLANT = 0.35  # pixels sideways per pixel down (wind)
RAIN_ALPHA = 0.45  # opacity of a streak
RAIN_COLOR = np.array([190.0, 200.0, 225.0], dtype=np.float32)  # RGB 0-255
PLAY_ROWS = 84  # rows above the dashboard bar (96 * 35/40), where rain falls


class RainOverlay:
    """Seeded rain streaks over (96, 96, 3) uint8 observations."""

    def __init__(self, seed: int, size: int = 96):
        rng = np.random.default_rng(seed)
        self.size = size
        self.x0 = rng.uniform(0, size, RAIN_DROPS)
        self.y0 = rng.uniform(0, PLAY_ROWS, RAIN_DROPS)
        self.fall = rng.uniform(*RAIN_FALL, RAIN_DROPS)
        self.length = rng.integers(RAIN_LENGTH[0], RAIN_LENGTH[1] + 1, RAIN_DROPS)
        # Pixel offsets along each streak, flattened once: (sum(length),)
        self._drop = np.repeat(np.arange(RAIN_DROPS), self.length)
        self._along = np.concatenate([np.arange(n) for n in self.length]).astype(np.float64)

    def pixels(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices (int64) of the streak pixels at `frame`."""
        fall = self.fall[self._drop] * frame
        y = (self.y0[self._drop] + fall + self._along) % PLAY_ROWS
        x = (self.x0[self._drop] - RAIN_SLANT * (fall + self._along)) % self.size
        return y.astype(np.int64), x.astype(np.int64)

    def apply(self, obs: np.ndarray, frame: int) -> np.ndarray:
        """Return a copy of `obs` (96, 96, 3) uint8 with the rain of `frame` drawn on it."""
        out = obs.copy()
        rows, cols = self.pixels(frame)
        px = out[rows, cols].astype(np.float32)
        out[rows, cols] = (px + RAIN_ALPHA * (RAIN_COLOR - px) + 0.5).astype(np.uint8)
        return out
