"""Calibrate the spread-based risk (lookahead_horizon 0): how unsure the MDN-RNN is of
the next z while the collection policy drives tracks never used for training.

    python -m export.risk_calibration [--weights weights] [--force]

Runs world_model.onnx step by step (with its LSTM state) over the drives and stores the
1st and 99th percentiles of the mixture's spread in manifest.json under "risk"; the
engine maps spread to risk linearly between them (engine.policy.risk.spread_risk).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine import make_env
from engine.policy.risk import mixture_stats
from engine.world_model.runtime import WorldModel
from train.collect import ClumsyDriver, CollectConfig

SEEDS = (1001, 1002, 1003, 1004)  # the int8 calibration tracks: never collected for training
STEPS = 300  # per track
PERCENTILES = (1.0, 99.0)


def calibrate(weights_dir: Path, seeds: tuple[int, ...] = SEEDS, steps: int = STEPS) -> dict:
    """Drive `seeds` for `steps` each; return the manifest's "risk" record."""
    spreads = []
    cfg = CollectConfig(renderer="exact", max_steps=steps + 1)
    for seed in seeds:
        env = make_env("exact", max_episode_steps=steps + 1)
        obs, _ = env.reset(seed=seed)
        world = WorldModel(1, device="cpu", precision="fp32", weights_dir=weights_dir)
        driver = ClumsyDriver(cfg, seed)
        mean, spread = np.zeros((1, world.z_size), np.float32), np.zeros(1)
        for _ in range(steps):
            out = world.step(obs[None])
            mixture_stats(out["mdn_log_pi"], out["mdn_mu"], out["mdn_sigma"], mean, spread)
            spreads.append(spread[0])
            action = driver.act(env.unwrapped)
            world.set_actions(np.asarray(action, np.float32)[None])
            obs, *_ = env.step(action)
        env.close()
    lo, hi = np.percentile(spreads, PERCENTILES)
    return {
        "spread_lo": float(lo), "spread_hi": float(hi), "percentiles": list(PERCENTILES),
        "tracks": list(seeds), "steps": len(spreads), "policy": "train.collect.ClumsyDriver",
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=Path("weights"), help="weights directory (default weights)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"steps per track (default {STEPS})")
    p.add_argument("--force", action="store_true", help="replace an existing calibration")
    args = p.parse_args(argv)
    path = args.weights / "manifest.json"
    manifest = json.loads(path.read_text())
    if "risk" in manifest and not args.force:
        raise SystemExit(f"{path} already has a risk calibration: pass --force to replace it")
    manifest["risk"] = calibrate(args.weights, steps=args.steps)
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{path}: risk spread {manifest['risk']['spread_lo']:.4f} .. {manifest['risk']['spread_hi']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
