"""The pace (engine.policy.pace): it reads the speed off the dashboard of real frames of both
renderers, the straight ahead from the road's shape, gives full gas on a straight and brakes
before a bend; a controller file carries it (its wet-track set its own), and a real car with it
drives faster than without."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.env.racing_env import make_env
from engine.policy.controller import ControllerError, load_controller
from engine.policy.frame import CAR_COL, dashboard_speed
from engine.policy.pace import BEND_PX, LOOK_FROM_ROW, PACE_BRAKE, STRAIGHT_PX, pace, straight_ahead
from engine.race.duel import Duel

GRASS = (102, 204, 102)
ROAD = (105, 105, 105)  # a light band: road not yet driven
DRIVEN = (100, 100, 100)  # the plain grey of road driven already
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def grass_frame() -> np.ndarray:
    frame = np.zeros((96, 96, 3), np.uint8)
    frame[:84] = GRASS
    return frame


def straight_road() -> np.ndarray:
    frame = grass_frame()
    frame[:84, CAR_COL - 7 : CAR_COL + 7] = ROAD
    return frame


def bend_at(row: int) -> np.ndarray:
    """Road straight up to `row`, then off to the right (a bend `LOOK_FROM_ROW - row` px ahead)."""
    frame = grass_frame()
    frame[row:84, CAR_COL - 7 : CAR_COL + 7] = ROAD
    for y in range(row):
        shift = 3 * (row - y)  # 3 px to the right per row up: a sharp bend
        lo = min(CAR_COL - 7 + shift, 95)
        frame[y, lo : min(lo + 14, 96)] = ROAD
    return frame


def hairpin_at(row: int) -> np.ndarray:
    """Road straight up to `row`, then across the view from the road's side to the frame's edge:
    a hairpin, its road running across rows [row - 14, row) (the centre of the 29 px window around the car's
    column stays put: only the row's width shows it)."""
    frame = grass_frame()
    frame[row:84, CAR_COL - 7 : CAR_COL + 7] = ROAD
    frame[row - 14 : row, CAR_COL - 7 :] = ROAD
    return frame


def test_the_straight_ahead_is_read_from_the_road_s_shape():
    assert straight_ahead(straight_road()) == (LOOK_FROM_ROW + 1, 14 * 65)  # to the top, not yet driven
    assert straight_ahead(grass_frame())[0] == 0  # no road ahead
    driven = straight_road()
    driven[driven[..., 0] == ROAD[0]] = DRIVEN
    assert straight_ahead(driven) == (LOOK_FROM_ROW + 1, 0)  # road it drove: the car has turned round
    near, far = straight_ahead(bend_at(50))[0], straight_ahead(bend_at(20))[0]
    assert near < BEND_PX <= far < STRAIGHT_PX  # a bend 14 px ahead, one 44 px ahead
    assert abs(near - (LOOK_FROM_ROW - 50)) <= 4 and abs(far - (LOOK_FROM_ROW - 20)) <= 4
    assert straight_ahead(hairpin_at(30))[0] == LOOK_FROM_ROW - 29  # the first row of road across ends it


@pytest.mark.parametrize("renderer", ["exact", "fast"])
def test_the_dashboard_speed_is_the_car_s_speed(renderer):
    env = make_env(renderer=renderer)
    try:
        env.reset(seed=11)
        errors = []
        for step in range(160):
            obs, _, _, _, info = env.step(np.array([0.0, 1.0 if step < 120 else 0.0, 0.0]))
            errors.append(dashboard_speed(obs) - float(info["speed"]))
        speed = float(info["speed"])
    finally:
        env.close()
    assert speed > 30  # it went fast enough to read a long bar
    assert np.abs(errors).max() < 2.0  # the bar is drawn in whole window pixels: 2.5 m/s steps


def test_full_gas_on_a_straight_and_the_brakes_before_a_bend():
    policy = np.array([[0.1, 0.05, 0.0]])
    rows = np.array([0], np.int64)
    bend, straight = np.array([55.0]), np.array([75.0])

    def act(frame, speed):
        frame = frame.copy()
        level = int(round((speed + 3.5) / 0.082))  # the speed bar's summed grey levels at that speed
        for y in range(95, 83, -1):
            frame[y, 12] = min(level, 255)
            level -= int(frame[y, 12, 0])
        actions = policy.copy()
        pace(frame[None], rows, bend, straight, actions)
        return actions[0]

    assert act(straight_road(), 60.0).tolist() == [0.1, 1.0, 0.0]  # straight and slow: full gas
    driven = straight_road()
    driven[driven[..., 0] == ROAD[0]] = DRIVEN
    assert act(driven, 60.0).tolist() == policy[0].tolist()  # but not on road it drove already
    assert act(straight_road(), 80.0).tolist() == policy[0].tolist()  # straight, already fast: as it drives
    assert act(bend_at(50), 65.0).tolist() == [0.1, 0.0, PACE_BRAKE]  # a bend near, fast: brake
    assert act(bend_at(50), 50.0).tolist() == policy[0].tolist()  # a bend near, slow enough
    actions = policy.copy()
    pace(straight_road()[None], rows, np.zeros(1), np.zeros(1), actions)  # no pace: untouched
    assert np.array_equal(actions, policy)


def test_a_controller_file_carries_its_pace(tmp_path: Path):
    W, b = np.zeros((3, 288)), np.zeros(3)
    f = tmp_path / "c.npz"
    np.savez(f, W=W, b=b, W_rain=W, b_rain=b, pace_bend=np.float64(55), pace_straight=np.float64(75),
             rain_pace_bend=np.float64(45))  # fmt: skip
    clear, rain = load_controller(f, 32, 256)[2], load_controller(f, 32, 256, weather="rain")[2]
    assert (clear["pace_bend"], clear["pace_straight"]) == (55, 75)
    assert (rain["pace_bend"], rain["pace_straight"]) == (45, 0.0)  # the wet set's own
    for bad in (-1.0, np.nan, 500.0):
        np.savez(f, W=W, b=b, pace_straight=np.asarray(bad))
        with pytest.raises(ControllerError, match=r"c.npz: pace_straight = .* expected a speed in \[0, 200.0\] m/s"):
            load_controller(f, 32, 256)


def test_a_real_car_with_a_pace_is_faster(tmp_path: Path):
    # The shipped A's weights without any pace, and with one that goes faster on straights.
    with np.load(WEIGHTS / "controllerA.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if "pace" not in k}
    plain, paced = tmp_path / "plain.npz", tmp_path / "paced.npz"
    np.savez(plain, **arrays)
    np.savez(paced, **arrays, pace_bend=np.float64(55), pace_straight=np.float64(75))
    top = {}
    for name, path in (("plain", plain), ("paced", paced)):
        with Duel([path, path], renderer="fast", precision="fp32") as duel:
            duel.reset(900003)
            speeds, braked = [], 0
            for _ in range(300):
                t = duel.step()[0]
                speeds.append(t.speed)
                braked += duel.last_actions[0][2] == PACE_BRAKE
            top[name] = (max(speeds), braked)
    assert top["paced"][0] > top["plain"][0] + 3  # full gas on the straights
    assert top["paced"][1] > 0 and top["plain"][1] == 0  # and the brakes before bends
