"""The track map as an RGB image: the road tiles from above, the start line, a dot per car.

The outline is drawn once per track and size (`MapPainter`), the dots on a copy of it per
frame, so a frame costs a copy of a few kilobytes. Road tiles are filled where they cover a
pixel centre, and the centre line is drawn on top: on a small map (a half-block map is about
26 pixels across at 80x24) the road is narrower than a pixel and would otherwise break up.
"""

from __future__ import annotations

import numpy as np

from engine.race.track_map import TrackGeometry

BACKGROUND = (0, 0, 0)  # RGB 0-255, as the margins a frame view leaves
ROAD = (120, 120, 128)
START = (255, 255, 255)
CAR_COLOURS = ((0, 200, 255), (255, 140, 0))  # players A, B: the map's dots and their names in the TUI
MARGIN = 0.06  # of the side, left blank around the track


class MapPainter:
    """Draws `geometry` into a square `size` x `size` image, with cars as dots.

    Args:
        geometry: the track (engine.race.track_map.TrackGeometry).
        size: side of the image in pixels (>= 4).
    """

    def __init__(self, geometry: TrackGeometry, size: int):
        self.geometry, self.size = geometry, int(max(size, 4))
        x0, y0, x1, y1 = geometry.extent()
        span = max(x1 - x0, y1 - y0, 1e-6)
        inner = self.size * (1 - 2 * MARGIN)
        self.scale = inner / span  # pixels per metre
        # centre the track; image rows grow downwards, world y upwards
        self.offset = np.array([(self.size - (x1 - x0) * self.scale) / 2 - x0 * self.scale,
                                (self.size - (y1 - y0) * self.scale) / 2 + y1 * self.scale])  # fmt: skip
        self.base = self._outline()
        self.dot = max(1, round(self.size / (40 if self.size < 64 else 64)))  # dot radius, pixels

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) world metres -> (..., 2) float pixel coordinates (column, row)."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([xy[..., 0] * self.scale + self.offset[0], self.offset[1] - xy[..., 1] * self.scale], axis=-1)

    def _outline(self) -> np.ndarray:
        img = np.empty((self.size, self.size, 3), dtype=np.uint8)
        img[:] = BACKGROUND
        quads = self.to_pixels(self.geometry.tiles)  # (N, 4, 2)
        for quad in quads:
            lo = np.clip(np.floor(quad.min(axis=0)).astype(int), 0, self.size - 1)
            hi = np.clip(np.ceil(quad.max(axis=0)).astype(int), 0, self.size - 1)
            cols, rows = np.meshgrid(np.arange(lo[0], hi[0] + 1) + 0.5, np.arange(lo[1], hi[1] + 1) + 0.5)
            inside_pos = np.ones(cols.shape, bool)
            inside_neg = np.ones(cols.shape, bool)
            for k in range(4):  # a convex quad: the pixel centre is on one side of every edge
                (ax, ay), (bx, by) = quad[k], quad[(k + 1) % 4]
                cross = (bx - ax) * (rows - ay) - (by - ay) * (cols - ax)
                inside_pos &= cross >= 0
                inside_neg &= cross <= 0
            inside = inside_pos | inside_neg
            img[rows[inside].astype(int), cols[inside].astype(int)] = ROAD
        centre = self.to_pixels(np.vstack([self.geometry.centre, self.geometry.centre[:1]]))
        for a, b in zip(centre[:-1], centre[1:]):
            n = int(np.ceil(np.abs(b - a).max())) + 1
            pts = np.clip(np.round(a + np.linspace(0, 1, n)[:, None] * (b - a)).astype(int), 0, self.size - 1)
            img[pts[:, 1], pts[:, 0]] = ROAD
        c0, c1 = self.to_pixels(self.geometry.centre[0]), self.to_pixels(self.geometry.centre[1])
        normal = np.array([-(c1 - c0)[1], (c1 - c0)[0]])
        normal = normal / max(np.linalg.norm(normal), 1e-9)
        half = max(1.0, 7.0 * self.scale)  # the start line across the road (about half its 13 m width each side)
        for t in np.linspace(-half, half, int(2 * half) + 2):
            c, r = np.clip(np.round(c0 + t * normal).astype(int), 0, self.size - 1)
            img[r, c] = START
        return img

    def draw(self, positions: np.ndarray | None, on_top: int | None = None) -> np.ndarray:
        """(size, size, 3) uint8: the outline with a dot per car at `positions` ((P, 2) metres),
        car `on_top` drawn last (default the last player). On maps of 64 pixels and more the dots
        are discs with a dark rim, so two cars side by side stay two dots."""
        img = self.base.copy()
        if positions is None:
            return img
        pixels = self.to_pixels(positions)
        order = list(range(len(pixels)))
        if on_top is not None:
            order.remove(on_top)
            order.append(on_top)
        r = self.dot
        for p in order:
            c, row = pixels[p]
            ci, ri = int(c), int(row)
            if self.size < 64:  # a few half-block pixels: a square dot
                img[max(ri - r, 0) : max(ri + r + 1, 0), max(ci - r, 0) : max(ci + r + 1, 0)] = CAR_COLOURS[p % 2]
                continue
            ys, xs = np.ogrid[-r - 1 : r + 2, -r - 1 : r + 2]
            d2 = ys * ys + xs * xs
            for mask, colour in ((d2 <= (r + 1) ** 2, BACKGROUND), (d2 <= r * r, CAR_COLOURS[p % 2])):
                yy, xx = np.nonzero(mask)
                yy, xx = yy + ri - r - 1, xx + ci - r - 1
                ok = (yy >= 0) & (yy < self.size) & (xx >= 0) & (xx < self.size)
                img[yy[ok], xx[ok]] = colour
        return img


__all__ = ["CAR_COLOURS", "MapPainter"]
