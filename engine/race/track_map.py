"""Where the cars are on the track: its outline, each car's progress along the lap, and the gap.

The duel gives every car its own environment on the same seed, so one track serves both: its
centre line (one point per road tile, in lap order) measures progress, its tile polygons draw
the map. Progress is the distance along the lap in tiles, unwrapped (a car past the line
counts on from the tile count) and followed from the previous step's tile, so a loop that
passes close to another part of the track never makes a car jump. The gap in seconds is what
motor racing shows: how long ago the leader passed the point where the other car is now.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.env.racing_env import FPS  # steps per second of race time

SEARCH_TILES = 12  # tiles either side of the last one searched for the nearest (a car covers < 1 per step)


@dataclass(frozen=True)
class TrackGeometry:
    """One track, in world metres.

    Attributes:
        centre: (N, 2) float64, the centre-line point of each road tile, in lap order.
        tiles: (N, 4, 2) float64, the road tile polygons (kerbs left out).
        seed: the track's seed.
    """

    centre: np.ndarray
    tiles: np.ndarray
    seed: int

    @property
    def count(self) -> int:
        return len(self.centre)

    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) over every tile corner."""
        corners = self.tiles.reshape(-1, 2)
        return (*corners.min(axis=0).tolist(), *corners.max(axis=0).tolist())


def track_geometry(env, seed: int) -> TrackGeometry:
    """The geometry of `env`'s current track (an engine.env DuelCarRacing, wrapped or not, after reset)."""
    u = env.unwrapped
    centre = np.array([(x, y) for _, _, x, y in u.track], dtype=np.float64)
    return TrackGeometry(centre=centre, tiles=u.road_vertices[u.road_is_tile].copy(), seed=int(seed))


def car_positions(envs) -> np.ndarray:
    """(P, 2) float64: the car hull's world position in each environment."""
    return np.array([tuple(env.unwrapped.car.hull.position) for env in envs], dtype=np.float64)


class LapProgress:
    """Each car's progress along the lap (tiles, unwrapped) and the step it first reached each tile.

    Args:
        geometry: the track.
        players: cars followed (2 in a duel).
    """

    def __init__(self, geometry: TrackGeometry, players: int = 2):
        self.geometry = geometry
        n = geometry.count
        self._seg = np.roll(geometry.centre, -1, axis=0) - geometry.centre  # (N, 2) tile k -> k + 1
        self._seg_len2 = np.maximum((self._seg**2).sum(axis=1), 1e-9)
        self.index = np.zeros(players, dtype=np.int64)  # unwrapped tile index
        self.progress = np.zeros(players)  # unwrapped tiles, fractional
        self.reached = np.full((players, 2 * n + 1), -1, dtype=np.int64)  # step when tile k was first reached
        self.reached[:, 0] = 0
        self.step = 0

    def update(self, step: int, positions: np.ndarray, moving: np.ndarray | None = None) -> None:
        """Follow the cars to `positions` ((P, 2) world metres) after step `step`; cars with
        moving[p] False (ended) keep their progress."""
        n = self.geometry.count
        self.step = int(step)
        offsets = np.arange(-SEARCH_TILES, SEARCH_TILES + 1)
        for p, pos in enumerate(np.asarray(positions, dtype=np.float64)):
            if moving is not None and not moving[p]:
                continue
            candidates = self.index[p] + offsets
            k = candidates % n
            d2 = ((self.geometry.centre[k] - pos) ** 2).sum(axis=1)
            best = int(candidates[int(np.argmin(d2))])
            kb = best % n
            # the fraction of the way to the next tile, projected on the centre line
            t = float(np.clip(np.dot(pos - self.geometry.centre[kb], self._seg[kb]) / self._seg_len2[kb], 0.0, 1.0))
            self.index[p] = best
            self.progress[p] = best + t
            reached = self.reached[p]
            top = min(max(best, 0), len(reached) - 1)
            unseen = reached[: top + 1] < 0
            reached[: top + 1][unseen] = step

    def lap_fraction(self) -> np.ndarray:
        """(P,) float64: progress as a fraction of one lap (1.0 once round; may pass it)."""
        return self.progress / self.geometry.count

    def gap(self) -> tuple[int | None, float, float]:
        """(leader, tiles, seconds) between cars 0 and 1: the leader's index (None when level),
        how many tiles it is ahead, and how long ago it passed the point where the other is now."""
        a, b = self.progress[0], self.progress[1]
        if abs(a - b) < 1e-9:
            return None, 0.0, 0.0
        lead, trail = (0, 1) if a > b else (1, 0)
        tile = int(np.clip(np.floor(self.progress[trail]), 0, self.reached.shape[1] - 1))
        passed = self.reached[lead, tile]
        seconds = (self.step - passed) / FPS if passed >= 0 else 0.0
        return lead, float(abs(a - b)), float(max(seconds, 0.0))


__all__ = ["LapProgress", "TrackGeometry", "car_positions", "track_geometry"]
