"""Behaviour clones of the scripted autopilot: where the CMA-ES searches of controllers A and B start.

    python -m train.behaviour_clone [--weights weights] [--out weights/init] [--tracks 4] [--force]

Each is a linear controller cloned from the autopilot in one style (A races hard, B drives
carefully): drive the autopilot, record the world model's [z, h] at every step through the
shipped world_model.onnx, and fit W, b by ridge regression on the autopilot's actions mapped
back through World Models' action mapping. They are written to OUT/controllerA_clone.npz and
OUT/controllerB_clone.npz (what configs/controller_A.yaml and controller_B.yaml start from)
with `placeholder = True` and the reward they scored on held-out tracks, so nothing mistakes
them for trained controllers. The shipped ones: `--tracks 10`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from engine import make_env
from engine.env.autopilot import STYLES, Autopilot
from engine.policy.controller import policy_actions
from engine.world_model.runtime import WorldModel

FIT_SEEDS = 3000  # tracks 3000.. for fitting, 4000.. for the check: never collected
CHECK_SEEDS = 4000
STEPS = 600  # per track
RIDGE = 1.0  # L2 penalty on W
SQUASH = 0.95  # targets are atanh of values clipped to +-SQUASH


def drive(weights: Path, seeds: range, style: str | None, W=None, b=None) -> tuple[np.ndarray, np.ndarray, float]:
    """Drive `seeds` with the autopilot (style) or the linear controller (W, b).
    Returns features [z, h] (T, Z+H), actions (T, 3), mean episode reward."""
    feats, acts, rewards = [], [], []
    for seed in seeds:
        env = make_env("fast", max_episode_steps=STEPS)
        obs, _ = env.reset(seed=seed)
        wm = WorldModel(1, device="cpu", weights_dir=weights)
        pilot = Autopilot(STYLES[style]) if style else None
        total, out = 0.0, np.zeros((1, 3))
        while True:
            m = wm.step(obs[None])
            if pilot is not None:
                a = pilot.act(env.unwrapped)
            else:
                policy_actions(W[None], b[None], m["z"], wm.h, out)
                a = out[0].copy()
                a[1] = max(a[1], 0.05)  # the engine's minimum throttle invariant
            feats.append(np.concatenate([m["z"][0], wm.h[0]]))
            acts.append(a)
            wm.set_actions(a[None].astype(np.float32))
            obs, r, terminated, truncated, _ = env.step(a)
            total += r
            if terminated or truncated:
                break
        rewards.append(total)
    return np.array(feats), np.array(acts), float(np.mean(rewards))


def fit(feats: np.ndarray, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression of the pre-tanh action on [z, h]: W (3, D), b (3,)."""
    pre = np.stack([
        np.arctanh(np.clip(acts[:, 0], -SQUASH, SQUASH)),
        np.arctanh(np.clip(2 * acts[:, 1] - 1, -SQUASH, SQUASH)),
        np.where(acts[:, 2] > 0, np.arctanh(np.clip(acts[:, 2], 0, SQUASH)), -0.5),
    ], axis=1)  # fmt: skip
    mean = feats.mean(axis=0)
    x = feats - mean
    coef = np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ (pre - pre.mean(axis=0)))  # (D, 3)
    W = coef.T
    return W, pre.mean(axis=0) - W @ mean


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=Path("weights"), help="world model directory (default weights)")
    p.add_argument("--out", type=Path, default=Path("weights/init"), help="where the clones go (default weights/init)")
    p.add_argument("--tracks", type=int, default=4, help="tracks to fit on and to check on (default 4)")
    p.add_argument("--force", action="store_true", help="replace existing clone files")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("A", "B"):
        path = args.out / f"controller{name}_clone.npz"
        if path.exists() and not args.force:
            p.error(f"{path} exists; pass --force to replace it")
        feats, acts, pilot_reward = drive(args.weights, range(FIT_SEEDS, FIT_SEEDS + args.tracks), name)
        W, b = fit(feats, acts)
        _, _, clone_reward = drive(args.weights, range(CHECK_SEEDS, CHECK_SEEDS + args.tracks), None, W, b)
        meta = {
            "placeholder": True, "method": "ridge behaviour clone of the scripted autopilot (not CMA-ES)",
            "style": name, "fit_steps": len(feats), "autopilot_mean_reward": pilot_reward,
            "check_mean_reward": clone_reward, "check_tracks": f"{CHECK_SEEDS}-{CHECK_SEEDS + args.tracks - 1}",
            "episode_steps": STEPS,
        }  # fmt: skip
        np.savez(path, W=W.astype(np.float32), b=b.astype(np.float32), **{k: np.array(v) for k, v in meta.items()})
        print(f"controller {name}: autopilot {pilot_reward:.1f}, clone {clone_reward:.1f} "
              f"(mean reward over {args.tracks} tracks of {STEPS} steps) -> {path}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
