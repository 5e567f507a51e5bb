"""Collect rollouts for the world model: a clumsy human's drives on the `exact` renderer.

    vmc-duel train collect --episodes 200 [--workers 2] [--out data/rollouts] [--seed 0]

The exploration policy drives like a clumsy human: a random walk on the actions (as the
ReScience reproduction of World Models did) that, while "attentive", is pulled along the
track by the centre-line autopilot, and now and then gets "distracted": for a while the
random walk alone steers, the car wanders off the road, then finds its way back. A pure
random walk spends 65-90% of its time on the grass (measured: 4 episodes, 64-90% off
track), which starves the VAE of road and the MDN-RNN of recoveries.

Episode i runs on track `seed + i` with its own noise stream (seed, i), so any episode can
be re-collected alone; finished episodes are skipped on resume. Episodes run in a pool of
worker processes, one whole episode per task.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from engine import make_env
from engine.env.autopilot import Autopilot, DrivingStyle
from engine.limits import SEED_MAX, count, seed
from train.preprocess import to_model_frames
from train.shards import episode_path, save_episode


@dataclass
class CollectConfig:
    """What to collect."""

    episodes: int = 200
    """Episode budget: indices 0 .. episodes-1 (existing ones are kept)."""
    out: Path = Path("data/rollouts")
    """Directory of episode shards (git-ignored)."""
    seed: int = 0
    """Episode i drives track seed+i with noise stream (seed, i)."""
    workers: int = 2
    """Worker processes, one episode each at a time."""
    renderer: str = "exact"
    """Renderer of the stored frames: exact = what stock CarRacing-v3 shows."""
    max_steps: int = 1000
    """Steps per episode (CarRacing-v3's time limit)."""
    noise: float = 0.14
    """Random-walk step size per action (sqrt(1/50), the ReScience value)."""
    distraction_rate: float = 1 / 200
    """Chance per step of getting distracted."""
    distraction_steps: tuple[int, int] = (10, 40)
    """How long a distraction lasts, steps (uniform)."""


class ClumsyDriver:
    """Random walk on (steer, gas, brake), pulled along the track while attentive."""

    LOW = np.array([-1.0, 0.0, -1.0])
    HIGH = np.array([1.0, 1.0, 1.0])

    def __init__(self, cfg: CollectConfig, index: int):
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, index])
        style = DrivingStyle(top_speed=float(self.rng.uniform(35, 75)), steer_gain=float(self.rng.uniform(1, 3)))
        self.autopilot = Autopilot(style)
        self.walk = np.array([0.0, self.rng.uniform(0.3, 1.0), -1.0])
        self.distracted = 0  # steps of distraction left

    def act(self, env) -> np.ndarray:
        cfg, rng = self.cfg, self.rng
        self.walk = np.clip(self.walk + cfg.noise * rng.standard_normal(3), self.LOW, self.HIGH)
        if self.distracted == 0 and rng.random() < cfg.distraction_rate:
            self.distracted = int(rng.integers(*cfg.distraction_steps))
        if self.distracted > 0:
            self.distracted -= 1
            return np.array([self.walk[0], self.walk[1], max(self.walk[2], 0.0)])
        # attentive: the autopilot, with the walk as a clumsy hand on the wheel and pedals
        steer, gas, brake = self.autopilot.act(env)
        return np.array([
            np.clip(steer + 0.3 * self.walk[0], -1, 1),
            np.clip(0.5 * gas + 0.5 * self.walk[1], 0, 1),
            np.clip(brake + 0.3 * max(self.walk[2], 0.0), 0, 1),
        ])  # fmt: skip


_ENVS: dict = {}  # per worker process: one env, reused across episodes


def collect_episode(cfg: CollectConfig, index: int) -> dict:
    """Drive episode `index`, save its shard; returns its numbers."""
    env = _ENVS.get(cfg.renderer)
    if env is None:
        env = _ENVS[cfg.renderer] = make_env(cfg.renderer, max_episode_steps=cfg.max_steps)
    driver = ClumsyDriver(cfg, index)
    obs, _ = env.reset(seed=cfg.seed + index)
    frames, actions, rewards, off, done = [obs], [], [], [], []
    while True:
        a = driver.act(env.unwrapped)
        obs, r, terminated, truncated, info = env.step(a)
        frames.append(obs)
        actions.append(a)
        rewards.append(r)
        off.append(info["off_track"])
        done.append(terminated or truncated)
        if done[-1]:
            break
    save_episode(
        episode_path(cfg.out, index),
        frames=to_model_frames(np.stack(frames)),
        actions=np.stack(actions),
        rewards=np.array(rewards),
        off_track=np.array(off),
        done=np.array(done),
        seed=cfg.seed + index,
    )
    return {"index": index, "steps": len(actions), "off_track": float(np.mean(off)), "reward": float(sum(rewards))}


def _run(args: tuple[dict, int]) -> dict:
    cfg_dict, index = args
    return collect_episode(CollectConfig(**cfg_dict), index)


def collect(cfg: CollectConfig) -> dict:
    """Collect the missing episodes of the budget; returns a summary."""
    todo = [i for i in range(cfg.episodes) if not episode_path(cfg.out, i).exists()]
    summary = {"requested": cfg.episodes, "existing": cfg.episodes - len(todo), "collected": 0, "steps": 0}
    if not todo:
        return summary
    start = time.perf_counter()
    off = []
    columns = (TextColumn("collect"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns) as bar, mp.get_context("spawn").Pool(max(cfg.workers, 1)) as pool:
        task = bar.add_task("episodes", total=len(todo), rate="")
        for r in pool.imap_unordered(_run, [(asdict(cfg), i) for i in todo]):
            summary["collected"] += 1
            summary["steps"] += r["steps"]
            off.append(r["off_track"])
            rate = summary["steps"] / (time.perf_counter() - start)
            bar.update(task, advance=1, rate=f"{rate:.0f} steps/s, off track {100 * np.mean(off):.0f}%")
    summary["wall_seconds"] = time.perf_counter() - start
    summary["off_track_fraction"] = float(np.mean(off))
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = CollectConfig()
    p.add_argument("--episodes", type=count(1), default=d.episodes, help=f"episode budget (default {d.episodes})")
    p.add_argument("--out", type=Path, default=d.out, help=f"shard directory (default {d.out})")
    p.add_argument("--seed", type=seed, default=d.seed, help="first track seed (default 0)")
    p.add_argument("--workers", type=count(0), default=d.workers, help="worker processes (default 2)")
    p.add_argument("--renderer", choices=("exact", "fast", "stock"), default=d.renderer,
                   help="renderer of the stored frames (default exact)")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out}: a file, not a directory")
    if args.seed + args.episodes - 1 > SEED_MAX:
        raise ValueError(f"--seed {args.seed} with --episodes {args.episodes} runs past the last seed {SEED_MAX}")
    cfg = CollectConfig(
        episodes=args.episodes, out=args.out, seed=args.seed, workers=args.workers, renderer=args.renderer,
    )  # fmt: skip
    s = collect(cfg)
    print(
        f"{s['collected']} episodes collected ({s['steps']} steps"
        + (f", {s['wall_seconds']:.0f} s" if "wall_seconds" in s else "")
        + (f", {100 * s['off_track_fraction']:.0f}% off track" if "off_track_fraction" in s else "")
        + f"), {s['existing']} already there, in {cfg.out}"
    )
    return 0
