"""A duel: two cars on the same track (same seed), stepped in lockstep, each ending on its own.

The two environments never interact: each car has its own world, so neither can block
the other, and both see identical conditions. Telemetry per player: step, reward,
speed, off-track time, tiles; the winner has the higher reward once both have ended
(ties go to more tiles visited, then to fewer off-track steps).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.racing_env import FPS, make_env  # FPS: steps per second of race time

PLAYERS = ("A", "B")


@dataclass
class PlayerTelemetry:
    """What the duel reports about one car."""

    step: int = 0  # steps taken this episode
    reward: float = 0.0  # episode return so far
    speed: float = 0.0  # m/s
    off_track_steps: int = 0  # steps with all four wheels off the road
    tiles_visited: int = 0
    track_tiles: int = 1
    done: bool = False
    lap_finished: bool = False

    @property
    def off_track_seconds(self) -> float:
        return self.off_track_steps / FPS

    @property
    def tiles_fraction(self) -> float:
        return self.tiles_visited / max(self.track_tiles, 1)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["off_track_seconds"] = self.off_track_seconds
        d["tiles_fraction"] = self.tiles_fraction
        return d


class Duel:
    """Two CarRacing-v3 environments on one seed.

    Args:
        renderer, weather, **car_racing_kwargs: as for `engine.make_env`, the same for both.
    """

    def __init__(self, renderer: str = "exact", weather: str = "clear", **car_racing_kwargs: Any):
        self.envs = [make_env(renderer=renderer, weather=weather, **car_racing_kwargs) for _ in PLAYERS]
        self.renderer, self.weather = renderer, weather
        self.obs = np.zeros((len(PLAYERS), 96, 96, 3), dtype=np.uint8)  # (2, 96, 96, 3)
        self.telemetry = [PlayerTelemetry() for _ in PLAYERS]
        self.seed: int | None = None

    def reset(self, seed: int) -> np.ndarray:
        """Both cars to the start of track `seed`. Returns obs (2, 96, 96, 3) uint8."""
        self.seed = int(seed)
        for p, env in enumerate(self.envs):
            self.obs[p], info = env.reset(seed=self.seed)
            self.telemetry[p] = PlayerTelemetry(
                speed=info["speed"], tiles_visited=info["tiles_visited"], track_tiles=info["track_tiles"]
            )
        return self.obs

    def step(self, actions: np.ndarray) -> np.ndarray:
        """One step for each car still racing. actions: (2, 3) (steer, gas, brake).
        Returns obs (2, 96, 96, 3) uint8 (a finished car's last frame stays)."""
        if self.seed is None:
            raise RuntimeError("Duel.step before Duel.reset(seed)")
        for p, env in enumerate(self.envs):
            t = self.telemetry[p]
            if t.done:
                continue
            self.obs[p], reward, terminated, truncated, info = env.step(actions[p])
            t.step += 1
            t.reward += float(reward)
            t.speed = info["speed"]
            t.off_track_steps += int(info["off_track"])
            t.tiles_visited = info["tiles_visited"]
            t.lap_finished = info["lap_finished"]
            t.done = bool(terminated or truncated)
        return self.obs

    @property
    def finished(self) -> bool:
        return all(t.done for t in self.telemetry)

    def _rank_key(self, p: int) -> tuple[float, int, int]:
        t = self.telemetry[p]
        return (round(t.reward, 6), t.tiles_visited, -t.off_track_steps)

    def leader(self) -> str | None:
        """The player ahead now, or None when level."""
        a, b = self._rank_key(0), self._rank_key(1)
        return None if a == b else PLAYERS[0] if a > b else PLAYERS[1]

    def winner(self) -> str | None:
        """The winner once both cars have ended ("draw" -> None); None while racing."""
        return self.leader() if self.finished else None

    def close(self) -> None:
        for env in self.envs:
            env.close()
