"""A controller's own laps, step by step: what it read and what it did. The linear models of the speed,
steering and throttle subspaces (train/speed_model.py, steer_model.py, corner_model.py) are fitted on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import Progress

from engine.race.duel import Duel


@dataclass
class Lap:
    """One player's episode: per step, what the controller read (after the world model's step) and what came of it."""

    z: np.ndarray  # (T, Z) float64
    h: np.ndarray  # (T, H) float64
    steer: np.ndarray  # (T,) float64, the steering the car drove with
    speed: np.ndarray  # (T,) float64, m/s after the step

    @property
    def zh(self) -> np.ndarray:
        """(T, Z + H) float64: the controller's input."""
        return np.concatenate([self.z, self.h], axis=1)


def drive_laps(controller: Path, tracks: int, seed_start: int, renderer: str = "fast", max_steps: int = 1000,
               players: tuple[int, ...] = (0,), label: str = "laps") -> list[Lap]:  # fmt: skip
    """Drive `controller` as player A, the shipped B beside it, on tracks seed_start .. seed_start + tracks - 1
    (fp32, on the CPU) -> the laps of `players` (0: A, 1: B), track by track, with a progress bar `label`."""
    laps = []
    with (Duel([Path(controller), None], renderer=renderer, device="cpu", precision="fp32",
               max_episode_steps=max_steps) as duel, Progress() as bar):  # fmt: skip
        task = bar.add_task(label, total=tracks)
        for seed in range(seed_start, seed_start + tracks):
            duel.reset(seed)
            rows = {p: ([], [], [], []) for p in players}
            while not all(duel.telemetry[p].done for p in players):
                racing = [p for p in players if not duel.telemetry[p].done]
                duel.step()
                for p in racing:  # a player that stepped: what it read for this step and what it did
                    z, h, steer, speed = rows[p]
                    z.append(duel.players.z[p].astype(np.float64))
                    h.append(duel.players.world.h[p].astype(np.float64))
                    steer.append(duel.telemetry[p].action[0])
                    speed.append(duel.telemetry[p].speed)
            laps.extend(Lap(*(np.array(column, np.float64) for column in rows[p])) for p in players)
            bar.advance(task)
    return laps
