"""The `exact` renderer against gymnasium's own drawing of the very same env state.

Each check renders one CarRacing state twice: with `ExactRenderer` (which also hands back
the flipped 1000x800 window it shrank) and with gymnasium's `CarRacing._render`, whose
`env.surf` is that window. Both the window and the 96x96 observation must be equal bit
for bit, so a difference is caught where it is made, before smoothscale can hide it.
The drives here (seeds, steering) were written for these tests and not tuned on the
renderer: track following with wandering, off-track excursions and their recovery,
the whole track seen from above (the camera zoomed out: hundreds of tiles and every
hairpin visible), and dashboard values beyond their usual range.
"""

from __future__ import annotations

import math

import numpy as np
import pygame
import pytest
from gymnasium.envs.box2d.car_racing import STATE_H, STATE_W, WINDOW_H, WINDOW_W, CarRacing

from engine.env import raster_exact as rx
from engine.env import render_exact
from engine.env.racing_env import make_env
from engine.env.render_exact import ExactRenderer

DRIVE_SEEDS = (13, 29)  # tracks of the untuned drives
DRIVE_STEPS = 260  # steps per drive
ZOOMS_FROM_ABOVE = (0.0, 0.05, 0.2, 0.5)  # env.t values: the start's zoom-out, where the track is seen whole


def stock_render(env) -> tuple[np.ndarray, np.ndarray]:
    """gymnasium's drawing of env's current state: (window (H, W) uint32, observation (96, 96, 3) uint8)."""
    obs = CarRacing._render(env.unwrapped, "state_pixels")
    return pygame.surfarray.array2d(env.unwrapped.surf).T.astype(np.uint32), obs


def assert_same_as_stock(env, renderer: ExactRenderer, label: str) -> None:
    window = np.zeros((WINDOW_H, WINDOW_W), np.uint32)
    obs = renderer.render(env.unwrapped, window)
    ref_window, ref_obs = stock_render(env)
    diff = window != ref_window
    assert not diff.any(), f"{label}: {diff.sum()} window pixels differ, the first at (row, col) {np.argwhere(diff)[0]}"
    assert obs.shape == (STATE_H, STATE_W, 3) and obs.dtype == np.uint8
    assert np.array_equal(obs, ref_obs), f"{label}: the observation differs"


def steer_to_track(env, rng: np.random.Generator, wander: float = 0.0) -> np.ndarray:
    """Steer toward the centre line a few tiles ahead (noisy), or, when wander is -1 or 1,
    off it at full lock and full gas. (3,) action"""
    car = env.unwrapped.car.hull
    x, y = car.position
    track = np.array(env.unwrapped.track)[:, 2:4]
    i = int(np.argmin(((track - (x, y)) ** 2).sum(axis=1)))
    dx, dy = track[(i + 5) % len(track)] - (x, y)
    a = car.angle
    err = math.atan2(math.cos(a) * dx + math.sin(a) * dy, -math.sin(a) * dx + math.cos(a) * dy)
    if wander:
        return np.array([wander, 1.0, 0.0])
    steer = float(np.clip(1.8 * err + rng.normal(0, 0.15), -1, 1))
    speed = math.hypot(*car.linearVelocity)
    if abs(err) < 0.5:
        gas = 0.0 if speed > 22 else rng.uniform(0.3, 1.0)
        brake = 0.7 if rng.random() < 0.03 else 0.0
    else:  # turning round towards the road: slowly
        gas = 0.3 if speed < 6 else 0.0
        brake = 0.5 if speed > 10 else 0.0
    return np.array([steer, gas, brake])


@pytest.mark.parametrize("seed, tier", [(DRIVE_SEEDS[0], "kernel"), (DRIVE_SEEDS[1], "kernel"),
                                        (DRIVE_SEEDS[0], "pygame")])  # fmt: skip
def test_window_and_observation_equal_stock_on_an_untuned_drive(seed, tier):
    env = make_env("exact")
    env.reset(seed=seed)
    renderer = ExactRenderer(tier)
    rng = np.random.default_rng(1000 + seed)
    assert_same_as_stock(env, renderer, f"seed {seed} after reset")
    off_track = []
    for t in range(DRIVE_STEPS):
        wander = (-1.0) ** (t // 90) if t % 90 >= 66 else 0.0  # off the road every 90 steps, left then right
        _, _, terminated, truncated, info = env.step(steer_to_track(env, rng, wander))
        off_track.append(info["off_track"])
        assert_same_as_stock(env, renderer, f"seed {seed} step {t}")
        if terminated or truncated:
            break
    assert any(off_track) and not all(off_track)  # the drive left the road and came back


def test_two_cars_on_the_pygame_tier_share_its_surfaces_and_each_equals_stock():
    """A thread's pygame-tier renderers share one set of window surfaces (a cold duel's two cars need one
    6.4 MB set, not two): cars on different tracks, rendered in turn, each give stock's frames."""
    envs = [make_env("exact") for _ in range(2)]
    renderers = [ExactRenderer("pygame") for _ in envs]
    rng = np.random.default_rng(7)
    for env, seed in zip(envs, (31, 47)):
        env.reset(seed=seed)
    for t in range(40):
        for k, (env, renderer) in enumerate(zip(envs, renderers)):
            env.step(steer_to_track(env, rng))
            assert_same_as_stock(env, renderer, f"car {k} step {t}")


def test_off_track_and_recovery():
    """Out onto the grass at full lock, far from the road, then back along the track."""
    env = make_env("exact")
    env.reset(seed=41)
    renderer = ExactRenderer("kernel")
    rng = np.random.default_rng(7)
    phases = [np.array([0.0, 1.0, 0.0])] * 30 + [np.array([1.0, 1.0, 0.0])] * 10 + [np.array([0.0, 0.6, 0.0])] * 25
    off = []
    for t in range(240):
        action = phases[t] if t < len(phases) else steer_to_track(env, rng)
        _, _, terminated, truncated, info = env.step(action)
        off.append(info["off_track"])
        assert_same_as_stock(env, renderer, f"step {t}")
        if terminated or truncated:
            break
    first_off = off.index(True)
    assert not all(off[first_off:])  # it got back onto the road


def test_the_track_seen_from_above():
    """The camera zoomed out as at the start of an episode, at several points of a drive:
    hundreds of tiles, kerbs and grass patches on screen, hairpins included."""
    env = make_env("exact")
    env.reset(seed=5)
    renderer = ExactRenderer("kernel")
    rng = np.random.default_rng(5)
    base = env.unwrapped
    seen = 0
    for t in range(120):
        env.step(steer_to_track(env, rng))
        if t % 30 == 29:
            saved = base.t
            try:
                for zoom_t in ZOOMS_FROM_ABOVE:
                    base.t = zoom_t
                    assert_same_as_stock(env, renderer, f"step {t}, t = {zoom_t}")
                    seen += 1
            finally:
                base.t = saved
    assert seen == 4 * len(ZOOMS_FROM_ABOVE)


def test_dashboard_beyond_its_usual_range():
    """Bars taller than the dashboard (into the picture), bars past the window's edges, a
    negative score: the same pixels as stock."""
    env = make_env("exact")
    env.reset(seed=9)
    renderer = ExactRenderer("kernel")
    for _ in range(20):
        env.step(np.array([0.3, 1.0, 0.0]))
    base = env.unwrapped
    car = base.car
    saved = ([w.omega for w in car.wheels], car.hull.angularVelocity, car.hull.linearVelocity, base.reward)
    try:
        for omega, spin, velocity, reward in (
            (900.0, 60.0, (150.0, 200.0), -37.0),
            (-900.0, -60.0, (-3.0, 1.0), -0.4),
            (1e-5, 1e-5, (0.0, 0.0), 1234.6),
        ):
            for w in car.wheels:
                w.omega = omega
            car.hull.angularVelocity = spin
            car.hull.linearVelocity = velocity
            base.reward = reward
            assert_same_as_stock(env, renderer, f"omega {omega}, spin {spin}, reward {reward}")
    finally:
        for w, omega in zip(car.wheels, saved[0]):
            w.omega = omega
        car.hull.angularVelocity, car.hull.linearVelocity, base.reward = saved[1], saved[2], saved[3]


class _Compiling:
    """A stand-in for the background compile: running until `done`."""

    def __init__(self) -> None:
        self.done = False

    def poll(self):
        return 0 if self.done else None


def test_auto_tier_draws_with_pygame_until_the_kernel_is_built(monkeypatch):
    """While the background compile runs, frames come from the pygame tier; the frame after
    it ends, from the kernel; stock's bytes throughout."""
    compiling = _Compiling()
    monkeypatch.setitem(render_exact._build, "ready", False)
    monkeypatch.setitem(render_exact._build, "proc", compiling)
    env = make_env("exact")
    env.reset(seed=21)
    renderer = ExactRenderer()
    for t in range(6):
        if t == 3:
            compiling.done = True
        env.step(np.array([0.2, 1.0, 0.0]))
        assert_same_as_stock(env, renderer, f"step {t}")
        assert renderer._pygame is not None  # the pygame tier drew the first frames
        assert (renderer._car is not None) == (t >= 3)  # the kernel (which loads the car) from step 3 on


def test_the_background_compile_runs():
    """`python -m engine.env.render_exact` (what a process without the cached kernel starts)
    compiles or loads the kernel and exits cleanly; afterwards it is cached for this CPU."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "engine.env.render_exact"], capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert render_exact.kernel_cached()


def test_shrink_tables_match_the_sse2_filter_on_random_rows():
    """The x shrink, with and without the one-colour shortcut, against a direct transcription
    of filter_shrink_X_SSE2 (14-bit weights, 16-bit lanes) on random and on flat rows."""
    recip, xb, xw, xr = rx.shrink_plan(WINDOW_W, STATE_W)
    utab = rx.uniform_table(recip, xb, xw, xr)
    xtab = np.stack([xb, xw, xr])
    rng = np.random.default_rng(0)
    space = rx.SSE2_ONE * WINDOW_W // STATE_W

    def reference(row: np.ndarray) -> np.ndarray:
        chans = np.stack([(row >> 16) & 255, (row >> 8) & 255, row & 255], axis=1).astype(np.int64)
        out, acc, counter = [], np.zeros(3, np.int64), space
        for x in range(WINDOW_W):
            if counter > rx.SSE2_ONE:
                acc += chans[x]
                counter -= rx.SSE2_ONE
            else:
                frac = rx.SSE2_ONE - counter
                out.append(np.minimum(((acc + ((4 * chans[x] * counter) >> 16)) * recip) >> 16, 255))
                acc = (4 * chans[x] * frac) >> 16
                counter = space - frac
        return np.concatenate(out).astype(np.uint8)

    for row in (rng.integers(0, 1 << 24, WINDOW_W).astype(np.uint32), np.full(WINDOW_W, 0x66E666, np.uint32)):
        for dirty in (np.ones(STATE_W, np.uint8), np.zeros(STATE_W, np.uint8)):
            if not dirty.any() and len(np.unique(row)) > 1:
                continue  # the shortcut is only taken for one-colour segments
            got = np.zeros((1, STATE_W * 3), np.uint8)
            rx._shrink_band(row[None], dirty[None], got, 0, 1, xtab, recip, utab)
            np.testing.assert_array_equal(got[0], reference(row))
