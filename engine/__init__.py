"""VMC Duel's inference runtime: racing environments, the duel, and (later) the
onnxruntime world model and numba controllers. Never imports torch."""

from engine.racing_env import MAX_EPISODE_STEPS, RENDERERS, WEATHERS, DuelCarRacing, make_env

__all__ = ["MAX_EPISODE_STEPS", "RENDERERS", "WEATHERS", "DuelCarRacing", "make_env"]
