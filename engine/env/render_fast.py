"""The `fast` renderer: CarRacing-v3's 96x96 observation rasterised directly in numba.

Stock CarRacing-v3 draws a 1000x800 window (field, grass, road, car, dashboard,
score text) with pygame and then box-filters it down to 96x96 with `smoothscale`.
Each observation pixel is therefore, up to rounding, the area-weighted mix of the
polygon colours over its 10.4 x 8.3 window-pixel footprint. This renderer computes
that mix at 96x96 straight away, and never touches the 800,000 window pixels:

- the world (field, grass patches, road tiles and kerbs, car) is scan-converted in
  painter's order into SUBROWS sub-scanlines per output row, with the exact
  horizontal coverage of each span and coverage blending, then averaged;
- the dashboard bars are axis-aligned rectangles, whose area coverage is exact;
- the score text is rendered by pygame once per distinct string, area-averaged to
  the output grid once, and composited from a cache afterwards.

Geometry comes from the same places as the `exact` renderer: `camera(env)` and
`to_screen` (pygame's own snapped cos/sin) give the world -> window map, the
grass patches are `grass_vertices()`, the road is the live `env.road_vertices` /
`env.road_colors` (tile colours change when first touched, so they are read every
frame). Frames are close to stock, not equal (mean absolute difference about 0.2
grey levels over a drive); the same env state always gives the same bytes.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pygame
from gymnasium.envs.box2d.car_dynamics import SIZE, WHEEL_R, WHEEL_W, WHEEL_WHITE
from gymnasium.envs.box2d.car_racing import STATE_H, STATE_W, WINDOW_H, WINDOW_W, CarRacing
from numba import njit

from engine.env.render_exact import (
    FIELD_VERTICES,
    SCORE_CENTER,
    SCORE_FONT_SIZE,
    camera,
    grass_vertices,
)

SUBROWS = 4  # sub-scanlines per output row (vertical supersampling of the world)
SCALE_X = STATE_W / WINDOW_W  # output px per window px, horizontally (0.096)
SCALE_Y = STATE_H / WINDOW_H  # output px per window px, vertically (0.12)
DASH_TOP = WINDOW_H - 5 * WINDOW_H / 40.0  # window px (flipped picture): the dashboard's top edge
WORLD_ROWS = int(math.ceil(DASH_TOP * SCALE_Y))  # output rows that can show the world (84)
SPAN_GROW = 0.5 * SCALE_X  # output px added at each end of a world span: gfxdraw's aa outline
# smoothscale's fixed-point box filter returns a uniform grey v as v - 2 (v >= 2) and
# truncates; this offset (grey levels) turns the exact area mean into its output.
SMOOTHSCALE_BIAS = -1.5
TEXT_CACHE_MAX = 2048  # score strings kept as coverage patches (an episode shows ~1,100 at most)
HULL_POLYS = 4  # fixtures of the car hull
MAX_VERTS = 8  # vertices of the largest car polygon (HULL_POLY3)
STRIPE_HALF_W = WHEEL_W * SIZE  # m, half width of the wheel's grey stripe
STRIPE_R = WHEEL_R * SIZE  # m, wheel radius the stripe's ends are taken on
STRIPE_SPAN = 1.2  # rad, angular length of the stripe (car_dynamics.Car.draw)

# Dashboard geometry of CarRacing._render_indicators, window px on the flipped picture.
DASH_S = WINDOW_W / 40.0  # px, one bar slot horizontally
DASH_H = WINDOW_H / 40.0  # px, one bar slot vertically
# RGB 0-255 of the speed bar, the four ABS bars, the steering bar and the gyro bar.
DASH_COLORS = np.array(
    [(255, 255, 255), (0, 0, 255), (0, 0, 255), (51, 0, 255), (51, 0, 255), (0, 255, 0), (255, 0, 0)],
    dtype=np.float32,
)  # (7, 3)
DASH_MIN = 1e-4  # indicator values at or below this are not drawn (stock's render_if_min)


# -- numba kernels -----------------------------------------------------------------------------
# Scratch images are planar, (3, rows, STATE_W) float32, so that filling a span or
# averaging rows runs over contiguous memory in each channel.


@njit(cache=True, inline="always")
def _blend(buf, j, c, cov, r, g, b):
    # Coverage blending: the pixel moves `cov` of the way to the polygon colour.
    buf[0, j, c] += cov * (r - buf[0, j, c])
    buf[1, j, c] += cov * (g - buf[1, j, c])
    buf[2, j, c] += cov * (b - buf[2, j, c])


@njit(cache=True, inline="always")
def _edge_slopes(us, vs, slopes, n):
    # Each edge's du/dv once per polygon (0 for a horizontal edge, which _span skips).
    for k in range(n):
        k2 = k + 1 if k + 1 < n else 0
        dv = vs[k2] - vs[k]
        slopes[k] = (us[k2] - us[k]) / dv if dv != 0.0 else 0.0


@njit(cache=True, inline="always")
def _span(us, vs, slopes, n, v):
    """Where the line at height v crosses the convex polygon: (left, right) output px,
    left > right if it misses."""
    xl = np.inf
    xr = -np.inf
    for k in range(n):
        va = vs[k]
        vb = vs[k + 1 if k + 1 < n else 0]
        # Half-open in v, so a vertex on the line is counted once per side.
        if (va <= v < vb) or (vb <= v < va):
            x = us[k] + (v - va) * slopes[k]
            xl = min(xl, x)
            xr = max(xr, x)
    return xl, xr


@njit(cache=True, inline="always")
def _paint_span(buf, j, xl, xr, r, g, b, grow):
    # Sub-row j gets the span [xl - grow, xr + grow): interior pixels take the colour,
    # the two end pixels blend by the fraction of them the span covers.
    width = buf.shape[2]
    xl = max(xl - grow, 0.0)
    xr = min(xr + grow, float(width))
    if xr <= xl:
        return
    c0 = int(xl)
    c1 = min(int(xr), width - 1)
    if c0 == c1:
        _blend(buf, j, c0, np.float32(xr - xl), r, g, b)
        return
    _blend(buf, j, c0, np.float32(c0 + 1.0 - xl), r, g, b)
    # Slices, not index loops: numba then knows the indices are non-negative and
    # emits plain vector stores (an index loop is ~10x slower here).
    buf[0, j, c0 + 1 : c1] = r
    buf[1, j, c0 + 1 : c1] = g
    buf[2, j, c0 + 1 : c1] = b
    _blend(buf, j, c1, np.float32(xr - c1), r, g, b)


@njit(cache=True, inline="always")
def _fill_convex(buf, us, vs, slopes, n, r, g, b, sub, grow):
    """Scan-convert the convex polygon (us[:n], vs[:n]) (output px) into the sub-row
    buffer buf (3, rows * sub, STATE_W) float32, blending by horizontal coverage.
    slopes (MAX_VERTS,) is scratch."""
    vmin = vs[0]
    vmax = vs[0]
    for k in range(1, n):
        vmin = min(vmin, vs[k])
        vmax = max(vmax, vs[k])
    j0 = max(0, int(math.ceil(vmin * sub - 0.5)))
    j1 = min(buf.shape[1] - 1, int(math.floor(vmax * sub - 0.5)))
    if j1 < j0:
        return
    _edge_slopes(us, vs, slopes, n)
    for j in range(j0, j1 + 1):
        # Sample each sub-row on its centre line.
        xl, xr = _span(us, vs, slopes, n, (j + 0.5) / sub)
        if xl <= xr:
            _paint_span(buf, j, xl, xr, r, g, b, grow)


@njit(cache=True)
def _fill_background(buf, m, field, color, sub, grow, us, vs, slopes):
    """The field square (4, 2) (world units) over black. Every sub-row is written, so
    buf needs no clearing beforehand (that alone would cost as much as the fill)."""
    for k in range(4):
        us[k] = m[0, 0] * field[k, 0] + m[0, 1] * field[k, 1] + m[0, 2]
        vs[k] = m[1, 0] * field[k, 0] + m[1, 1] * field[k, 1] + m[1, 2]
    _edge_slopes(us, vs, slopes, 4)
    r = np.float32(color[0])
    g = np.float32(color[1])
    b = np.float32(color[2])
    width = buf.shape[2]
    for j in range(buf.shape[1]):
        xl, xr = _span(us, vs, slopes, 4, (j + 0.5) / sub)
        # Black where the span does not reach, including its two end pixels, which
        # _paint_span blends onto what is there.
        lo = width
        hi = width
        if xl <= xr:
            lo = min(max(int(xl - grow), 0), width)
            hi = max(min(int(math.ceil(xr + grow)), width), lo)
        for ch in range(3):
            buf[ch, j, 0 : lo + 1] = 0.0
            buf[ch, j, max(hi - 1, 0) : width] = 0.0
        if xl <= xr:
            _paint_span(buf, j, xl, xr, r, g, b, grow)


@njit(cache=True)
def _fill_quads(buf, m, quads, colors, one_color, sub, grow, us, vs, slopes):
    """Transform the world quads (N, 4, 2) by the affine map m (2, 3) and fill them in
    order, coloured by colors (N, 3) truncated to integers as stock does, or by
    one_color (3,) when colors has no rows."""
    per_quad = colors.shape[0] > 0
    r = np.float32(one_color[0])
    g = np.float32(one_color[1])
    b = np.float32(one_color[2])
    u_hi = buf.shape[2] + grow
    v_hi = buf.shape[1] / sub
    for i in range(quads.shape[0]):
        # Cull off-screen quads here, before the call: most of the 400 grass patches and
        # of the road are off-screen, and a call costs more than the test.
        umin = np.inf
        umax = -np.inf
        vmin = np.inf
        vmax = -np.inf
        for k in range(4):
            x = quads[i, k, 0]
            y = quads[i, k, 1]
            u = m[0, 0] * x + m[0, 1] * y + m[0, 2]
            v = m[1, 0] * x + m[1, 1] * y + m[1, 2]
            umin = min(umin, u)
            umax = max(umax, u)
            vmin = min(vmin, v)
            vmax = max(vmax, v)
            us[k] = u
            vs[k] = v
        if umax <= -grow or umin >= u_hi or vmax <= 0.0 or vmin >= v_hi:
            continue
        if per_quad:
            r = np.float32(int(colors[i, 0]))
            g = np.float32(int(colors[i, 1]))
            b = np.float32(int(colors[i, 2]))
        _fill_convex(buf, us, vs, slopes, 4, r, g, b, sub, grow)


@njit(cache=True)
def _fill_body(buf, m, pose, local, n, color, sub, us, vs, slopes):
    # Body transform (rotation, then translation), then the camera map m (2, 3).
    c = math.cos(pose[2])
    s = math.sin(pose[2])
    for k in range(n):
        x = c * local[k, 0] - s * local[k, 1] + pose[0]
        y = s * local[k, 0] + c * local[k, 1] + pose[1]
        us[k] = m[0, 0] * x + m[0, 1] * y + m[0, 2]
        vs[k] = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    _fill_convex(
        buf, us, vs, slopes, n, np.float32(color[0]), np.float32(color[1]), np.float32(color[2]), sub, 0.0
    )


@njit(cache=True)
def _fill_rect(img, x0, x1, y0, y1, color):
    """Blend the window rectangle [x0, x1) x [y0, y1) (flipped picture, px) into img
    (3, STATE_H, STATE_W) float32 by its exact area coverage of each output pixel."""
    u0 = max(x0 * (STATE_W / WINDOW_W), 0.0)
    u1 = min(x1 * (STATE_W / WINDOW_W), float(STATE_W))
    v0 = max(y0 * (STATE_H / WINDOW_H), 0.0)
    v1 = min(y1 * (STATE_H / WINDOW_H), float(STATE_H))
    if u1 <= u0 or v1 <= v0:
        return
    for row in range(int(v0), min(int(math.ceil(v1)), STATE_H)):
        cy = min(v1, row + 1.0) - max(v0, float(row))
        for col in range(int(u0), min(int(math.ceil(u1)), STATE_W)):
            cov = np.float32(cy * (min(u1, col + 1.0) - max(u0, float(col))))
            for ch in range(3):
                img[ch, row, col] += cov * (color[ch] - img[ch, row, col])


@njit(cache=True)
def _fill_pg_rect(img, xa, xb, ya, yb, color):
    # pygame.draw.polygon truncates the corners to integers and fills both end pixels.
    x0 = math.floor(min(xa, xb))
    x1 = math.floor(max(xa, xb)) + 1.0
    y0 = math.floor(min(ya, yb))
    y1 = math.floor(max(ya, yb)) + 1.0
    _fill_rect(img, x0, x1, y0, y1, color)


@njit(cache=True)
def _draw_car(buf, m, poses, phases, hull_local, hull_counts, wheel_local, car_colors, sub, us, vs, slopes):
    # As car_dynamics.Car.draw: each wheel then its grey stripe, then the hull's fixtures.
    stripe = np.empty((4, 2))
    for w in range(4):
        _fill_body(buf, m, poses[w], wheel_local, 4, car_colors[1], sub, us, vs, slopes)
        # The stripe spans STRIPE_SPAN of the wheel's rolling phase, clamped to the
        # wheel's ends where it runs over the top.
        s1 = math.sin(phases[w])
        s2 = math.sin(phases[w] + STRIPE_SPAN)
        c1 = math.cos(phases[w])
        c2 = math.cos(phases[w] + STRIPE_SPAN)
        if s1 > 0 and s2 > 0:
            continue
        if s1 > 0:
            c1 = np.sign(c1)
        if s2 > 0:
            c2 = np.sign(c2)
        stripe[0, 0] = -STRIPE_HALF_W
        stripe[0, 1] = STRIPE_R * c1
        stripe[1, 0] = STRIPE_HALF_W
        stripe[1, 1] = STRIPE_R * c1
        stripe[2, 0] = STRIPE_HALF_W
        stripe[2, 1] = STRIPE_R * c2
        stripe[3, 0] = -STRIPE_HALF_W
        stripe[3, 1] = STRIPE_R * c2
        _fill_body(buf, m, poses[w], stripe, 4, car_colors[2], sub, us, vs, slopes)
    for f in range(hull_local.shape[0]):
        _fill_body(buf, m, poses[4], hull_local[f], hull_counts[f], car_colors[0], sub, us, vs, slopes)


@njit(cache=True)
def _draw_dashboard(img, dash):
    # CarRacing._render_indicators, on the flipped picture (window px).
    s = DASH_S
    h = DASH_H
    _fill_pg_rect(img, 0.0, float(WINDOW_W), DASH_TOP, float(WINDOW_H), np.zeros(3, np.float32))
    for k in range(5):  # speed, then the ABS sensors: vertical bars up from y = H - h
        if abs(dash[k]) > DASH_MIN:
            place = 5.0 if k == 0 else 6.0 + k
            val = (0.02 if k == 0 else 0.01) * dash[k]
            _fill_pg_rect(
                img, place * s, (place + 1) * s, WINDOW_H - (h + h * val), WINDOW_H - h, DASH_COLORS[k]
            )
    for k in range(5, 7):  # steering and gyro: horizontal bars
        if abs(dash[k]) > DASH_MIN:
            place = 20.0 if k == 5 else 30.0
            val = (-10.0 if k == 5 else -0.8) * dash[k]
            _fill_pg_rect(
                img, place * s, (place + val) * s, WINDOW_H - 4 * h, WINDOW_H - 2 * h, DASH_COLORS[k]
            )


@njit(cache=True)
def _render_kernel(
    out, buf, img, planar, m, field, field_color, grass, grass_color, road, road_colors,
    poses, phases, hull_local, hull_counts, wheel_local, car_colors, dash,
    text, text_box, text_row, text_col, sub, grow,
):  # fmt: skip
    """One observation into out (STATE_H, STATE_W, 3) uint8.

    Scratch: buf (3, WORLD_ROWS * sub, STATE_W) and img (3, STATE_H, STATE_W) float32,
    planar (3, STATE_H, STATE_W) uint8.
    m (2, 3): world -> output px. field (4, 2), grass (G, 4, 2), road (P, 4, 2): world
    quads; road_colors (P, 3). poses (5, 3): x, y, angle of wheels 0-3 and the hull;
    phases (4,) rad. hull_local (4, 8, 2) with hull_counts (4,); wheel_local (4, 2).
    car_colors (3, 3) float32: hull, wheel, stripe. dash (7,): speed, 4 wheel omegas,
    wheel 0 joint angle, hull angular velocity. text / text_box (h, w) float32: the
    score's grey level and box coverage at output resolution, at (text_row, text_col).
    """
    us = np.empty(MAX_VERTS)
    vs = np.empty(MAX_VERTS)
    slopes = np.empty(MAX_VERTS)
    no_colors = np.empty((0, 3))
    # World, in stock's order: field, grass, road, then the car.
    _fill_background(buf, m, field, field_color, sub, grow, us, vs, slopes)
    _fill_quads(buf, m, grass, no_colors, grass_color, sub, grow, us, vs, slopes)
    _fill_quads(buf, m, road, road_colors, field_color, sub, grow, us, vs, slopes)  # per-tile colours
    _draw_car(buf, m, poses, phases, hull_local, hull_counts, wheel_local, car_colors, sub, us, vs, slopes)

    # Box filter: each output row is the mean of its sub-rows.
    inv = np.float32(1.0 / sub)
    for ch in range(3):
        for row in range(buf.shape[1] // sub):
            j = row * sub
            for c in range(STATE_W):
                img[ch, row, c] = buf[ch, j, c]
            for j in range(row * sub + 1, row * sub + sub):
                for c in range(STATE_W):
                    img[ch, row, c] += buf[ch, j, c]
            for c in range(STATE_W):
                img[ch, row, c] *= inv
        for row in range(buf.shape[1] // sub, STATE_H):
            for c in range(STATE_W):
                img[ch, row, c] = 0.0

    _draw_dashboard(img, dash)

    # Score text: an opaque black box with grey antialiased digits.
    for i in range(text.shape[0]):
        row = text_row + i
        for j in range(text.shape[1]):
            col = text_col + j
            if 0 <= row < STATE_H and 0 <= col < STATE_W:
                keep = 1.0 - text_box[i, j]
                for ch in range(3):
                    img[ch, row, col] = img[ch, row, col] * keep + text[i, j]

    # smoothscale's rounding, into planar bytes, then interleaved to (H, W, RGB). Both
    # loops index from 0 over flat arrays, which numba vectorises; a single loop
    # writing out[row, c, ch] from floats is ~6x slower.
    flat = img.reshape(-1)
    planes = planar.reshape(-1)
    for i in range(flat.size):
        x = flat[i] + np.float32(SMOOTHSCALE_BIAS)
        planes[i] = np.uint8(min(max(x, np.float32(0.0)), np.float32(255.0)))
    o = out.reshape(-1)
    n = STATE_H * STATE_W
    for i in range(n):
        o[3 * i] = planes[i]
        o[3 * i + 1] = planes[n + i]
        o[3 * i + 2] = planes[2 * n + i]


# -- renderer ----------------------------------------------------------------------------------


def _area_weights(start: int, length: int, n_out: int, n_window: int) -> tuple[int, np.ndarray]:
    """Box-filter weights of `length` window pixels from `start` onto the n_out output
    pixels spanning n_window window pixels: (first output index, (k, length) float64),
    each entry the fraction of an output pixel that a window pixel covers."""
    scale = n_out / n_window
    px = np.arange(start, start + length, dtype=np.float64)
    inside = (px >= 0) & (px < n_window)  # pixels off the window are clipped by blit
    lo = px * scale
    hi = (px + 1) * scale
    first = max(int(math.floor(lo.min())), 0)
    last = min(int(math.ceil(hi.max())), n_out)
    o = np.arange(first, last, dtype=np.float64)[:, None]
    w = np.clip(np.minimum(hi[None, :], o + 1) - np.maximum(lo[None, :], o), 0.0, None)
    return first, w * inside[None, :]


_scratch = threading.local()

# The score text's patches by string, shared by every renderer of the process: a patch
# depends only on the string, and with one cache per renderer each of a tournament's cars
# rendered text for most of its steps (a third of the env step's time), where shared
# they are made once per string.
_TEXT_PATCHES: dict[str, tuple[np.ndarray, np.ndarray, int, int]] = {}


def _scratch_images(subrows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scratch images shared by every renderer of this thread: each frame overwrites them
    whole, and one set (~0.5 MB) stays in cache where a set per environment would not
    (a worker stepping 32 environments would otherwise cycle through 16 MB)."""
    images = getattr(_scratch, "images", {})
    _scratch.images = images
    if subrows not in images:
        images[subrows] = (
            np.zeros((3, WORLD_ROWS * subrows, STATE_W), dtype=np.float32),  # sub-scanlines
            np.zeros((3, STATE_H, STATE_W), dtype=np.float32),  # output, float
            np.zeros((3, STATE_H, STATE_W), dtype=np.uint8),  # output, planar bytes
        )
    return images[subrows]


class FastRenderer:
    """Draws `state_pixels` frames close to gymnasium's CarRacing-v3, directly at 96x96."""

    def __init__(self, subrows: int = SUBROWS) -> None:
        pygame.font.init()
        self._font = pygame.font.Font(pygame.font.get_default_font(), SCORE_FONT_SIZE)
        self._sub = int(subrows)
        self._grass = grass_vertices()  # (400, 4, 2) world units
        self._field = np.ascontiguousarray(FIELD_VERTICES)  # (4, 2) world units
        self._m = np.zeros((2, 3))  # world -> output px
        self._poses = np.zeros((5, 3))  # x, y, angle: wheels 0-3, hull
        self._phases = np.zeros(4)  # rad
        self._dash = np.zeros(7)
        self._field_color = np.zeros(3)
        self._grass_color = np.zeros(3)
        self._colors: tuple = (None, None)  # env.bg_color, env.grass_color the two above were made from
        self._car = None
        self._bodies: list = []
        self._hull_local = np.zeros((HULL_POLYS, MAX_VERTS, 2))
        self._hull_counts = np.zeros(HULL_POLYS, dtype=np.int64)
        self._wheel_local = np.zeros((4, 2))
        self._car_colors = np.zeros((3, 3), dtype=np.float32)

    def _load_car(self, car) -> None:
        # Fixture shapes are fixed for a car's lifetime: read them once, not per frame.
        self._car = car
        self._bodies = [*car.wheels, car.hull]
        fixtures = car.hull.fixtures
        if len(fixtures) != HULL_POLYS:
            raise ValueError(f"expected a hull of {HULL_POLYS} fixtures, got {len(fixtures)}")
        self._hull_local[:] = 0.0
        for f, fixture in enumerate(fixtures):
            verts = np.array(fixture.shape.vertices, dtype=np.float64)
            self._hull_local[f, : len(verts)] = verts
            self._hull_counts[f] = len(verts)
        self._wheel_local[:] = np.array(car.wheels[0].fixtures[0].shape.vertices, dtype=np.float64)
        self._car_colors[0] = [int(c * 255) for c in car.hull.color]
        self._car_colors[1] = [int(c * 255) for c in car.wheels[0].color]
        self._car_colors[2] = WHEEL_WHITE

    def _score(self, reward: float) -> tuple[np.ndarray, np.ndarray, int, int]:
        """The score text as output-resolution patches: (grey (h, w), box coverage (h, w),
        row, col), float32, built once per distinct string in this process."""
        key = f"{reward:04.0f}"
        patch = _TEXT_PATCHES.get(key)
        if patch is None:
            if len(_TEXT_PATCHES) >= TEXT_CACHE_MAX:
                _TEXT_PATCHES.clear()
            surf = self._font.render(key, True, (255, 255, 255), (0, 0, 0))
            rect = surf.get_rect()
            rect.center = SCORE_CENTER
            grey = pygame.surfarray.array3d(surf)[:, :, 0].T.astype(np.float64)  # (th, tw), white text
            row, wy = _area_weights(rect.top, rect.height, STATE_H, WINDOW_H)
            col, wx = _area_weights(rect.left, rect.width, STATE_W, WINDOW_W)
            text = (wy @ grey @ wx.T).astype(np.float32)
            box = np.outer(wy.sum(axis=1), wx.sum(axis=1)).astype(np.float32)
            patch = _TEXT_PATCHES[key] = (text, box, row, col)
        return patch

    def render(self, env: CarRacing) -> np.ndarray:
        """The observation of `env` (a CarRacing after reset). Returns (96, 96, 3) uint8,
        C-contiguous, a new array each call."""
        car = env.car
        if car is not self._car:
            self._load_car(car)
        zoom, (tx, ty), angle = camera(env)
        # The camera's affine map: to_screen of the world origin o and unit vectors ex, ey
        # (the same float operations as to_screen, on Python floats: a numpy call for
        # three points cost more than the arithmetic), then the flip and the scale.
        c, s = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
        ox, oy = (c * 0.0 - s * 0.0) * zoom + tx, (s * 0.0 + c * 0.0) * zoom + ty
        exx, exy = (c * 1.0 - s * 0.0) * zoom + tx, (s * 1.0 + c * 0.0) * zoom + ty
        eyx, eyy = (c * 0.0 - s * 1.0) * zoom + tx, (s * 0.0 + c * 1.0) * zoom + ty
        m = self._m
        m[0, 0] = (exx - ox) * SCALE_X
        m[0, 1] = (eyx - ox) * SCALE_X
        m[0, 2] = ox * SCALE_X
        m[1, 0] = -(exy - oy) * SCALE_Y
        m[1, 1] = -(eyy - oy) * SCALE_Y
        m[1, 2] = (WINDOW_H - oy) * SCALE_Y

        poses = self._poses
        for i, body in enumerate(self._bodies):
            x, y = body.position
            poses[i, 0] = x
            poses[i, 1] = y
            poses[i, 2] = body.angle
        wheels = car.wheels
        dash = self._dash
        vx, vy = car.hull.linearVelocity
        dash[0] = math.sqrt(vx * vx + vy * vy)
        for w in range(4):
            self._phases[w] = wheels[w].phase
            dash[1 + w] = wheels[w].omega
        dash[5] = wheels[0].joint.angle
        dash[6] = car.hull.angularVelocity
        if env.bg_color is not self._colors[0] or env.grass_color is not self._colors[1]:  # set at reset
            self._colors = (env.bg_color, env.grass_color)
            self._field_color[:] = env.bg_color
            self._grass_color[:] = env.grass_color
            np.trunc(self._field_color, out=self._field_color)  # stock hands pygame integer colours
            np.trunc(self._grass_color, out=self._grass_color)
        text, box, row, col = self._score(env.reward)

        out = np.empty((STATE_H, STATE_W, 3), dtype=np.uint8)
        _render_kernel(
            out, *_scratch_images(self._sub), m, self._field, self._field_color, self._grass,
            self._grass_color, env.road_vertices, env.road_colors, poses, self._phases,
            self._hull_local, self._hull_counts, self._wheel_local, self._car_colors, dash,
            text, box, row, col, self._sub, SPAN_GROW,
        )  # fmt: skip
        return out
