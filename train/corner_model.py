"""How sharp the road ahead bends, read from what the controller reads: the throttle subspace's corner model.

A's gas is a switch, not a throttle: its gas row sits deep in tanh's saturation (pre-activation about
-7.7 at racing speed, the invariant's floor of 0.05 doing the driving) and flips to full when h says the
car is slow, so a step of its gas bias does nothing until it flips the switch for good. The throttle
subspace (train/controller.py, Search) rebuilds gas and brake from two linear readouts of [z, h]: the
speed (train/speed_model.py) and this one, the bend ahead.

The target is |mean steering over steps t + CORNER_FROM .. t + CORNER_TO - 1| of the controller's own
laps: how hard it is about to turn in the next 0.1-0.4 s, whatever the side (the frame shows that
stretch of road). |.| is not linear in anything, but z and h carry it: a ridge fit explains 0.78 of it
in-sample and 0.55 on tracks held back (12 tracks of the shipped A, 8 fitted and 4 held back). The
penalty is stronger than the speed model's because the target is noisier: at RIDGE (0.1) the held-back
R^2 is 0.37 at best and negative beyond 0.2 s ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.laps import drive_laps
from train.speed_model import r_squared, ridge

CORNER_SEED_START = 3_200_000  # tracks the corner model is fitted on: neither evaluation nor held-out ones
CORNER_FROM, CORNER_TO = 5, 20  # steps ahead (0.1 s to 0.4 s at 50 FPS): the stretch whose steering is the target
CORNER_RIDGE = 10.0  # ridge penalty: the held-back R^2 peaks at 10 (0.55) against 0.1 (0.37) and 1000 (0.42)


@dataclass
class CornerModel:
    """The bend ahead, c ~ w . [z, h] + w0: |mean steering| over the next CORNER_FROM..CORNER_TO steps."""

    w: np.ndarray  # (z + hidden,) float64
    w0: float
    r2: float  # on the steps driven


def corner_target(steer: np.ndarray) -> np.ndarray:
    """steer (T,) of one lap -> (T - CORNER_TO,) float64: per step t, the size of the mean steering over
    steps t + CORNER_FROM .. t + CORNER_TO - 1."""
    s = np.concatenate([[0.0], np.cumsum(np.asarray(steer, np.float64))])  # (T + 1,) prefix sums
    t = np.arange(len(steer) - CORNER_TO)
    return np.abs((s[t + CORNER_TO] - s[t + CORNER_FROM]) / (CORNER_TO - CORNER_FROM))


def fit_corner_model(controller: Path, tracks: int = 6, seed_start: int = CORNER_SEED_START,
                     renderer: str = "fast", max_steps: int = 1000) -> CornerModel:  # fmt: skip
    """Drive `controller` (as player A, the shipped B beside it) on `tracks` tracks and fit the bend ahead
    on what it reads at each step (z (32,) and h (256,) after the world model's step)."""
    X, C = [], []
    for lap in drive_laps(controller, tracks, seed_start, renderer, max_steps, label="corner model"):
        target = corner_target(lap.steer)  # (T - CORNER_TO,)
        X.extend(lap.zh[: len(target)])
        C.extend(target)
    X, C = np.asarray(X, np.float64), np.asarray(C, np.float64)  # (steps, z + hidden), (steps,)
    if len(C) < 2:
        raise ValueError(f"corner model: {len(C)} steps driven, too few to fit (laps under {CORNER_TO + 2} steps)")
    w, w0 = ridge(X, C, CORNER_RIDGE)
    return CornerModel(w, w0, r_squared(X @ w + w0, C))
