"""Predicted risk from the MDN-RNN, in numba: the mixture's mean and spread, and the
calibration that maps the spread into [0, 1].

With `lookahead_horizon` H >= 1 a player's risk is that of leaving the road within H
steps: (1 - p_now) x the largest off-track probability the model predicts over the next H
imagined steps of lookahead.onnx (each fed the mixture's mean as the next z and the player's
own policy as the action); p_now comes with the world-model step (engine.policy.players).
With H = 0 it is the MDN's spread: how unsure the model is of the next z, scaled by the
spread it showed on the calibration drives (weights/manifest.json, "risk": 0 at its 1st
percentile, 1 at its 99th).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")  # inlined into engine.policy.players.decide
def mixture_stats(log_pi: np.ndarray, mu: np.ndarray, sigma: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> None:
    """log_pi, mu, sigma (P, Z, K) -> mean (P, Z) and spread (P,) (in place).

    mean is the mixture's mean per dimension; spread is its standard deviation averaged
    over dimensions: sqrt(sum_k pi_k (sigma_k^2 + mu_k^2) - mean^2)."""
    players, dims, k_max = mu.shape
    for p in range(players):
        total = 0.0
        for d in range(dims):
            m = 0.0
            second = 0.0
            for k in range(k_max):
                pi = np.exp(log_pi[p, d, k])
                m += pi * mu[p, d, k]
                second += pi * (sigma[p, d, k] * sigma[p, d, k] + mu[p, d, k] * mu[p, d, k])
            mean[p, d] = m
            total += np.sqrt(max(second - m * m, 0.0))
        spread[p] = total / dims


@numba.njit(cache=True, inline="always")  # inlined into engine.policy.players.decide
def spread_risk(spread: np.ndarray, lo: float, hi: float, out: np.ndarray) -> None:
    """spread (P,) -> risk (P,) in [0, 1]: 0 at `lo`, 1 at `hi`, linear between."""
    for p in range(spread.shape[0]):
        out[p] = min(max((spread[p] - lo) / (hi - lo), 0.0), 1.0)
