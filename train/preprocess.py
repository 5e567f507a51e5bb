"""Observation -> model input: crop above the dashboard, area-resize to 64x64.

The resize is two fixed matrices (rows and columns), exact area averaging: numpy
applies them when collecting, and the exported ONNX graph applies the very same
matrices as MatMuls, so what the VAE trains on is what the engine feeds it.
"""

from __future__ import annotations

import numpy as np

from engine.env.weather import PLAY_ROWS

OBS_SIZE = 96  # px, CarRacing-v3 observation side
CROP_ROWS = PLAY_ROWS  # px, rows above the dashboard bar (84)
MODEL_SIZE = 64  # px, VAE input side, as in World Models


def area_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) float32: row i averages the input cells overlapping output cell i,
    each weighted by its overlap (area resampling, rows sum to 1)."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    scale = n_in / n_out
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
            m[i, j] = min(hi, j + 1) - max(lo, j)
    return (m / m.sum(axis=1, keepdims=True)).astype(np.float32)


ROWS = area_matrix(MODEL_SIZE, CROP_ROWS)  # (64, 84)
COLS = area_matrix(MODEL_SIZE, OBS_SIZE)  # (64, 96)


def to_model_frames(obs: np.ndarray) -> np.ndarray:
    """(..., 96, 96, 3) uint8 observations -> (..., 64, 64, 3) uint8 model frames."""
    x = np.moveaxis(obs[..., :CROP_ROWS, :, :], -1, -3).astype(np.float32)  # (..., 3, 84, 96)
    x = ROWS @ x @ COLS.T  # (..., 3, 64, 64), the graph's MatMuls
    return np.clip(np.moveaxis(x, -3, -1) + 0.5, 0, 255).astype(np.uint8)  # (..., 64, 64, 3)
