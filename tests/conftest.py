"""Shared helpers: a varied drive and a recorder of what each step produced."""

from __future__ import annotations

import numpy as np
import pytest


def varied_actions(n: int, seed: int) -> np.ndarray:
    """(n, 3) float64 actions that exercise the renderer and the physics: a run-up,
    steering sweeps, gas and brake pulses, and hard-lock excursions off the track."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    steer = 0.8 * np.sin(t / (12.0 + 6.0 * rng.random()))
    gas = ((t % 30) < 20).astype(float)
    brake = np.where((t % 50) >= 46, 0.8, 0.0)
    steer[:40] = 0.0
    gas[:40] = 1.0
    for start in rng.integers(60, max(n - 40, 61), size=2):  # off-track excursions
        steer[start : start + 35] = rng.choice([-1.0, 1.0])
        gas[start : start + 35] = 1.0
        brake[start : start + 35] = 0.0
    return np.stack([steer, gas, brake], axis=1)


def drive(env, seed: int, actions: np.ndarray) -> dict:
    """Reset on `seed`, play `actions` until the episode ends; record everything."""
    obs, info = env.reset(seed=seed)
    rec = {"obs": [obs], "reward": [], "terminated": [], "truncated": [], "pos": [], "info": [info]}
    for a in actions:
        obs, r, te, tr, info = env.step(a)
        car = env.unwrapped.car
        rec["obs"].append(obs)
        rec["reward"].append(r)
        rec["terminated"].append(te)
        rec["truncated"].append(tr)
        rec["pos"].append((*car.hull.position, car.hull.angle, *car.hull.linearVelocity))
        rec["info"].append(info)
        if te or tr:
            break
    return rec


@pytest.fixture(scope="session")
def stock_drives():
    """Stock gymnasium CarRacing-v3 drives, computed once: {seed: (actions, record)}."""
    import gymnasium as gym

    import engine  # noqa: F401  (sets the headless SDL driver before pygame starts)

    out = {}
    for seed in (0, 7, 42):
        actions = varied_actions(320, seed)
        env = gym.make("CarRacing-v3")
        out[seed] = (actions, drive(env, seed, actions))
        env.close()
    return out


# The emulated-CPU runs (tests/emulated_cpu.py): a module lists them as EMULATED_BACKGROUND
# {test name: (code, cpu)}; those of the selected tests start when collection ends and run
# beside the rest of the suite, and their tests run last, to collect the results.


def _background_runs(item) -> dict:
    return getattr(getattr(item, "module", None), "EMULATED_BACKGROUND", None) or {}


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.originalname in _background_runs(item))  # stable: the rest keep their order


def pytest_collection_finish(session):
    import emulated_cpu

    if emulated_cpu.AVAILABLE and not session.config.option.collectonly:
        for item in session.items:
            if item.originalname in _background_runs(item):
                emulated_cpu.start_background(item.originalname, *_background_runs(item)[item.originalname])


def pytest_sessionfinish(session, exitstatus):
    import emulated_cpu

    emulated_cpu.stop_background()
