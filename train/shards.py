"""Rollout shards on disk: one compressed .npz per episode under data/rollouts/.

An episode of T steps holds
    frames     (T+1, 64, 64, 3) uint8   model frames, frames[t] seen before action t
    actions    (T, 3) float32           steer, gas, brake taken at frame t
    rewards    (T,) float32             reward of step t
    off_track  (T,) bool                all four wheels off the road after step t
    done       (T,) bool                the episode ended at step t
    seed       () int64                 the track seed
Files are written to a temporary name and renamed, so a killed collection leaves no
half-written shard; loading checks every array and names the file when one is wrong.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from engine.files import atomic_path

KEYS = {
    "frames": np.uint8,
    "actions": np.float32,
    "rewards": np.float32,
    "off_track": np.bool_,
    "done": np.bool_,
    "seed": np.int64,
}


class ShardError(ValueError):
    """A rollout shard is missing, truncated or malformed."""


def episode_path(root: Path, index: int) -> Path:
    return Path(root) / f"episode_{index:05d}.npz"


def save_episode(path: Path, **arrays: np.ndarray) -> None:
    """Write one episode atomically (engine.files: temp file, fsync, rename)."""
    missing = set(KEYS) - set(arrays)
    if missing:
        raise ValueError(f"save_episode: missing {sorted(missing)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # WriteError names the shard on a full disk
        np.savez_compressed(f, **{k: np.asarray(arrays[k], dtype=KEYS[k]) for k in KEYS})


def load_episode(path: Path) -> dict[str, np.ndarray]:
    """Read and check one episode; raises ShardError naming the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in KEYS}
    except KeyError as e:
        raise ShardError(f"{path}: no array {e} (not a rollout shard?)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ShardError(f"{path}: unreadable ({e}); delete it and collect again") from None
    t = len(data["actions"])
    expect = {
        "frames": (t + 1, 64, 64, 3),
        "actions": (t, 3),
        "rewards": (t,),
        "off_track": (t,),
        "done": (t,),
        "seed": (),
    }
    for k, shape in expect.items():
        if data[k].shape != shape or data[k].dtype != KEYS[k]:
            raise ShardError(f"{path}: {k} is {data[k].dtype}{data[k].shape}, expected {KEYS[k].__name__}{shape}")
    if t == 0:
        raise ShardError(f"{path}: empty episode")
    return data


def list_episodes(root: Path) -> list[Path]:
    """The episode files under `root`, in index order."""
    return sorted(Path(root).glob("episode_*.npz"))
