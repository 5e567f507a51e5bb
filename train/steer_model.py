"""The controller's last steering, read from what it reads now: the damping subspace's linear model.

A linear controller has no memory of its own, but the MDN-RNN's h does: h_t is computed from z_t,
the previous action and h_{t-1}, so a ridge fit recovers the steering pre-activation of the step
before from h_t alone (R^2 0.978 on held-back steps, 6 tracks of the shipped A). With the steering
row split into its z part and its h part, s = Wz . z + Wh . h + b, the fit gives two vectors,
Wz . z_{t-1} ~ pz . h_t + pz0 and Wh . h_{t-1} ~ ph . h_t + ph0, so that for any gains gz, gh on
the two parts the last steering is again linear in h_t. Blending it in,
s' = (1 - k) s + k s_prev, is a low-pass on the steering (k > 0) or a lead (k < 0) that is itself a
linear controller: the damping subspace of `vmc-duel train controller` searches k with the gains
(train/controller.py, Search).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.policy.controller import load_controller
from train.laps import drive_laps
from train.speed_model import r_squared, ridge

STEER_SEED_START = 3_100_000  # tracks the steering model is fitted on: neither evaluation nor held-out ones


@dataclass
class SteerModel:
    """Last step's steering parts from this step's h: Wz . z_{t-1} ~ pz . h_t + pz0, Wh . h_{t-1} ~ ph . h_t + ph0."""

    pz: np.ndarray  # (hidden,) float64
    pz0: float
    ph: np.ndarray  # (hidden,) float64
    ph0: float
    r2: float  # of the whole last steering pre-activation, on the steps driven


def fit_steer_model(controller: Path, tracks: int = 6, seed_start: int = STEER_SEED_START,
                    renderer: str = "fast", max_steps: int = 1000) -> SteerModel:  # fmt: skip
    """Drive `controller` (as player A, the shipped B beside it) on `tracks` tracks and fit its last steering
    parts on what it reads at each step (z (32,) and h (256,) after the world model's step)."""
    laps = drive_laps(controller, tracks, seed_start, renderer, max_steps, label="steering model")
    nz = laps[0].z.shape[1]
    W, b, _ = load_controller(Path(controller), nz, laps[0].h.shape[1])
    z_list, h_list = [lap.z for lap in laps], [lap.h for lap in laps]
    Wz, Wh = W[0, :nz], W[0, nz:]
    h_now = np.concatenate([h[1:] for h in h_list])  # (steps, hidden): h_t
    z_prev = np.concatenate([z[:-1] for z in z_list])  # z_{t-1}
    h_prev = np.concatenate([h[:-1] for h in h_list])  # h_{t-1}
    pz, pz0 = ridge(h_now, z_prev @ Wz)
    ph, ph0 = ridge(h_now, h_prev @ Wh)
    s_prev = z_prev @ Wz + h_prev @ Wh
    return SteerModel(pz, pz0, ph, ph0, r_squared(h_now @ (pz + ph) + pz0 + ph0, s_prev))
