"""Strategy knobs applied after the policy, per player, in numba.

Order, per step (all knobs at their defaults leave the policy's action as it is, apart
from the invariants):

1. smoothing: a = alpha * a_prev + (1 - alpha) * a_policy
2. regimes: a gate softmax([0, straight, drift, rain] logits + [0, biases]) over what
   the car senses (steering, slip angle, wet road). Each regime's style is scaled by
   its weight times its bias, so a bias of 0 changes nothing and a negative bias leans
   the style out:
     straight: gas += STRAIGHT_GAS * w * bias
     drift:    steer -= DRIFT_COUNTER * w * bias * sign(slip); gas -= DRIFT_LIFT * w * bias
     rain:     steer *= 1 - RAIN_SOFTEN * w * bias; gas -= RAIN_LIFT * w * bias
3. risk: gas *= 1 - risk_aversion * risk
4. emergency brake: when risk > threshold, gas 0 and brake EBRAKE for at most
   emergency_hold_steps, then a cooldown as long, in which it cannot fire, so the car
   moves again
5. invariants: steer in [-1, 1], brake in [0, 1], gas in [min_throttle, 1] except while
   the emergency brake holds.

After these, a controller set with a pace gets full gas on a straight and the brakes before a
bend that its frame shows (engine.policy.pace), and a car off the road for recovery_after_steps
is steered back from its frame (engine.policy.recovery), whatever the controller and knobs say.
"""

from __future__ import annotations

import numba
import numpy as np

# Knob order in the knob array: configs/bounds.yaml's order.
ALPHA, HORIZON, RISK_AVERSION, EBRAKE_THRESHOLD, BIAS_RAIN, BIAS_DRIFT, BIAS_STRAIGHT = range(7)
REGIMES = ("neutral", "straight", "drift", "rain")

STRAIGHT_GAS = 0.25  # gas added per unit of straight weight x bias
DRIFT_COUNTER = 0.3  # counter-steer per unit of drift weight x bias
DRIFT_LIFT = 0.2  # gas lifted per unit of drift weight x bias
RAIN_SOFTEN = 0.15  # fraction of steering removed per unit of rain weight x bias
RAIN_LIFT = 0.15  # gas lifted per unit of rain weight x bias
DRIFT_SLIP = 0.2  # rad: slip angle where the drift logit crosses 0
DRIFT_SHARPNESS = 10.0  # drift logit per rad of slip beyond DRIFT_SLIP
STRAIGHT_STEER = 0.3  # |steer| where the straight logit crosses 0
STRAIGHT_SHARPNESS = 6.0  # straight logit per unit of steer below STRAIGHT_STEER


@numba.njit(cache=True, inline="always")
def regime_weights(steer: float, slip: float, wet: float, knobs: np.ndarray, out: np.ndarray) -> None:
    """Softmax gate over REGIMES for one player into out (4,).

    Scalars, not a logits array and its .max(): no allocation per player, and numba inlines
    it into apply_knobs (a cold start compiles it once, not twice); the same numbers (the
    neutral logit is 0.0; with a NaN logit every weight is NaN either way)."""
    s = STRAIGHT_SHARPNESS * (STRAIGHT_STEER - abs(steer)) + knobs[BIAS_STRAIGHT]
    d = DRIFT_SHARPNESS * (abs(slip) - DRIFT_SLIP) + knobs[BIAS_DRIFT]
    r = 4.0 * wet - 2.0 + knobs[BIAS_RAIN]
    m = 0.0
    if s > m:
        m = s
    if d > m:
        m = d
    if r > m:
        m = r
    out[0] = np.exp(0.0 - m)
    out[1] = np.exp(s - m)
    out[2] = np.exp(d - m)
    out[3] = np.exp(r - m)
    total = 0.0
    for i in range(4):
        total += out[i]
    for i in range(4):
        out[i] /= total


@numba.njit(cache=True, inline="always")  # inlined into engine.policy.players.decide
def apply_knobs(
    policy: np.ndarray,  # (P, 3) the controller's actions
    prev: np.ndarray,  # (P, 3) last step's final actions
    risk: np.ndarray,  # (P,) predicted risk in [0, 1]
    slip: np.ndarray,  # (P,) rad, angle between heading and velocity
    wet: np.ndarray,  # (P,) 1.0 on a wet track
    knobs: np.ndarray,  # (P, 7) in bounds order
    invariants: np.ndarray,  # (3,) min_throttle, emergency_brake, emergency_hold_steps
    hold: np.ndarray,  # (P,) int64 state: >0 emergency brake steps left, <0 cooldown steps left
    out: np.ndarray,  # (P, 3) final actions, written
    weights: np.ndarray,  # (P, 4) regime weights, written
) -> None:
    min_throttle, ebrake, hold_steps = invariants[0], invariants[1], int(invariants[2])
    for p in range(policy.shape[0]):
        k = knobs[p]
        alpha = k[ALPHA]
        steer = alpha * prev[p, 0] + (1.0 - alpha) * policy[p, 0]
        gas = alpha * prev[p, 1] + (1.0 - alpha) * policy[p, 1]
        brake = alpha * prev[p, 2] + (1.0 - alpha) * policy[p, 2]

        w = weights[p]
        regime_weights(steer, slip[p], wet[p], k, w)
        gas += STRAIGHT_GAS * w[1] * k[BIAS_STRAIGHT]
        direction = 1.0 if slip[p] > 0 else (-1.0 if slip[p] < 0 else 0.0)
        steer -= DRIFT_COUNTER * w[2] * k[BIAS_DRIFT] * direction
        gas -= DRIFT_LIFT * w[2] * k[BIAS_DRIFT]
        steer *= 1.0 - RAIN_SOFTEN * w[3] * k[BIAS_RAIN]
        gas -= RAIN_LIFT * w[3] * k[BIAS_RAIN]

        gas *= 1.0 - k[RISK_AVERSION] * risk[p]

        if hold[p] == 0 and risk[p] > k[EBRAKE_THRESHOLD]:
            hold[p] = hold_steps
        braking = hold[p] > 0
        if braking:
            hold[p] -= 1
            if hold[p] == 0:
                hold[p] = -hold_steps  # cooldown: the car must move again
            gas = 0.0
            brake = ebrake
        elif hold[p] < 0:
            hold[p] += 1

        out[p, 0] = min(max(steer, -1.0), 1.0)
        out[p, 1] = 0.0 if braking else min(max(gas, min_throttle), 1.0)
        out[p, 2] = min(max(brake, 0.0), 1.0)
