"""A replay as an animated GIF: both cars' views and the track map side by side, with a caption.

Pillow writes the GIF (the `media` extra: pip install -e '.[media]'). One picture every
`every` steps; the GIF plays at the race's real speed (50 steps per second) unless `speedup`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.race.duel import FPS, PLAYERS, Duel
from engine.race.track_map import LapProgress, car_positions, track_geometry
from tui.map_image import CAR_COLOURS, MapPainter

SCALE = 2  # frame pixels per observation pixel (96 -> 192)
CAPTION_PX = 16  # rows of the caption strip under the pictures
GAP_PX = 4  # between the three pictures


class GifRecorder:
    """Collects a picture per `every` steps from a replaying duel (pass `on_step` to `replay`)."""

    def __init__(self, every: int = 4):
        if every < 1:
            raise ValueError(f"--gif-every must be at least 1, got {every}")
        self.every = every
        self.pictures: list[np.ndarray] = []
        self._lap: LapProgress | None = None
        self._painter: MapPainter | None = None

    def on_step(self, duel: Duel, step: int) -> None:
        envs = duel.vec.local_envs()
        if self._lap is None:
            geometry = track_geometry(envs[0], duel.seeds[0])
            self._lap = LapProgress(geometry)
            self._painter = MapPainter(geometry, 96 * SCALE)
        positions = car_positions(envs)
        self._lap.update(step, positions)
        if step % self.every == 0 or duel.finished:
            self.pictures.append(self._picture(duel, step, positions))

    def _picture(self, duel: Duel, step: int, positions: np.ndarray) -> np.ndarray:
        from PIL import Image, ImageDraw

        side = 96 * SCALE
        width = 3 * side + 2 * GAP_PX
        img = np.zeros((side + CAPTION_PX, width, 3), dtype=np.uint8)
        for p in range(2):
            frame = np.repeat(np.repeat(duel.frames[p], SCALE, axis=0), SCALE, axis=1)
            x = p * (side + GAP_PX)
            img[:side, x : x + side] = frame
            img[:2, x : x + side] = CAR_COLOURS[p]  # whose view: a bar in the player's colour
        leader, tiles, seconds = self._lap.gap()
        img[:side, 2 * (side + GAP_PX) :] = self._painter.draw(positions, on_top=leader)
        picture = Image.fromarray(img)
        draw = ImageDraw.Draw(picture)
        gap = "level" if leader is None else f"leader {PLAYERS[leader]}: +{tiles:.1f} tiles, {seconds:.2f} s"
        for p, name in enumerate(PLAYERS):
            t = duel.telemetry[p]
            draw.text((p * (side + GAP_PX) + 4, side + 2), f"{name}  {t.reward:6.1f} pts  {t.speed:4.1f} m/s",
                      fill=CAR_COLOURS[p])  # fmt: skip
        draw.text((2 * (side + GAP_PX) + 4, side + 2), f"step {step:4d}  {gap}", fill=(230, 230, 230))
        return np.asarray(picture)

    def save(self, path: Path, speedup: float = 1.0) -> Path:
        """Write the pictures as a looping GIF at `speedup` x real time."""
        from PIL import Image

        if not self.pictures:
            raise ValueError("no pictures to write: the replay raced no steps")
        frames = [Image.fromarray(p).quantize(colors=64, method=Image.Quantize.MEDIANCUT) for p in self.pictures]
        duration = max(int(round(1000 * self.every / (FPS * speedup))), 20)  # ms per picture (GIF: 10 ms units)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration, loop=0, optimize=True,
                       disposal=1)  # fmt: skip
        return path


__all__ = ["GifRecorder"]
