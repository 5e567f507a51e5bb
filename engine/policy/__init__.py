"""Every player's decision: the linear controller on [z, h] (`controller`), the predicted risk
of leaving the road (`risk`), the strategy knobs (`knobs`: bounds and values; `strategy`: the
numba formulas) and all of it batched over players (`players`). Imports engine.world_model."""
