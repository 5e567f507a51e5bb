"""Observation -> model input: crop above the dashboard, area-resize to 64x64.

The collector stores `to_model_frames` frames and the VAE trains on them; the engine feeds
the world model the same frames / 255 (`model_input`). Both are the one numba kernel of
engine.world_model.frames, so what the VAE trains on is what the engine feeds it.
"""

from __future__ import annotations

from engine.world_model.frames import (  # noqa: F401  (re-exported for train/ and export/)
    COLS,
    CROP_ROWS,
    MODEL_SIZE,
    OBS_SIZE,
    ROWS,
    area_matrix,
    model_input,
    to_model_frames,
)
