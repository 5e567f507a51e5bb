"""VMC Duel's inference runtime, along the data path of one step:

    env/          frame: CarRacing with the exact and fast renderers, rain, vector envs, autopilot
    world_model/  frame -> z, h: onnxruntime sessions of the VAE + MDN-RNN, the weights manifest
    policy/       z, h -> action: controllers, risk, strategy knobs, every player's decision
    race/         action -> telemetry: the duel, live in a thread, headless, tournaments

plus `health` and `hardware` (is this install able to race, and on what). Each sub-package
imports only those above it in this list. `engine` never imports torch, nor the apps that
use it (tui, server, vmc_duel) or the training tools (train, export); tests/test_layout.py
enforces it.
"""

from engine.env.racing_env import MAX_EPISODE_STEPS, RENDERERS, WEATHERS, DuelCarRacing, make_env

__all__ = ["MAX_EPISODE_STEPS", "RENDERERS", "WEATHERS", "DuelCarRacing", "make_env"]
