"""engine.env.car_physics.FastCar against gymnasium's Car: the same race, bit for bit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.box2d.car_dynamics import Car

import engine  # noqa: F401  (headless SDL before pygame starts)
from engine.env.car_physics import FastCar, _clip01, _sign
from engine.env.weather import RAIN_ROAD_FRICTION


def race(fast: bool, seed: int, rain: bool, steps: int = 400) -> np.ndarray:
    """Every wheel's and the hull's state after each step of a rough random drive: full-lock
    steering, brakes that lock the wheels (>= 0.9) and that only slow them, skids on grass."""
    env = gym.make("CarRacing-v3")
    env.reset(seed=seed)
    car = env.unwrapped.car
    if rain:
        for tile in env.unwrapped.road:
            tile.road_friction = RAIN_ROAD_FRICTION
    if fast:
        FastCar.adopt(car)
    assert isinstance(car, Car) and (type(car) is FastCar) == fast
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(steps):
        brake = (0.0, 0.3, 0.95)[int(rng.integers(3))] if t % 7 == 0 else 0.0
        gas = rng.uniform(0, 1) if t % 5 else rng.choice([-0.3, -0.0, 1.4])  # gas() clips to [0, 1]
        action = np.array([rng.choice([-1.0, rng.uniform(-1, 1), 1.0]), gas, brake])
        _, reward, terminated, truncated, _ = env.step(action)
        wheels = [(w.omega, w.phase, *w.position, *w.linearVelocity, w.joint.angle) for w in car.wheels]
        rows.append([reward, *car.hull.position, car.hull.angle, *car.hull.linearVelocity, car.fuel_spent,
                     len(car.particles), *np.ravel(wheels)])  # fmt: skip
        if terminated or truncated:
            break
    env.close()
    return np.array(rows)


@pytest.mark.parametrize("seed,rain", [(3, False), (11, False), (5, True)])
def test_fast_car_races_exactly_like_gymnasium(seed, rain):
    stock, fast = race(False, seed, rain), race(True, seed, rain)
    assert stock.shape == fast.shape and len(stock) > 100
    assert stock[:, 7].max() > 0  # the drive skidded (particles were made)
    assert np.array_equal(stock, fast)


def test_clip_is_numpys():
    for x in (-0.0, 0.0, -1.0, 0.5, 1.0, 1.5, np.inf, -np.inf, 1e-320, -1e-320, np.float64(-0.0)):
        assert _clip01(x) == np.clip(x, 0, 1) and str(float(_clip01(x))) == str(float(np.clip(x, 0, 1)))
    assert np.isnan(_clip01(float("nan")))


def test_sign_is_numpys():
    for x in (2.5, -0.1, 0.0, -0.0, 1e-300, -np.inf):
        assert _sign(x) == np.sign(x) and str(_sign(x)) == str(float(np.sign(x)))
    assert np.isnan(_sign(float("nan")))
