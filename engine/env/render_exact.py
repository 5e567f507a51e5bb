"""The `exact` renderer: CarRacing-v3's observation, bit for bit, for less work.

Stock CarRacing-v3 draws every step by loading a font, rotating ~740 polygons one
Vector2 at a time in Python whether they are visible or not, and allocating a fresh
1000x800 surface. This renderer keeps every pygame call that touches pixels
(gfxdraw polygons, the car, the dashboard, flip, smoothscale) with the same
arguments in the same order, and removes the rest:

- polygons are rotated, scaled and culled as arrays, with the cos/sin pygame's
  `Vector2.rotate_rad` itself uses (read off a rotated unit vector), so the
  coordinates handed to gfxdraw are the very same doubles;
- the 400 grass patches are built once;
- the font is loaded once and each score text rendered once;
- the drawing surface is reused and cleared instead of reallocated.
"""

from __future__ import annotations

import numba
import numpy as np
import pygame
from gymnasium.envs.box2d.car_racing import (
    GRASS_DIM,
    MAX_SHAPE_DIM,
    PLAYFIELD,
    SCALE,
    STATE_H,
    STATE_W,
    WINDOW_H,
    WINDOW_W,
    ZOOM,
)
from pygame import gfxdraw

SCORE_FONT_SIZE = 42  # points, as in CarRacing-v3
SCORE_CENTER = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)  # pixels on the 1000x800 window
TEXT_CACHE_MAX = 2048  # rendered score strings kept (an episode shows ~1,100 at most)

# Rendered score strings, shared by every renderer of the process (a text depends only on
# its string; one cache per renderer rendered text for most steps of a tournament's cars).
_TEXTS: dict[str, pygame.Surface] = {}


def grass_vertices() -> np.ndarray:
    """CarRacing-v3's 400 grass patches in world coordinates, in drawing order. (400, 4, 2)"""
    patches = []
    for x in range(-20, 20, 2):
        for y in range(-20, 20, 2):
            patches.append(
                [
                    (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + 0),
                    (GRASS_DIM * x + 0, GRASS_DIM * y + 0),
                    (GRASS_DIM * x + 0, GRASS_DIM * y + GRASS_DIM),
                    (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + GRASS_DIM),
                ]
            )
    return np.array(patches, dtype=np.float64)


FIELD_VERTICES = np.array(
    [(PLAYFIELD, PLAYFIELD), (PLAYFIELD, -PLAYFIELD), (-PLAYFIELD, -PLAYFIELD), (-PLAYFIELD, PLAYFIELD)],
    dtype=np.float64,
)  # (4, 2) the background square, world units


def camera(env) -> tuple[float, tuple[float, float], float]:
    """CarRacing-v3's camera for the current step: (zoom px/unit, translation px, angle rad)."""
    angle = -env.car.hull.angle
    zoom = 0.1 * SCALE * max(1 - env.t, 0) + ZOOM * SCALE * min(env.t, 1)
    scroll_x = -(env.car.hull.position[0]) * zoom
    scroll_y = -(env.car.hull.position[1]) * zoom
    trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
    return zoom, (WINDOW_W / 2 + trans[0], WINDOW_H / 4 + trans[1]), angle


def to_screen(vertices: np.ndarray, zoom: float, trans: tuple[float, float], angle: float) -> np.ndarray:
    """World (..., 2) float64 -> window pixels (..., 2), exactly as CarRacing-v3 computes them.

    `Vector2.rotate_rad` snaps near-right angles and goes through degrees, so its cos
    and sin are taken from pygame itself rather than from `np.cos(angle)`.
    """
    c, s = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
    x = vertices[..., 0]
    y = vertices[..., 1]
    out = np.empty_like(vertices)
    out[..., 0] = (c * x - s * y) * zoom + trans[0]
    out[..., 1] = (s * x + c * y) * zoom + trans[1]
    return out


def visible(screen: np.ndarray) -> np.ndarray:
    """CarRacing-v3's cull: a polygon is drawn if any vertex lies in the window grown by
    MAX_SHAPE_DIM. screen (N, 4, 2) -> (N,) bool"""
    inside = (
        (screen[..., 0] >= -MAX_SHAPE_DIM)
        & (screen[..., 0] <= WINDOW_W + MAX_SHAPE_DIM)
        & (screen[..., 1] >= -MAX_SHAPE_DIM)
        & (screen[..., 1] <= WINDOW_H + MAX_SHAPE_DIM)
    )
    return inside.any(axis=-1)


@numba.njit(cache=True, inline="always")  # inlined into fill_polygon: one compile, not two
def _wrap_int32(v: int) -> int:
    """C int arithmetic wraps at 32 bits; numba's int64 does not."""
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@numba.njit(cache=True)
def fill_polygon(pix: np.ndarray, vx: np.ndarray, vy: np.ndarray, color: int) -> None:
    """SDL_gfx's `filledPolygon` (what `gfxdraw.filled_polygon` runs), pixel for pixel.

    pix: (H, W) uint32 surface pixels, written in place. vx, vy: (N,) int64 vertex
    coordinates, already truncated to integers as gfxdraw does. color: mapped pixel value.
    Scanlines use SDL_gfx's 16.16 fixed point edge crossings and its rounding; only the
    per-row qsort and per-pixel call overhead of the C version are gone.
    """
    h, w = pix.shape
    n = vx.shape[0]
    miny = vy[0]
    maxy = vy[0]
    for i in range(1, n):
        if vy[i] < miny:
            miny = vy[i]
        elif vy[i] > maxy:
            maxy = vy[i]
    ints = np.empty(n, np.int64)
    for y in range(max(miny, 0), min(maxy, h - 1) + 1):
        k = 0
        for i in range(n):
            i1 = n - 1 if i == 0 else i - 1
            y1 = vy[i1]
            y2 = vy[i]
            if y1 < y2:
                x1 = vx[i1]
                x2 = vx[i]
            elif y1 > y2:
                y1, y2 = y2, y1
                x1 = vx[i]
                x2 = vx[i1]
            else:
                continue
            if (y1 <= y < y2) or (y == maxy and y1 < y <= y2):
                ints[k] = _wrap_int32(((65536 * (y - y1)) // (y2 - y1)) * (x2 - x1) + 65536 * x1)
                k += 1
        for a in range(1, k):  # insertion sort: k is 2 for convex polygons
            v = ints[a]
            b = a - 1
            while b >= 0 and ints[b] > v:
                ints[b + 1] = ints[b]
                b -= 1
            ints[b + 1] = v
        row = pix[y]
        for a in range(0, k - 1, 2):
            xa = _wrap_int32(ints[a] + 1)
            xa = (xa >> 16) + ((xa & 32768) >> 15)
            xb = _wrap_int32(ints[a + 1] - 1)
            xb = (xb >> 16) + ((xb & 32768) >> 15)
            if xa > xb:
                xa, xb = xb, xa
            if xb < 0 or xa > w - 1:
                continue
            row[max(xa, 0) : min(xb, w - 1) + 1] = color


class ExactRenderer:
    """Draws `state_pixels` frames bit-identical to gymnasium's CarRacing-v3."""

    def __init__(self) -> None:
        pygame.font.init()
        self._font = pygame.font.Font(pygame.font.get_default_font(), SCORE_FONT_SIZE)
        self._surf = pygame.Surface((WINDOW_W, WINDOW_H))
        self._pix = pygame.surfarray.pixels2d(self._surf).T  # (H, W) uint32 view, kept
        self._flipped = pygame.Surface((WINDOW_W, WINDOW_H))
        self._small = pygame.Surface((STATE_W, STATE_H))
        self._grass = grass_vertices()

    def _score(self, reward: float) -> pygame.Surface:
        key = f"{reward:04.0f}"
        text = _TEXTS.get(key)
        if text is None:
            if len(_TEXTS) >= TEXT_CACHE_MAX:
                _TEXTS.clear()
            text = _TEXTS[key] = self._font.render(key, True, (255, 255, 255), (0, 0, 0))
        return text

    def _polygon(self, screen: np.ndarray, color) -> None:
        """gfxdraw.aapolygon then filled_polygon, as CarRacing draws each polygon.
        screen: (4, 2) float64 window pixels."""
        gfxdraw.aapolygon(self._surf, screen.tolist(), color)
        v = screen.astype(np.int64)  # gfxdraw truncates toward zero to Sint16
        fill_polygon(self._pix, v[:, 0], v[:, 1], self._surf.map_rgb(color))

    def render(self, env) -> np.ndarray:
        """The observation of `env` (a CarRacing after reset). Returns (96, 96, 3) uint8."""
        surf = self._surf
        surf.fill((0, 0, 0))
        zoom, trans, angle = camera(env)

        field = to_screen(FIELD_VERTICES, zoom, trans, angle)
        self._polygon(field, env.bg_color)

        grass = to_screen(self._grass, zoom, trans, angle)
        for poly in grass[visible(grass)]:
            self._polygon(poly, env.grass_color)

        road = to_screen(env.road_vertices, zoom, trans, angle)
        shown = np.flatnonzero(visible(road))
        colors = env.road_colors[shown].astype(np.int64).tolist()  # int() truncation, as stock
        for poly, color in zip(road[shown], colors):
            self._polygon(poly, color)

        env.car.draw(surf, zoom, trans, angle, False)

        # transform.flip, into a surface kept between frames instead of a new one.
        flipped = pygame.surfarray.pixels2d(self._flipped).T  # (H, W) uint32
        np.copyto(flipped, self._pix[::-1])
        del flipped  # unlock before pygame blits onto it
        # The dashboard is drawn on the flipped picture, through CarRacing's own method.
        env.surf = self._flipped
        env._render_indicators(WINDOW_W, WINDOW_H)
        text = self._score(env.reward)
        rect = text.get_rect()
        rect.center = SCORE_CENTER
        env.surf.blit(text, rect)

        pygame.transform.smoothscale(env.surf, (STATE_W, STATE_H), self._small)
        return np.transpose(pygame.surfarray.array3d(self._small), (1, 0, 2))
