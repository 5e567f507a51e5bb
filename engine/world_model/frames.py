"""Observation -> the VAE's input: crop above the dashboard, area-resize to 64x64, in numba.

CarRacing's 96x96 observation carries a dashboard in its bottom 12 rows; the VAE sees the
84 rows above it, area-averaged down to 64x64 (World Models' frame size) and rounded to
uint8 levels, the frames it was trained on (train.collect stores `to_model_frames`).

The resize is separable and sparse: each output row averages 2-3 input rows, each output
column 2 input columns, weighted by their overlap (`area_matrix`). As dense MatMuls inside
the ONNX graph it cost about 75 us of a 270 us int8 world-model step at batch 1 (two batched
MatMuls and nine element-wise nodes); here it is one pass over the pixels, and the graph
starts at the VAE (`frame` input).
"""

from __future__ import annotations

import numba
import numpy as np

OBS_SIZE = 96  # px, CarRacing-v3 observation side
CROP_ROWS = 84  # px, rows above the dashboard bar (96 * 35/40; engine.env.weather.PLAY_ROWS)
MODEL_SIZE = 64  # px, the VAE's input side, as in World Models
CHANNELS = 3  # RGB


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


def _taps(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sparse area matrix as per-output taps: index (n_out, T) int64, weight (n_out, T)
    float32, T the most inputs any output reads; unused taps have weight 0 on input 0."""
    width = int((m != 0).sum(axis=1).max())
    index = np.zeros((m.shape[0], width), np.int64)
    weight = np.zeros((m.shape[0], width), np.float32)
    for i, row in enumerate(m):
        nz = np.flatnonzero(row)
        index[i, : len(nz)], weight[i, : len(nz)] = nz, row[nz]
    return index, weight


ROWS = area_matrix(MODEL_SIZE, CROP_ROWS)  # (64, 84)
COLS = area_matrix(MODEL_SIZE, OBS_SIZE)  # (64, 96)
ROW_TAPS = _taps(ROWS)  # (64, 3) each: an output row reads 2-3 input rows
# 96 -> 64 columns is 3 -> 2: output columns 2m and 2m+1 read input columns 3m, 3m+1 and 3m+1, 3m+2
# with the same four weights for every m; the column pass is written for that pattern.
COL_WEIGHTS = (COLS[0, 0], COLS[0, 1], COLS[1, 1], COLS[1, 2])
assert np.array_equal(COLS.reshape(32, 2, 32, 3)[np.arange(32), :, np.arange(32), :],
                      np.broadcast_to(np.array([[COLS[0, 0], COLS[0, 1], 0], [0, COLS[1, 1], COLS[1, 2]]],
                                               np.float32), (32, 2, 3)))  # fmt: skip


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _resize(obs, row_index, row_weight, a, b, c, d, out):
    """obs (B, 96, 96, 3) uint8 -> out (B, 3, 64, 64) float32 levels / 255 (see model_input).

    Rows first (each output row a weighted sum of whole input rows: SIMD over the 288 bytes of
    a row), then columns (a, b, c, d: COL_WEIGHTS). The sums run in the order of the dense
    `ROWS @ x @ COLS.T`, whose zero terms add nothing: the frames equal train-time numpy's."""
    n_rows, channels = row_index.shape[0], obs.shape[3]
    width = obs.shape[2] * channels  # one input row, interleaved RGB
    groups = obs.shape[2] // 3  # three input columns -> two output columns
    rows = np.empty((n_rows, width), np.float32)  # row-resized, still interleaved
    half, top = np.float32(0.5), np.float32(255.0)
    for n in range(obs.shape[0]):
        img = obs[n].reshape(obs.shape[1], width)
        for i in range(n_rows):
            acc = rows[i]
            w0, r0 = row_weight[i, 0], img[row_index[i, 0]]
            for x in range(width):
                acc[x] = w0 * np.float32(r0[x])
            for t in range(1, row_index.shape[1]):
                w, r = row_weight[i, t], img[row_index[i, t]]
                for x in range(width):
                    acc[x] += w * np.float32(r[x])
        for i in range(n_rows):
            s = rows[i]
            for ch in range(channels):
                o = out[n, ch, i]
                for m in range(groups):
                    k = 9 * m + ch  # input column 3m, channel ch
                    v0 = a * s[k] + b * s[k + 3]
                    v1 = c * s[k + 3] + d * s[k + 6]
                    # round half up (v >= 0: truncation is floor), at most 255, / 255 as the graph did
                    o[2 * m] = min(np.float32(np.int32(v0 + half)), top) / top
                    o[2 * m + 1] = min(np.float32(np.int32(v1 + half)), top) / top


def model_input(obs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """obs (B, 96, 96, 3) uint8 -> (B, 3, 64, 64) float32 in [0, 1], the VAE's input: the rows
    above the dashboard, area-resized, rounded to uint8 levels, divided by 255. Each frame is
    computed alone (the same result whatever the batch)."""
    if obs.ndim != 4 or obs.shape[1:] != (OBS_SIZE, OBS_SIZE, CHANNELS) or obs.dtype != np.uint8:
        raise ValueError(f"obs must be (B, {OBS_SIZE}, {OBS_SIZE}, {CHANNELS}) uint8, got {obs.dtype}{obs.shape}")
    if out is None:
        out = np.empty((len(obs), CHANNELS, MODEL_SIZE, MODEL_SIZE), np.float32)
    _resize(np.ascontiguousarray(obs), *ROW_TAPS, *COL_WEIGHTS, out)  # reads rows 0-83 only
    return out


def to_model_frames(obs: np.ndarray) -> np.ndarray:
    """(..., 96, 96, 3) uint8 observations -> (..., 64, 64, 3) uint8 model frames (what the
    collector stores and the VAE trains on; `model_input` is the same frames / 255)."""
    flat = obs.reshape(-1, *obs.shape[-3:])
    levels = np.rint(model_input(flat) * np.float32(255.0)).astype(np.uint8)  # exact: levels / 255 * 255
    return np.moveaxis(levels, 1, -1).reshape(*obs.shape[:-3], MODEL_SIZE, MODEL_SIZE, CHANNELS)
