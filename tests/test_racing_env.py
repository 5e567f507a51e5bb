"""The racing environment: exact frames, identical physics, telemetry, rain, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import drive, varied_actions
from gymnasium.error import InvalidAction

from engine import make_env
from engine.env.weather import RAIN_ROAD_FRICTION, RainOverlay


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_exact_frames_bit_identical_to_stock(stock_drives, seed):
    actions, ref = stock_drives[seed]
    got = drive(make_env("exact"), seed, actions)
    assert len(got["obs"]) == len(ref["obs"]) >= 300
    for k, (a, b) in enumerate(zip(ref["obs"], got["obs"])):
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape == (96, 96, 3)
        assert np.array_equal(a, b), f"seed {seed}: frame {k} differs in {(a != b).any(-1).sum()} pixels"


def test_drive_exercises_off_track_and_tiles(stock_drives):
    """The comparison above is only as good as the drive: make sure it left the road and
    visited tiles (both change what is drawn)."""
    actions, _ = stock_drives[0]
    rec = drive(make_env("exact"), 0, actions)
    off = [i["off_track"] for i in rec["info"][1:]]
    assert any(off) and not all(off)
    assert rec["info"][-1]["tiles_visited"] > 10


@pytest.mark.parametrize("renderer", ["exact", "fast"])
def test_physics_identical_across_renderers(stock_drives, renderer):
    for seed, (actions, ref) in stock_drives.items():
        got = drive(make_env(renderer), seed, actions)
        assert got["reward"] == ref["reward"], f"seed {seed}: rewards differ"
        assert got["pos"] == ref["pos"], f"seed {seed}: car states differ"
        assert got["terminated"] == ref["terminated"] and got["truncated"] == ref["truncated"]


def test_tile_colour_changes_are_drawn():
    """Touching a tile recolours it (the contact listener writes `tile.color[:]`); the
    renderers read those colours live, so exact stays equal to stock across the change."""
    env = make_env("exact")
    stock = gym.make("CarRacing-v3")
    env.reset(seed=3)
    stock.reset(seed=3)
    car_env = env.unwrapped
    before = car_env.road_colors.copy()
    changed_frames = 0
    for _ in range(120):
        a = np.array([0.0, 1.0, 0.0])
        colors = car_env.road_colors.copy()
        obs, *_ = env.step(a)
        ref, *_ = stock.step(a)
        if not np.array_equal(colors, car_env.road_colors):
            changed_frames += 1
            assert np.array_equal(obs, ref)
    assert changed_frames > 0
    recoloured = np.flatnonzero((before != car_env.road_colors).any(axis=1))
    assert recoloured.size > 0
    # the tiles and the arrays share memory: what the listener wrote is what gets drawn
    tiles = [k for k in range(len(car_env.road_is_tile)) if car_env.road_is_tile[k]]
    for tile, k in zip(car_env.road, tiles):
        assert np.shares_memory(tile.color, car_env.road_colors[k])
    assert np.array_equal(car_env.road_colors[recoloured], np.tile(car_env.road_color, (recoloured.size, 1)))


def test_exact_matches_stock_with_domain_randomize():
    actions = varied_actions(60, 1)
    ref = drive(gym.make("CarRacing-v3", domain_randomize=True), 5, actions)
    got = drive(make_env("exact", domain_randomize=True), 5, actions)
    assert all(np.array_equal(a, b) for a, b in zip(ref["obs"], got["obs"]))


def test_drop_in_for_gymnasium_make():
    ref = gym.make("CarRacing-v3")
    for renderer in ("stock", "exact", "fast"):
        env = make_env(renderer)
        assert env.observation_space == ref.observation_space
        assert env.action_space == ref.action_space
        assert env.spec is None or env.spec.max_episode_steps in (None, 1000)
        obs, info = env.reset(seed=0)
        assert obs.shape == (96, 96, 3) and obs.dtype == np.uint8
    # the 1000-step time limit truncates, as CarRacing-v3's registration does
    env = make_env("fast")
    env.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(np.array([0.0, 0.0, 1.0]))
        steps += 1
    assert truncated and not terminated and steps == 1000


def test_telemetry_in_info():
    env = make_env("fast")
    _, info = env.reset(seed=0)
    for key in ("speed", "slip", "off_track", "tiles_visited", "track_tiles", "weather"):
        assert key in info
    speeds = []
    for _ in range(60):
        _, _, _, _, info = env.step(np.array([0.0, 1.0, 0.0]))
        speeds.append(info["speed"])
    assert speeds[-1] > speeds[0] > 0.0  # accelerating along the straight
    assert info["tiles_visited"] > 0 and info["track_tiles"] == len(env.unwrapped.track)
    assert info["off_track"] is False and info["lap_finished"] is False and info["weather"] == "clear"


def test_slip_angle_sign():
    env = make_env("fast")
    _, info = env.reset(seed=0)
    assert info["slip"] == 0.0  # standing still
    for _ in range(60):
        _, _, _, _, info = env.step(np.array([0.0, 1.0, 0.0]))
    assert abs(info["slip"]) < 0.01  # straight ahead: heading and velocity agree
    for _ in range(25):  # full left lock at speed: the nose swings left, the car slides to its right
        _, _, _, _, info = env.step(np.array([-1.0, 1.0, 0.0]))
    assert info["slip"] < -0.3


def test_rain_is_deterministic_per_seed_and_slippery():
    actions = varied_actions(150, 3)
    a = drive(make_env("fast", weather="rain"), 11, actions)
    b = drive(make_env("fast", weather="rain"), 11, actions)
    assert all(np.array_equal(x, y) for x, y in zip(a["obs"], b["obs"]))
    assert a["reward"] == b["reward"]
    env = make_env("fast", weather="rain")
    env.reset(seed=11)
    assert all(t.road_friction == RAIN_ROAD_FRICTION for t in env.unwrapped.road)
    clear = drive(make_env("fast"), 11, actions)
    assert a["pos"] != clear["pos"]  # less grip changes the drive
    c = drive(make_env("fast", weather="rain"), 12, actions)
    assert not np.array_equal(a["obs"][1][:84], c["obs"][1][:84])


def test_rain_overlay_draws_seeded_streaks():
    frame = np.full((96, 96, 3), 100, dtype=np.uint8)
    r1, r2 = RainOverlay(5), RainOverlay(5)
    out = r1.apply(frame, 3)
    assert np.array_equal(out, r2.apply(frame, 3))
    assert not np.array_equal(out, r1.apply(frame, 4))  # the drops fall
    changed = (out != frame).any(axis=-1)
    assert 0 < changed.sum() < 0.1 * 96 * 96
    assert not changed[84:].any()  # never over the dashboard
    assert np.array_equal(frame, np.full((96, 96, 3), 100, dtype=np.uint8))  # input untouched


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"renderer": "pretty"}, "renderer='pretty'"),
        ({"weather": "snow"}, "weather='snow'"),
        ({"lap_complete": 0.5}, "lap_complete"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_env(**kwargs)


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(2), r"shape \(3,\)"),
        (np.zeros((1, 3)), r"shape \(3,\)"),
        (np.array(["a", "b", "c"]), "numeric"),
        (np.array([0.0, np.nan, 0.0]), "finite"),
        (np.array([np.inf, 0.0, 0.0]), "finite"),
        ([[0, 1], [2]], "3 numbers"),
    ],
)
def test_bad_actions_are_refused_clearly(action, message):
    env = make_env("fast")
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=message):
        env.step(action)
    env.step(np.array([0.0, 0.5, 0.0]))  # and the env is still usable


def test_bad_discrete_action():
    env = make_env("fast", continuous=False)
    env.reset(seed=0)
    env.step(3)
    for bad in (5, -1, 1.5, np.array([1, 2])):
        with pytest.raises(InvalidAction, match="0..4"):
            env.step(bad)
