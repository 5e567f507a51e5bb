"""The exact renderer's pygame tier: stock CarRacing-v3's own drawing calls, minus its waste.

Used by `ExactRenderer` until its numba kernel (engine.env.raster_exact) is compiled, so
that a first race on a fresh install does not wait seconds for the compiler: the pixels
come from the very pygame-ce and SDL_gfx calls stock makes (gfxdraw's outline and filled
polygon, the car's own `draw`, the dashboard's `_render_indicators`, the font blit,
`smoothscale`), so the frames are stock's, bit for bit. What is gone:

- polygons are rotated, scaled and culled as arrays, with the cos/sin pygame's
  `Vector2.rotate_rad` itself uses (read off a rotated unit vector), so the coordinates
  handed to gfxdraw are the very same doubles;
- the 400 grass patches are built once, the font loaded once, each score text rendered
  once per process;
- the surfaces are reused (cleared) instead of allocated every frame, and the flip is a
  copy into a kept surface.
"""

from __future__ import annotations

import threading

import numpy as np
import pygame
from gymnasium.envs.box2d.car_racing import MAX_SHAPE_DIM, STATE_H, STATE_W, WINDOW_H, WINDOW_W
from pygame import gfxdraw

TEXT_CACHE_MAX = 2048  # rendered score strings kept (an episode shows ~1,100 at most)

# Rendered score surfaces by string, shared by every renderer of the process.
_TEXTS: dict[str, pygame.Surface] = {}


def to_screen(vertices: np.ndarray, c: float, s: float, zoom: float, trans: tuple[float, float]) -> np.ndarray:
    """World (..., 2) float64 -> window pixels (..., 2) float64, exactly as CarRacing-v3
    computes them; (c, s): pygame's cos and sin of the camera angle."""
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


# The window-size surfaces a render draws on, one set per thread, shared by that thread's renderers: a
# render overwrites all of them before it reads any, and a process steps its cars one after another, so
# a duel's two cars need one set (6.4 MB), not one each. Threads of their own (a server's race beside a
# test's) get their own set.
_SCRATCH = threading.local()


def _scratch() -> threading.local:
    if not hasattr(_SCRATCH, "surf"):
        _SCRATCH.surf = pygame.Surface((WINDOW_W, WINDOW_H))
        _SCRATCH.flipped = pygame.Surface((WINDOW_W, WINDOW_H))
        _SCRATCH.small = pygame.Surface((STATE_W, STATE_H))
    return _SCRATCH


class PygameRenderer:
    """Stock's drawing calls on kept surfaces. font: the score's pygame Font; grass (G, 4, 2)
    and field (4, 2): world quads; score_center: the text's centre (window px)."""

    def __init__(self, font: pygame.font.Font, grass: np.ndarray, field: np.ndarray, score_center) -> None:
        self._font = font
        self._grass = grass
        self._field = field
        self._score_center = score_center

    def _text(self, reward: float) -> pygame.Surface:
        key = f"{reward:04.0f}"
        text = _TEXTS.get(key)
        if text is None:
            if len(_TEXTS) >= TEXT_CACHE_MAX:
                _TEXTS.clear()
            text = _TEXTS[key] = self._font.render(key, True, (255, 255, 255), (0, 0, 0))
        return text

    @staticmethod
    def _polygon(surf: pygame.Surface, screen: np.ndarray, color) -> None:
        # CarRacing._draw_colored_polygon's two calls. screen (4, 2) float64 window px.
        points = screen.tolist()
        gfxdraw.aapolygon(surf, points, color)
        gfxdraw.filled_polygon(surf, points, color)

    def render(self, env, camera: tuple, surface: np.ndarray | None = None) -> np.ndarray:
        """The observation of `env`; camera: (zoom, translation, angle, cos, sin) as
        render_exact computes it. surface (WINDOW_H, WINDOW_W) uint32, if given, receives
        the flipped window. Returns (96, 96, 3) uint8, a new array."""
        zoom, trans, angle, c, s = camera
        scratch = _scratch()  # this thread's surfaces, looked up now: a renderer may be built in another thread
        surf, flipped_surf, small = scratch.surf, scratch.flipped, scratch.small
        surf.fill((0, 0, 0))
        self._polygon(surf, to_screen(self._field, c, s, zoom, trans), env.bg_color)
        grass = to_screen(self._grass, c, s, zoom, trans)
        for poly in grass[visible(grass)]:
            self._polygon(surf, poly, env.grass_color)
        road = to_screen(env.road_vertices, c, s, zoom, trans)
        shown = np.flatnonzero(visible(road))
        colors = env.road_colors[shown].astype(np.int64).tolist()  # int() truncation, as stock
        for poly, color in zip(road[shown], colors):
            self._polygon(surf, poly, color)
        env.car.draw(surf, zoom, trans, angle, False)

        # transform.flip, into a kept surface.
        flipped = pygame.surfarray.pixels2d(flipped_surf)  # (W, H) uint32 view
        flipped[:] = pygame.surfarray.pixels2d(surf)[:, ::-1]
        del flipped  # unlock before pygame draws on it
        # The dashboard, through CarRacing's own method, on the flipped picture.
        kept = env.__dict__.get("surf")
        env.surf = flipped_surf
        try:
            env._render_indicators(WINDOW_W, WINDOW_H)
        finally:
            env.surf = kept
        text = self._text(env.reward)
        rect = text.get_rect()
        rect.center = self._score_center
        flipped_surf.blit(text, rect)
        if surface is not None:
            surface[:] = pygame.surfarray.pixels2d(flipped_surf).T
        pygame.transform.smoothscale(flipped_surf, (STATE_W, STATE_H), small)
        return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(small), (1, 0, 2)))
