"""Back to the road: when a car has seen no road under it for a while, steer it back from pixels.

A linear controller on [z, h] was trained on laps, not on grass: once a car leaves the road in
a bend it takes too fast, its controller drives circles on the grass at full gas, the road a
few car lengths away, and a lap worth ~900 ends near 400 (the shipped A with a steering hold on
track 900288: off the road from step 475 to the end). The recovery takes the wheel from the
controller after `recovery_after_steps` steps without road under the car (configs/bounds.yaml,
invariants; 0: never): it brakes the slide for RECOVERY_BRAKE_STEPS, then steers at a crawl
toward the nearest road of the frame that it has not driven yet (CarRacing paints a tile plain
grey once driven; the rest shows light bands), ahead of the car where it can (one behind it
costs BEHIND_COST pixels more), and hands the wheel back once the car has had road under it for
RECOVERY_ON_ROAD_STEPS steps in a row.

It reads only the observation the controller gets (the camera follows the car, nose up), so it
is the same on every renderer, backend and batch: integers of the frame, no simulator state.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from engine.policy.frame import CAR_COL, CAR_ROW, PLAY_ROWS, is_fresh, is_road

UNDER_CAR = (64, 78, 44, 53)  # rows [64, 78) x cols [44, 53): the car and a pixel or two around it
ON_ROAD_PIXELS = 6  # road pixels in UNDER_CAR that count as "road under the car"
BEHIND_COST = 60.0  # pixels added to the distance of a road pixel behind the car
RECOVERY_STEER_GAIN = 2.0  # steer = gain x bearing / pi: full lock at a bearing of 90 degrees
RECOVERY_BRAKE = 0.6  # brake while the slide is stopped
RECOVERY_BRAKE_STEPS = 8  # steps of braking when the recovery takes over (0.16 s)
RECOVERY_GAS = 0.1  # gas while steering back (on grass the wheels grip 0.6 of the road)
RECOVERY_ON_ROAD_STEPS = 20  # steps with road under the car before the controller drives again (0.4 s)


@numba.njit(cache=True)
def road_under_car(frame: np.ndarray) -> bool:
    """frame (96, 96, 3) uint8 -> whether the car has road under it (ON_ROAD_PIXELS grey pixels in UNDER_CAR)."""
    count = 0
    for y in range(UNDER_CAR[0], UNDER_CAR[1]):
        for x in range(UNDER_CAR[2], UNDER_CAR[3]):
            count += is_road(frame[y, x])
    return count >= ON_ROAD_PIXELS


@numba.njit(cache=True)
def steer_to_road(frame: np.ndarray) -> float:
    """frame (96, 96, 3) uint8 -> the steer in [-1, 1] toward the nearest road pixel of the play area
    not yet driven (a light band: engine.policy.frame.FRESH_LEVEL), else toward the nearest road pixel; one
    behind the car counts BEHIND_COST further. NaN when no road is in sight."""
    best, bx, by = np.inf, 0, 0
    fresh_best, fx, fy = np.inf, 0, 0
    for y in range(PLAY_ROWS):
        for x in range(frame.shape[1]):
            px = frame[y, x]
            if is_road(px):
                ahead, side = CAR_ROW - y, x - CAR_COL  # pixels forward and to the right
                d = math.sqrt(ahead * ahead + side * side) + (BEHIND_COST if ahead < 0 else 0.0)
                if d < best:
                    best, bx, by = d, side, ahead
                if is_fresh(px) and d < fresh_best:
                    fresh_best, fx, fy = d, side, ahead
    if fresh_best < np.inf:
        bx, by = fx, fy
    elif best == np.inf:
        return np.nan
    bearing = math.atan2(bx, max(by, 1))  # radians, + to the right
    return min(max(RECOVERY_STEER_GAIN * bearing / math.pi, -1.0), 1.0)


@numba.njit(cache=True)
def recover(obs: np.ndarray, rows: np.ndarray, after: int, off: np.ndarray, back: np.ndarray,
            actions: np.ndarray) -> None:  # fmt: skip
    """The recovery for the players of one step, in place.

    obs (n, 96, 96, 3) uint8 their frames; rows (n,) int64 their indices; after: steps without road
    before it takes over (0: never); off, back (P,) int64 every player's state: steps without road
    under the car, and road steps left before the controller drives again (0: it drives);
    actions (n, 3) float64 their actions, replaced where the recovery drives."""
    if after <= 0:
        return
    for j in range(rows.shape[0]):
        p = rows[j]
        if road_under_car(obs[j]):
            off[p] = 0
            if back[p] > 0:
                back[p] -= 1
        else:
            off[p] += 1
            if off[p] >= after:
                back[p] = RECOVERY_ON_ROAD_STEPS
        if back[p] == 0:
            continue
        steer = steer_to_road(obs[j])
        if math.isnan(steer):  # no road in sight: the controller's own search
            continue
        braking = after <= off[p] < after + RECOVERY_BRAKE_STEPS
        actions[j, 0] = steer
        actions[j, 1] = 0.0 if braking else RECOVERY_GAS
        actions[j, 2] = RECOVERY_BRAKE if braking else 0.0
