"""The strategy knobs' formulas (engine/policy/strategy.py) against their documented effects."""

from __future__ import annotations

import numpy as np
import pytest

from engine.policy.knobs import Knobs, load_bounds
from engine.policy.strategy import apply_knobs

BOUNDS = load_bounds()
INVARIANTS = np.array([BOUNDS.invariants[k] for k in ("min_throttle", "emergency_brake", "emergency_hold_steps")],
                      dtype=np.float64)  # fmt: skip


def knob_row(**changes) -> np.ndarray:
    k = Knobs(BOUNDS)
    k.update(changes)
    return k.as_array()


def run(policy, knobs, risk=None, slip=None, wet=None, steps=None):
    """Apply the knobs to a (T, 3) policy sequence for one player; returns (T, 3) actions, (T, 4) weights."""
    t = len(policy)
    risk = np.zeros(t) if risk is None else risk
    slip = np.zeros(t) if slip is None else slip
    wet = np.zeros(t) if wet is None else wet
    prev = np.zeros((1, 3))
    hold = np.zeros(1, np.int64)
    out, w = np.zeros((1, 3)), np.zeros((1, 4))
    actions, weights = [], []
    for i in range(t):
        apply_knobs(policy[i : i + 1], prev, risk[i : i + 1], slip[i : i + 1], wet[i : i + 1], knobs[None],
                    INVARIANTS, hold, out, w)  # fmt: skip
        prev = out.copy()
        actions.append(out[0].copy())
        weights.append(w[0].copy())
    return np.array(actions), np.array(weights)


def random_policy(t=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-1, 1, t), rng.uniform(0, 1, t), rng.uniform(0, 1, t) * (rng.random(t) < 0.2)], 1)


def test_defaults_are_neutral_apart_from_the_invariants():
    policy = random_policy()
    actions, _ = run(policy, knob_row(), risk=np.random.default_rng(1).random(200),
                     slip=np.random.default_rng(2).normal(0, 0.5, 200), wet=np.ones(200))  # fmt: skip
    expected = policy.copy()
    expected[:, 1] = np.maximum(expected[:, 1], BOUNDS.invariants["min_throttle"])
    assert np.array_equal(actions, expected)


def test_smoothing_lowers_jitter():
    policy = random_policy()
    rough, _ = run(policy, knob_row())
    smooth, _ = run(policy, knob_row(alpha_action_smoothing=0.8))
    assert np.abs(np.diff(smooth[:, 0])).mean() < 0.5 * np.abs(np.diff(rough[:, 0])).mean()


def test_risk_aversion_cuts_throttle_with_risk():
    policy = np.tile([0.0, 0.9, 0.0], (50, 1))
    risk = np.full(50, 0.6)
    calm, _ = run(policy, knob_row(risk_aversion=0.0), risk=risk)
    wary, _ = run(policy, knob_row(risk_aversion=1.0), risk=risk)
    assert calm[:, 1].mean() == pytest.approx(0.9) and wary[:, 1].mean() == pytest.approx(0.9 * 0.4)


def test_emergency_brake_fires_holds_and_releases():
    policy = np.tile([0.0, 0.8, 0.0], (100, 1))
    risk = np.full(100, 0.9)
    actions, _ = run(policy, knob_row(emergency_brake_threshold=0.5), risk=risk)
    hold = int(BOUNDS.invariants["emergency_hold_steps"])
    assert (actions[:hold, 1] == 0).all() and (actions[:hold, 2] == BOUNDS.invariants["emergency_brake"]).all()
    assert (actions[hold : 2 * hold, 1] >= BOUNDS.invariants["min_throttle"]).all()  # cooldown: it moves again
    assert (actions[2 * hold, 1] == 0)  # risk still high after the cooldown: fires again
    off, _ = run(policy, knob_row(), risk=np.full(100, 0.99))  # threshold 1 = off
    assert (off[:, 1] == 0.8).all()


@pytest.mark.parametrize("index, knob, sensed", [
    (1, "gating_bias.straight", {}),
    (2, "gating_bias.drift", {"slip": np.full(20, 0.25)}),
    (3, "gating_bias.rain", {"wet": np.ones(20)}),
])  # fmt: skip
def test_each_bias_moves_its_regime_weight_and_style(index, knob, sensed):
    policy = np.tile([0.1, 0.5, 0.0], (20, 1))
    _, w0 = run(policy, knob_row(), **sensed)
    a_up, w_up = run(policy, knob_row(**{knob: 1.5}), **sensed)
    _, w_down = run(policy, knob_row(**{knob: -1.5}), **sensed)
    assert w_up[:, index].mean() > w0[:, index].mean() > w_down[:, index].mean()
    base, _ = run(policy, knob_row(), **sensed)
    if index == 1:
        assert a_up[:, 1].mean() > base[:, 1].mean()  # straight: more throttle
    elif index == 2:
        assert a_up[:, 0].mean() < base[:, 0].mean() and a_up[:, 1].mean() < base[:, 1].mean()  # counter-steer, lift
    else:
        assert abs(a_up[:, 0]).mean() < abs(base[:, 0]).mean() and a_up[:, 1].mean() < base[:, 1].mean()


def test_invariants_hold_under_random_knobs():
    rng = np.random.default_rng(7)
    specs = list(BOUNDS.knobs.values())
    for _ in range(50):
        row = np.array([rng.uniform(s.min, s.max) if s.type is float else rng.integers(s.min, s.max + 1)
                        for s in specs])  # fmt: skip
        policy = np.stack([rng.uniform(-1.5, 1.5, 80), rng.uniform(-0.5, 1.5, 80), rng.uniform(-0.5, 1.5, 80)], 1)
        actions, weights = run(policy, row, risk=rng.random(80), slip=rng.normal(0, 0.4, 80),
                               wet=(rng.random(80) < 0.5).astype(float))  # fmt: skip
        assert (np.abs(actions[:, 0]) <= 1).all() and ((actions[:, 2] >= 0) & (actions[:, 2] <= 1)).all()
        braking = actions[:, 1] == 0
        assert (actions[~braking, 1] >= BOUNDS.invariants["min_throttle"]).all() and (actions[:, 1] <= 1).all()
        assert (actions[braking, 2] == BOUNDS.invariants["emergency_brake"]).all()
        assert np.allclose(weights.sum(axis=1), 1.0)
