"""The pace: full gas where the frame shows a straight, the brakes before a bend it shows.

A linear controller on [z, h] holds one speed: the shipped A's gas is a switch that sits at
the invariant's floor above ~30 m/s, so the car creeps to ~57 m/s whatever the road does and
never brakes; a ridge readout of "a bend ahead" from [z, h] explains only half of it, too
little to brake on (docs/experiments/controller-a.md). The frame itself shows the road some
65 pixels ahead of the car, and the dashboard its speed. The pace reads both:

- the straight ahead: follow the road's centre row by row up the frame from just ahead of the
  car, until the road leaves a window around the last centre, or (a bend) the centre strays
  more than BEND_OFFSET pixels from the car's column or a row holds more road than a road
  straight ahead can (ROAD_ACROSS_PX: the road runs across the view, a hairpin the window
  around the centre does not see), or the frame ends (straight to the top);
- the speed: the height of the dashboard's speed bar, in grey levels of its column.

A controller set with a pace (`pace_bend`, `pace_straight` in its file, m/s; 0: none) gets
full gas while the road is straight to the top of the frame, not yet driven (a car that has
turned round sees only road it drove), and it is slower than `pace_straight`; it brakes
(PACE_BRAKE) while a bend is nearer than BEND_PX and it is faster than `pace_bend` (and, within
BEND_GAS_MARGIN of it, gets no more than the floor's gas: the shipped A's gas is a switch that
can flip to full in a hairpin); elsewhere the controller drives as it would. Only integers of
the frame (engine.policy.frame), no simulator state, so every renderer, backend and batch races
the same. A car the recovery drives (engine.policy.recovery) is left to it: the recovery runs
after the pace.
"""

from __future__ import annotations

import numba
import numpy as np

from engine.policy.frame import CAR_COL, dashboard_speed, is_fresh, is_road

LOOK_FROM_ROW = 64  # the first row ahead of the car (its nose is at row ~66, its centre at 70)
ROAD_WINDOW = 14  # px either side of the last centre searched for road in the next row up
ROAD_MIN_PIXELS = 3  # road pixels a row needs for the road to go on
BEND_OFFSET = 8.0  # px the road's centre may stray from the car's column before it counts as a bend
STRAIGHT_PX = 60  # road straight at least this far ahead (to the top: 65): full gas, up to pace_straight
BEND_PX = 40  # a bend nearer than this: brake, down to pace_bend
PACE_BRAKE = 0.3  # brake before a bend (0.6 locks the wheels more often: more crashes, measured)
BEND_GAS_MARGIN = 10.0  # m/s: within this of pace_bend, a bend near, the gas is held at BEND_GAS at most
BEND_GAS = 0.05  # the invariant's floor (min_throttle): A's gas is a switch that flips to full in a hairpin
ROAD_ACROSS_PX = 26  # road px in a whole row above which the road runs across the view: a bend (a road
# straight ahead shows 20-21 px a row, 21 / cos(angle) at an angle to the car: 26 from 36 degrees)
FRESH_MIN = 30  # road pixels not yet driven on the straight ahead before full gas (a car the wrong way sees none)


@numba.njit(cache=True)
def straight_ahead(frame: np.ndarray) -> tuple[int, int]:
    """frame (96, 96, 3) uint8 -> (pixels of straight road ahead of the car, 0-65 (65: to the top of the
    frame); how many of its road pixels are road not yet driven: light bands, engine.policy.frame)."""
    centre = float(CAR_COL)
    fresh = 0
    for y in range(LOOK_FROM_ROW, -1, -1):
        lo, hi = max(int(centre) - ROAD_WINDOW, 0), min(int(centre) + ROAD_WINDOW, frame.shape[1] - 1)
        total, count, light, across = 0.0, 0, 0, 0  # across: road pixels in the whole row
        for x in range(frame.shape[1]):  # one pass over the row: the window's road and the row's
            if is_road(frame[y, x]):
                across += 1
                if lo <= x <= hi:
                    total += x
                    count += 1
                    light += is_fresh(frame[y, x])
        if count < ROAD_MIN_PIXELS:
            return LOOK_FROM_ROW - y, fresh
        centre = total / count
        if abs(centre - CAR_COL) > BEND_OFFSET or across > ROAD_ACROSS_PX:
            return LOOK_FROM_ROW - y, fresh
        fresh += light
    return LOOK_FROM_ROW + 1, fresh


@numba.njit(cache=True)
def pace(obs: np.ndarray, rows: np.ndarray, bend: np.ndarray, straight: np.ndarray, actions: np.ndarray) -> None:
    """The pace for the players of one step, in place.

    obs (n, 96, 96, 3) uint8 their frames; rows (n,) int64 their indices; bend, straight (P,) float64
    every player's pace_bend and pace_straight in m/s (0: no pace); actions (n, 3) float64 their
    actions, changed where the pace drives."""
    for j in range(rows.shape[0]):
        p = rows[j]
        if bend[p] <= 0.0 and straight[p] <= 0.0:
            continue
        ahead, fresh = straight_ahead(obs[j])
        speed = dashboard_speed(obs[j])
        if ahead >= STRAIGHT_PX and fresh >= FRESH_MIN and speed < straight[p]:
            actions[j, 1] = 1.0
            actions[j, 2] = 0.0
        elif ahead < BEND_PX and bend[p] > 0.0 and speed > bend[p]:
            actions[j, 1] = 0.0
            actions[j, 2] = max(actions[j, 2], PACE_BRAKE)
        elif ahead < BEND_PX and bend[p] > 0.0 and speed > bend[p] - BEND_GAS_MARGIN:
            actions[j, 1] = min(actions[j, 1], BEND_GAS)
