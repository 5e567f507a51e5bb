"""Tests of the `fast` renderer against gymnasium's own drawing, on real envs.

Stock frames come either from a parallel `make_env("stock")` driven with the same
seed and actions (physics is identical, only drawing differs), or from calling
gymnasium's `CarRacing._render` on the very env the fast renderer just drew.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.envs.box2d.car_racing import CarRacing

from engine.env.racing_env import make_env
from engine.env.render_fast import WORLD_ROWS, FastRenderer

DRIVE_SEEDS = (0, 3)  # seed 0: random-walk driving (mostly on grass); seed 3: follows the track
DRIVE_STEPS = 300  # per seed; the 1000-step figure is measured outside the tests
MAX_MEAN_ABS_DIFF = 2.0  # grey levels (0-255), mean over a drive, all pixels and channels
MAX_FRAME_ABS_DIFF = 4.0  # grey levels, the worst single frame of a drive
MAX_DASH_ABS_DIFF = 1.5  # grey levels, the dashboard rows of any frame
SCORE_COLS = slice(0, 12)  # output columns of the score text (window x 0..125)


def drive_actions(n: int, seed: int) -> list[np.ndarray]:
    """Varied driving: random-walk steering, gas pulses, occasional braking, so the car
    also leaves the track. (n, 3) as a list of actions."""
    rng = np.random.default_rng(seed)
    steer = 0.0
    actions = []
    for t in range(n):
        steer = float(np.clip(steer + rng.normal(0.0, 0.25), -1.0, 1.0))
        gas = 1.0 if (t // 25) % 3 != 2 else 0.0
        brake = 0.8 if rng.random() < 0.05 else 0.0
        actions.append(np.array([steer, gas, brake]))
    return actions


def follow_track(env, t: int, rng: np.random.Generator) -> np.ndarray:
    """A noisy track-following action for `env`'s state at step t, so the road, kerbs and
    touched tiles fill the frames; every 250 steps it wanders for 40. (3,) action"""
    hull = env.unwrapped.car.hull
    x, y = hull.position
    track = np.array(env.unwrapped.track)[:, 2:4]  # (N, 2) centre line, world units
    i = int(np.argmin(((track - (x, y)) ** 2).sum(axis=1)))
    dx, dy = track[(i + 4) % len(track)] - (x, y)
    a = hull.angle  # the car's forward is its local +y
    err = math.atan2(math.cos(a) * dx + math.sin(a) * dy, -math.sin(a) * dx + math.cos(a) * dy)
    wander = t % 250 >= 210
    steer = rng.uniform(-1.0, 1.0) if wander else 2.0 * err + rng.normal(0.0, 0.1)
    speed = math.hypot(*hull.linearVelocity)
    gas = 0.6 if speed < 18 and (t // 20) % 4 != 3 else 0.0
    brake = 0.6 if rng.random() < 0.04 else 0.0
    return np.array([float(np.clip(steer, -1.0, 1.0)), gas, brake])


def stock_frame(env) -> np.ndarray:
    """gymnasium's own observation of `env`'s current state. (96, 96, 3) uint8"""
    return CarRacing._render(env.unwrapped, "state_pixels")


@pytest.fixture(scope="module")
def drives() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """seed -> (stock frames, fast frames), each (T, 96, 96, 3) uint8, same seed and actions."""
    out = {}
    for seed in DRIVE_SEEDS:
        stock, fast = make_env("stock"), make_env("fast")
        frames_s, frames_f = [stock.reset(seed=seed)[0]], [fast.reset(seed=seed)[0]]
        rng = np.random.default_rng(seed)
        walk = drive_actions(DRIVE_STEPS, seed)
        for t in range(DRIVE_STEPS):
            action = walk[t] if seed == DRIVE_SEEDS[0] else follow_track(stock, t, rng)
            obs_s, rew_s, term_s, trunc_s, _ = stock.step(action)
            obs_f, rew_f, term_f, trunc_f, _ = fast.step(action)
            assert rew_s == rew_f and term_s == term_f  # renderers only draw
            frames_s.append(obs_s)
            frames_f.append(obs_f)
            if term_s or trunc_s:
                break
        out[seed] = (np.array(frames_s), np.array(frames_f))
    return out


def test_output_format():
    env = make_env("fast")
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        obs2, *_ = env.step(np.array([0.1, 0.5, 0.0]))
    for frame in (obs, obs2):
        assert frame.shape == (96, 96, 3)
        assert frame.dtype == np.uint8
        assert frame.flags["C_CONTIGUOUS"]
    renderer = FastRenderer()
    a, b = renderer.render(env.unwrapped), renderer.render(env.unwrapped)
    assert a is not b and not np.shares_memory(a, b)  # callers may keep old observations
    np.testing.assert_array_equal(a, b)


def test_close_to_stock_over_drive(drives):
    for seed, (stock, fast) in drives.items():
        diff = np.abs(stock.astype(np.int16) - fast.astype(np.int16)).mean(axis=(1, 2, 3))  # (T,)
        assert diff.mean() <= MAX_MEAN_ABS_DIFF, f"seed {seed}: mean {diff.mean():.3f}"
        assert diff.max() <= MAX_FRAME_ABS_DIFF, f"seed {seed}: frame {diff.argmax()} {diff.max():.3f}"


def test_drive_leaves_the_track():
    # The error bound above must also cover grass and kerbs, not only the road.
    env = make_env("fast")
    env.reset(seed=DRIVE_SEEDS[0])
    off = [env.step(a)[4]["off_track"] for a in drive_actions(DRIVE_STEPS, DRIVE_SEEDS[0])]
    assert any(off)


def test_dashboard_matches_stock(drives):
    for seed, (stock, fast) in drives.items():
        dash_s = stock[:, WORLD_ROWS:].astype(np.int16)
        dash_f = fast[:, WORLD_ROWS:].astype(np.int16)
        per_frame = np.abs(dash_s - dash_f).mean(axis=(1, 2, 3))
        assert per_frame.max() <= MAX_DASH_ABS_DIFF, f"seed {seed}: frame {per_frame.argmax()}"
        # The bars are really drawn: the dashboard is not plain black in either.
        assert dash_f[:, :, SCORE_COLS.stop :].max() > 100
        assert dash_f[:, :, SCORE_COLS].max() > 100  # the score digits


def test_score_digits_follow_reward():
    env = make_env("fast")
    env.reset(seed=2)
    for _ in range(10):
        env.step(np.array([0.0, 1.0, 0.0]))
    base = env.unwrapped
    renderer = FastRenderer()
    before = renderer.render(base)
    reward = base.reward
    try:
        base.reward = 876.0
        after = renderer.render(base)
        stock_after = stock_frame(env)
    finally:
        base.reward = reward
    digits = (slice(WORLD_ROWS, 96), SCORE_COLS)
    assert not np.array_equal(before[digits], after[digits])
    rest = np.ones(before.shape[:2], dtype=bool)
    rest[digits] = False
    np.testing.assert_array_equal(before[rest], after[rest])  # only the digits change
    err = np.abs(after[digits].astype(np.int16) - stock_after[digits].astype(np.int16)).mean()
    assert err <= MAX_DASH_ABS_DIFF * 2


def test_touched_tiles_are_redrawn():
    # Tiles change colour when first touched; the renderer must read the live colours.
    env = make_env("fast")
    env.reset(seed=5)
    base = env.unwrapped
    pristine = base.road_colors.copy()  # (P, 3) before any tile is touched
    for _ in range(60):
        env.step(np.array([0.0, 0.6, 0.0]))
    assert base.tile_visited_count > 3
    assert not np.array_equal(base.road_colors, pristine)

    renderer = FastRenderer()
    live = renderer.render(base)
    stock = stock_frame(env)
    touched = base.road_colors
    try:
        base.road_colors = pristine
        stale = renderer.render(base)
    finally:
        base.road_colors = touched
    assert not np.array_equal(live, stale)
    err_live = np.abs(live.astype(np.int16) - stock.astype(np.int16)).mean()
    err_stale = np.abs(stale.astype(np.int16) - stock.astype(np.int16)).mean()
    assert err_live < err_stale


def test_deterministic():
    actions = drive_actions(120, 7)
    frames = []
    for _ in range(2):
        env = make_env("fast")
        obs, _ = env.reset(seed=7)
        run = [obs]
        for action in actions:
            run.append(env.step(action)[0])
        frames.append(np.array(run))
    assert frames[0].tobytes() == frames[1].tobytes()
