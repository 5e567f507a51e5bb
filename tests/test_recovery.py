"""The recovery (engine.policy.recovery): it reads road and grass from a frame, steers toward the
road ahead, and brings a real car that drives circles on the grass back to the road in a real
duel, which it leaves alone when the invariant is 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.env.racing_env import make_env
from engine.policy.knobs import KnobError, load_bounds
from engine.policy.recovery import CAR_COL, CAR_ROW, RECOVERY_GAS, recover, road_under_car, steer_to_road
from engine.race.duel import Duel

GRASS = (102, 204, 102)
ROAD = (105, 105, 105)  # a light band: road not yet driven
DRIVEN = (100, 100, 100)  # the plain grey CarRacing paints a tile once driven


def grass_frame() -> np.ndarray:
    frame = np.zeros((96, 96, 3), np.uint8)
    frame[:] = GRASS
    frame[84:] = 0  # the dashboard bar
    return frame


def test_road_under_the_car_is_read_from_the_frame():
    frame = grass_frame()
    assert not road_under_car(frame)
    assert np.isnan(steer_to_road(frame))  # no road in sight
    frame[CAR_ROW - 4:CAR_ROW + 4, CAR_COL - 3:CAR_COL + 3] = ROAD
    assert road_under_car(frame)


@pytest.mark.parametrize("cols, sign", [((70, 80), 1.0), ((10, 20), -1.0)])
def test_it_steers_toward_the_road_ahead(cols, sign):
    frame = grass_frame()
    frame[20:40, cols[0]:cols[1]] = ROAD  # ahead, to one side
    steer = steer_to_road(frame)
    assert np.sign(steer) == sign and 0.2 < abs(steer) <= 1.0


def test_road_behind_costs_more_than_road_as_near_ahead():
    frame = grass_frame()
    frame[CAR_ROW + 8:CAR_ROW + 12, CAR_COL + 10:CAR_COL + 14] = ROAD  # just behind, to the right
    frame[CAR_ROW - 30:CAR_ROW - 26, CAR_COL - 14:CAR_COL - 10] = ROAD  # further, but ahead, to the left
    assert steer_to_road(frame) < 0


def test_road_not_yet_driven_comes_before_nearer_road_driven_already():
    frame = grass_frame()
    frame[CAR_ROW - 20:CAR_ROW - 10, CAR_COL - 14:CAR_COL - 8] = DRIVEN  # near, to the left
    assert steer_to_road(frame) < 0  # only driven road in sight: toward it
    frame[CAR_ROW - 40:CAR_ROW - 30, CAR_COL + 20:CAR_COL + 26] = ROAD  # further, to the right
    assert steer_to_road(frame) > 0


def test_the_kernel_takes_over_after_the_given_steps_and_hands_back_on_the_road():
    off_frame = grass_frame()
    off_frame[10:30, 60:90] = ROAD
    on_frame = grass_frame()
    on_frame[40:84, 30:66] = ROAD
    off, back = np.zeros(2, np.int64), np.zeros(2, np.int64)
    rows = np.array([1], np.int64)
    policy = np.array([[-1.0, 1.0, 0.0]])
    taken = []
    for step in range(40):
        frame = off_frame if step < 20 else on_frame
        actions = policy.copy()
        recover(frame[None], rows, 5, off, back, actions)
        taken.append(not np.array_equal(actions, policy))
        if taken[-1] and actions[0, 2] == 0.0 and step < 20:
            assert actions[0, 1] == RECOVERY_GAS and actions[0, 0] > 0  # the road is ahead, to the right
    # from the 5th step off the road; on the road its 20th step is the controller's again
    assert taken[:4] == [False] * 4 and all(taken[4:39]) and not taken[39]
    assert off[0] == back[0] == 0  # player 0 was not in the step
    actions = policy.copy()
    recover(off_frame[None], rows, 0, off, back, actions)  # 0: never
    assert np.array_equal(actions, policy)


def test_a_real_car_circling_on_the_grass_is_brought_back(tmp_path: Path):
    # A controller that steers hard right at half gas whatever it sees: it leaves the road in
    # the first bend and circles on the grass.
    circler = tmp_path / "circler.npz"
    W = np.zeros((3, 32 + 256))
    np.savez(circler, W=W, b=np.array([2.0, 0.0, -1.0]))
    off_steps, returns = {}, {}
    for after in (10, 0):
        with Duel([circler, circler], renderer="fast", precision="fp32") as duel:
            duel.players.invariants[3] = after
            duel.reset(7)
            off, last = [], 0
            for _ in range(400):
                t = duel.step()[0]
                off.append(t.off_track_steps > last)
                last = t.off_track_steps
            off = np.array(off)
            off_steps[after], returns[after] = int(off.sum()), int((off[:-1] & ~off[1:]).sum())
    # Measured: 360 steps off and never back without it; 230 and back on the road 3 times with it
    # (the circler drives off again each time it has the wheel back).
    assert off_steps[0] > 300 and returns[0] == 0
    assert returns[10] >= 2 and off_steps[10] < off_steps[0] - 60


def test_a_real_frame_on_the_road_reads_as_road():
    env = make_env(renderer="fast")
    try:
        obs, _ = env.reset(seed=3)
        for _ in range(20):
            obs, *_ = env.step(np.array([0.0, 0.3, 0.0]))
        assert road_under_car(obs)
    finally:
        env.close()


def test_the_invariant_is_checked(tmp_path: Path):
    text = Path(load_bounds.__defaults__[0]).read_text()
    bad = tmp_path / "bounds.yaml"
    bad.write_text(text.replace("recovery_after_steps: 10", "recovery_after_steps: -1"))
    with pytest.raises(KnobError, match="invariants.recovery_after_steps = -1 is outside"):
        load_bounds(bad)
