"""How fast the car goes, read from what the controller reads: a linear model of speed on [z, h].

A linear controller cannot see the speedometer, but the latent state carries the speed: a ridge fit
of speed on [z, h] over a few laps explains most of it (R^2 0.86 in-sample, 0.69 on held-back steps,
6 tracks of the shipped A and B). Because it is linear, "gas + k (v_ref - speed)" is itself a linear
controller: W[gas] -= k w, b[gas] += k (v_ref - w0). The speed subspace of `vmc-duel train controller`
searches such k for gas and brake (train/controller.py, Search).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from train.laps import drive_laps

SPEED_SEED_START = 3_000_000  # tracks the speed model is fitted on: neither evaluation nor held-out ones
RIDGE = 0.1  # ridge penalty on the weights (z and h are O(1); thousands of steps)


def fit_speed_model(controller: Path, tracks: int = 6, seed_start: int = SPEED_SEED_START,
                    renderer: str = "fast", max_steps: int = 1000) -> tuple[np.ndarray, float, float]:  # fmt: skip
    """Drive `controller` (as player A, the shipped B beside it) on `tracks` tracks and fit speed (m/s)
    on what each controller read at that step.

    Returns w (z + hidden,) float64, w0 (float, m/s) and the fit's R^2 over the steps driven."""
    laps = drive_laps(controller, tracks, seed_start, renderer, max_steps, players=(0, 1), label="speed model")
    X = np.concatenate([lap.zh for lap in laps])  # (steps, z + hidden)
    S = np.concatenate([lap.speed for lap in laps])  # (steps,)
    w, w0 = ridge(X, S)
    return w, w0, r_squared(X @ w + w0, S)


def ridge(X: np.ndarray, y: np.ndarray, strength: float = RIDGE) -> tuple[np.ndarray, float]:
    """y (n,) ~ X (n, d) . w + w0 by ridge regression (`strength` on w; the intercept is not shrunk) -> w (d,), w0."""
    X1 = np.hstack([X, np.ones((len(y), 1))])
    penalty = strength * np.eye(X1.shape[1])
    penalty[-1, -1] = 0.0
    w = np.linalg.solve(X1.T @ X1 + penalty, X1.T @ y)
    return w[:-1], float(w[-1])


def r_squared(fit: np.ndarray, y: np.ndarray) -> float:
    """The share of y's (n,) variance that fit (n,) explains (0 for a constant y fitted exactly)."""
    return 1.0 - float(((fit - y) ** 2).mean() / max(float(y.var()), 1e-12))
