"""What a frame shows, read from its integers: road, road not yet driven, the speedometer.

The pace (engine.policy.pace) and the recovery (engine.policy.recovery) read the observation the
controller gets (the camera follows the car, nose up), never the simulator, so a race is the
same on every renderer, backend and batch.
"""

from __future__ import annotations

import numba
import numpy as np

PLAY_ROWS = 84  # rows of the 96x96 observation above the dashboard bar
CAR_ROW, CAR_COL = 70, 48  # pixel of the car's centre in the observation
ROAD_LEVEL = (70, 150)  # the road's grey, 0-255 (dry 102-107; under a rain streak up to ~145)
ROAD_GREY_SPREAD = 14  # |r - g| and |g - b| below this: grey (grass has g - r ~ 100; curbs are red or white)
# CarRacing paints a tile the plain road grey (100 in the frame) once a car has driven on it
# (its contact listener's `tile.color[:] = road_color`); road still to drive shows its tiles'
# bands (100, 102, 105 in turn). A light band is road not yet driven.
FRESH_LEVEL = (101, 107)  # road grey in this range: a tile not yet driven
# The dashboard's speed bar (CarRacing._render_indicators: 0.02 x speed of a bar 20 window px per
# unit, drawn over 1000 x 800 px and shrunk to 96 x 96): the grey levels of obs column 12, rows
# 84-95, summed, are linear in the speed (fitted on 2,400 frames of both renderers: within 1.5 m/s).
SPEED_BAR = (84, 96, 12)  # rows [84, 96) of column 12
SPEED_PER_LEVEL = 0.082  # m/s per summed grey level
SPEED_OFFSET = -3.5  # m/s


@numba.njit(cache=True, inline="always")
def is_road(px: np.ndarray) -> bool:
    """px (3,) uint8 -> whether the pixel is road (grey of the road's level; kerbs and grass are not)."""
    r, g, b = np.int64(px[0]), np.int64(px[1]), np.int64(px[2])
    return abs(r - g) < ROAD_GREY_SPREAD and abs(g - b) < ROAD_GREY_SPREAD and ROAD_LEVEL[0] < r < ROAD_LEVEL[1]


@numba.njit(cache=True, inline="always")
def is_fresh(px: np.ndarray) -> bool:
    """px (3,) uint8, a road pixel -> whether it is a light band: road not yet driven."""
    return FRESH_LEVEL[0] <= np.int64(px[0]) <= FRESH_LEVEL[1]


@numba.njit(cache=True)
def dashboard_speed(frame: np.ndarray) -> float:
    """frame (96, 96, 3) uint8 -> the car's speed in m/s, read off the dashboard's speed bar (±1.5)."""
    total = 0
    for y in range(SPEED_BAR[0], SPEED_BAR[1]):
        total += np.int64(frame[y, SPEED_BAR[2], 0])
    return max(SPEED_PER_LEVEL * total + SPEED_OFFSET, 0.0)
