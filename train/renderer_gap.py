"""How far the `fast` renderer moves z: controllers train on `fast`, the VAE learned `exact`.

    vmc-duel train renderer-gap [--vae data/checkpoints/vae/vae.pth] [--tracks 5] [--steps 300]

Drives the collection policy on tracks never collected, and at every step draws the
very same state twice, with the exact renderer (what the env returns) and with the fast
one (called on the same env). Both go through the same preprocessing and encoder;
reports mean |z_fast - z_exact| against z's spread (the mean over dimensions of z's
standard deviation across the drive), and the pixel difference for reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from engine import make_env
from engine.env.render_fast import FastRenderer
from train.collect import ClumsyDriver, CollectConfig
from train.mdnrnn import load_vae
from train.preprocess import to_model_frames
from train.vae import to_tensor

FIRST_TRACK = 2000  # seeds from here on were never collected


@torch.no_grad()
def renderer_gap(vae_path: Path, tracks: int = 5, steps: int = 300) -> dict:
    vae = load_vae(vae_path)
    fast = FastRenderer()
    cfg = CollectConfig(max_steps=steps + 1)
    exact_frames, fast_frames = [], []
    for k in range(tracks):
        env = make_env("exact", max_episode_steps=steps + 1)
        obs, _ = env.reset(seed=FIRST_TRACK + k)
        driver = ClumsyDriver(cfg, FIRST_TRACK + k)
        for _ in range(steps):
            exact_frames.append(obs)
            fast_frames.append(fast.render(env.unwrapped))
            obs, *_ = env.step(driver.act(env.unwrapped))
    exact = to_model_frames(np.stack(exact_frames))
    fast_m = to_model_frames(np.stack(fast_frames))
    z_exact = np.concatenate([vae.encode(to_tensor(exact[i : i + 500]))[0].numpy() for i in range(0, len(exact), 500)])
    z_fast = np.concatenate([vae.encode(to_tensor(fast_m[i : i + 500]))[0].numpy() for i in range(0, len(fast_m), 500)])
    gap = np.abs(z_fast - z_exact).mean()
    spread = z_exact.std(axis=0).mean()
    return {
        "states": len(exact), "tracks": [FIRST_TRACK + k for k in range(tracks)],
        "z_mean_abs_diff": float(gap), "z_spread": float(spread), "gap_over_spread": float(gap / spread),
        "pixel_mean_abs_diff_96": float(np.abs(np.stack(fast_frames).astype(int) - np.stack(exact_frames)).mean()),
    }  # fmt: skip


def main(args: argparse.Namespace) -> int:
    if args.tracks < 1 or args.steps < 1:
        raise ValueError("--tracks and --steps must be at least 1")
    torch.set_num_threads(2)
    r = renderer_gap(args.vae, args.tracks, args.steps)
    print(
        f"fast vs exact over {r['states']} states: mean |z_fast - z_exact| = {r['z_mean_abs_diff']:.4f}, "
        f"z spread {r['z_spread']:.3f} -> {100 * r['gap_over_spread']:.1f}% of the spread "
        f"(pixels: {r['pixel_mean_abs_diff_96']:.2f} grey levels)"
    )
    if args.out:
        args.out.write_text(json.dumps(r, indent=1) + "\n")
    print(json.dumps(r))
    return 0
