"""The `exact` renderer: CarRacing-v3's observation, bit for bit, in one numba call.

Stock CarRacing-v3 draws every step by loading a font, rotating ~740 polygons one
Vector2 at a time in Python whether they are visible or not, drawing a 1000x800 window
with pygame-ce and SDL_gfx, flipping it and shrinking it to 96x96 with smoothscale. This
renderer gathers the step's state (camera, car bodies, dashboard values, score text) in
a few lines of Python and hands it to `raster_exact.render_frame`, which does all the
pixel work with the integer arithmetic of those C routines, without ever holding the
window (see that module for how).

Colours go through pygame itself (gfxdraw's and draw's own mapping, read back from a
one-pixel surface), the score text is rendered by pygame's font once per string and
blitted onto a black surface of the window's format once, so what the kernel copies are
the very pixels stock's blit writes.

Tiers: the kernel takes seconds to compile, once per install and CPU (numba caches it).
So that a first race does not wait for that, a process whose kernel is not in numba's
cache draws with the pygame tier (engine.env.render_pygame: stock's own calls, the same
bytes) while one background process (`python -m engine.env.render_exact`, niced) compiles
the kernel into the cache; the next frame after it exits is drawn by the kernel. Set
VMC_DUEL_EXACT_KERNEL=inline to compile in the process at first use instead (benchmarks
do, so that they time the kernel from the start).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pygame
from gymnasium.envs.box2d.car_dynamics import WHEEL_WHITE
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

from engine.env import raster_exact as rx
from engine.env.render_pygame import PygameRenderer

SCORE_FONT_SIZE = 42  # points, as in CarRacing-v3
SCORE_CENTER = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)  # pixels on the 1000x800 window
TEXT_CACHE_MAX = 2048  # rendered score strings kept (an episode shows ~1,100 at most)
SMOOTHSCALE_BACKENDS = ("SSE2", "NEON")  # pygame-ce's filters ported in raster_exact (NEON runs the SSE2 code)
XRGB_MASKS = (0xFF0000, 0xFF00, 0xFF, 0)  # the window's pixel format, which the kernel writes
DASH_COLORS = ((255, 255, 255), (0, 0, 255), (0, 0, 255), (51, 0, 255), (51, 0, 255), (0, 255, 0), (255, 0, 0))
HULL_FIXTURES = 4  # polygons of the car hull; each of the 4 wheels has one
CAR_POLYS = 4 + HULL_FIXTURES + 4  # wheels, hull, and a grey stripe per wheel at most
DASH_POLYS = 8  # the dashboard's black box and its 7 bars
KERNEL_BUILD_ENV = "VMC_DUEL_EXACT_KERNEL"  # "inline": compile the kernel in this process at first use
TIERS = ("auto", "kernel", "pygame")  # auto: the kernel once it is compiled, the pygame tier until then
BUILD_NICENESS = 19  # the background compile takes only CPU the race leaves (the lowest priority)

# Rendered score strings as the window's pixels, shared by every renderer of the process (a
# text depends only on its string): (pixels (h, w) uint32, left, top) in the flipped window.
_TEXTS: dict[str, tuple[np.ndarray, int, int]] = {}

# smoothscale's tables, 1000x800 -> 96x96 (see raster_exact.shrink_plan).
_XRECIP, _XB, _XW, _XR = rx.shrink_plan(WINDOW_W, STATE_W)
_XTAB = np.stack([_XB, _XW, _XR])  # (3, STATE_W)
_UTAB = rx.uniform_table(_XRECIP, _XB, _XW, _XR)
_SEGS = np.stack(rx.segments_of_pixels(_XB, WINDOW_W))  # (2, WINDOW_W)
_YRECIP, _YB, _YW, _YR = rx.shrink_plan(WINDOW_H, STATE_H)
_YTAB = np.stack([_YW, _YR])  # (2, STATE_H)
_YKIND = np.full(WINDOW_H, -1, np.int64)
_YKIND[_YB] = np.arange(STATE_H)
_NO_SURFACE = np.zeros((0, 0), np.uint32)


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




_FIELD = FIELD_VERTICES[None].copy()  # (1, 4, 2): the field as a one-quad array
_scratch = threading.local()
# The background compile of this process: {"ready": kernel usable, "proc": the compiling process}.
_build: dict = {"ready": False, "proc": None}


def kernel_cached() -> bool:
    """Whether `render_frame` runs without compiling here: loaded in this process, or in
    numba's cache for this source and this CPU. (numba has no public call for the latter:
    its cache index is read; anything unexpected there reads as not cached.)"""
    kernel = rx.render_frame
    if kernel.signatures:
        return True
    try:
        index = kernel._cache._cache_file._load_index()  # {} when the source changed since
        magic = kernel.targetctx.codegen().magic_tuple()  # the CPU the code was made for
        return any(key[1] == magic for key in index)
    except Exception:
        return False


def _start_build() -> subprocess.Popen | None:
    """Compile the kernel into numba's cache in a background process; None if it cannot start."""
    if not sys.executable:
        return None
    root = str(Path(__file__).resolve().parents[2])  # where `engine` is importable from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    try:
        quiet = subprocess.DEVNULL
        # Its own process group (a Ctrl-C of the race does not stop it) but the same session:
        # with the kernel's autogroup scheduling, a new session would be its own group of equal
        # weight to the race's, and its niceness would count for nothing.
        return subprocess.Popen([sys.executable, "-m", "engine.env.render_exact"], env=env, process_group=0,
                                stdin=quiet, stdout=quiet, stderr=quiet)  # fmt: skip
    except OSError:
        return None


def kernel_ready() -> bool:
    """Whether this process draws with the kernel now; starts the background compile the
    first time it is not cached. Once true, stays true (a failed background compile leaves
    the compile to this process, at its next frame)."""
    if _build["ready"]:
        return True
    proc = _build["proc"]
    if proc is None:
        if os.environ.get(KERNEL_BUILD_ENV) == "inline" or kernel_cached():
            _build["ready"] = True
        else:
            proc = _build["proc"] = _start_build()
            _build["ready"] = proc is None
        return _build["ready"]
    if proc.poll() is None:
        return False
    _build["ready"] = True
    return True


def _scratch_arrays(cap: int) -> dict[str, np.ndarray]:
    """Scratch of `render_frame`, shared by the renderers of this thread (each frame
    overwrites what it reads; one set stays in cache). cap: polygons a frame may set up."""
    arrays = getattr(_scratch, "arrays", None)
    if arrays is None or arrays["meta"].shape[0] < cap:
        arrays = _scratch.arrays = {
            "buf": np.zeros((rx.BAND_ROWS, WINDOW_W), np.uint32),
            "dirty": np.zeros((rx.BAND_ROWS, STATE_W), np.uint8),
            "rows": np.zeros((WINDOW_H, STATE_W * 3), np.uint8),
            "acc": np.zeros(STATE_W * 3, np.int64),
            "spans": np.zeros((rx.BAND_ROWS, 1 + 2 * rx.MAX_VERTS), np.int64),
            "xs": np.zeros(rx.MAX_VERTS, np.int64),
            "pv": np.zeros((cap, 2, rx.MAX_VERTS), np.int64),
            "meta": np.zeros((cap, 5), np.int64),
            "edges": np.zeros((cap, 4, rx.EDGE_FIELDS), np.int64),
        }
    return arrays


class ExactRenderer:
    """Draws `state_pixels` frames bit-identical to gymnasium's CarRacing-v3.

    tier: "auto" (the kernel once compiled, see the module's docstring), "kernel" or
    "pygame" (one of them always: for tests)."""

    def __init__(self, tier: str = "auto") -> None:
        if tier not in TIERS:
            raise ValueError(f"tier={tier!r} is not one of {', '.join(TIERS)}")
        self.tier = tier
        backend = pygame.transform.get_smoothscale_backend()
        if backend not in SMOOTHSCALE_BACKENDS:
            raise RuntimeError(
                f"the exact renderer reproduces pygame-ce's SSE2 smoothscale; this pygame uses {backend!r} "
                "(use renderer='stock' for gymnasium's own frames)"
            )
        pygame.font.init()
        self._font = pygame.font.Font(pygame.font.get_default_font(), SCORE_FONT_SIZE)
        # One pixel in the window's format (what pygame.Surface((W, H)) makes): colours are
        # mapped and drawn on it; the pygame tier keeps its own window-sized surfaces.
        self._pixel = pygame.Surface((1, 1))
        if self._pixel.get_masks() != XRGB_MASKS:
            raise RuntimeError(f"expected an XRGB8888 window, pygame made masks {self._pixel.get_masks()}")
        self._grass = grass_vertices()
        self._cam = np.zeros(5)
        self._colors: tuple = (None, None)  # env.bg_color, env.grass_color the two below were made from
        self._field_color = 0
        self._grass_color = 0
        self._dash = np.zeros(7)
        self._dash_colors = np.array([self._pixel.map_rgb(c) for c in DASH_COLORS], np.int64)
        self._stripe_color = self._pixel.map_rgb(WHEEL_WHITE)
        self._car = None
        self._pygame: PygameRenderer | None = None

    def _gfx_color(self, color) -> int:
        """The pixel gfxdraw writes for `color` (its own parsing and SDL_MapRGBA)."""
        gfxdraw.pixel(self._pixel, 0, 0, color)
        return int(self._pixel.get_at_mapped((0, 0)))

    def _load_car(self, car) -> None:
        # Fixture shapes and colours are fixed for a car's lifetime: read them once.
        self._car = car
        self._bodies = list(car.drawlist)
        local, count, body, color, stripe = [], [], [], [], []
        for b, obj in enumerate(self._bodies):
            mapped = self._pixel.map_rgb([int(c * 255) for c in obj.color])
            for fixture in obj.fixtures:
                verts = np.zeros((rx.MAX_VERTS, 2), np.float32)
                shape = np.array(fixture.shape.vertices, dtype=np.float32)
                verts[: len(shape)] = shape
                local.append(verts)
                count.append(len(shape))
                body.append(b)
                color.append(mapped)
                stripe.append(b if "phase" in obj.__dict__ else -1)
        self._wheels = [obj for obj in self._bodies if "phase" in obj.__dict__]
        if [self._bodies.index(w) for w in self._wheels] != list(range(len(self._wheels))):
            raise ValueError("expected the wheels first in the car's drawlist")
        self._fix_local = np.array(local)
        self._fix_count = np.array(count, np.int64)
        self._fix_body = np.array(body, np.int64)
        self._fix_color = np.array(color, np.int64)
        self._stripe = np.array(stripe, np.int64)
        self._xforms = np.zeros((len(self._bodies), 4), np.float32)
        self._phases = np.zeros(max(len(self._wheels), 1))

    def _score(self, reward: float) -> tuple[np.ndarray, int, int]:
        key = f"{reward:04.0f}"
        text = _TEXTS.get(key)
        if text is None:
            if len(_TEXTS) >= TEXT_CACHE_MAX:
                _TEXTS.clear()
            rendered = self._font.render(key, True, (255, 255, 255), (0, 0, 0))
            rect = rendered.get_rect()
            rect.center = SCORE_CENTER
            window = pygame.Surface(rendered.get_size())  # the window's format
            window.blit(rendered, (0, 0))
            pixels = np.ascontiguousarray(pygame.surfarray.array2d(window).T.astype(np.uint32))
            text = _TEXTS[key] = (pixels, rect.left, rect.top)
        return text

    def render(self, env, surface: np.ndarray | None = None) -> np.ndarray:
        """The observation of `env` (a CarRacing after reset). Returns (96, 96, 3) uint8, a
        new array. surface: a (WINDOW_H, WINDOW_W) uint32 array to receive the flipped
        window before smoothscale, as stock's `env.surf` holds it (for tests)."""
        zoom, (tx, ty), angle = camera(env)
        c, s = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)  # pygame's own (snapped) cos and sin
        if self.tier == "pygame" or (self.tier == "auto" and not kernel_ready()):
            if self._pygame is None:
                self._pygame = PygameRenderer(self._font, self._grass, FIELD_VERTICES, SCORE_CENTER)
            return self._pygame.render(env, (zoom, (tx, ty), angle, c, s), surface)
        car = env.car
        if car is not self._car:
            self._load_car(car)
        cam = self._cam
        cam[0] = c
        cam[1] = s
        cam[2] = zoom
        cam[3] = tx
        cam[4] = ty
        if env.bg_color is not self._colors[0] or env.grass_color is not self._colors[1]:  # set at reset
            self._colors = (env.bg_color, env.grass_color)
            self._field_color = self._gfx_color(env.bg_color)
            self._grass_color = self._gfx_color(env.grass_color)
        xforms = self._xforms
        for b, body in enumerate(self._bodies):
            t = body.transform
            p = t.position
            q = t.q
            xforms[b] = (p[0], p[1], q.c, q.s)  # Box2D's float32 transform, as `trans * v` uses it
        for w, wheel in enumerate(self._wheels):
            self._phases[w] = wheel.phase
        wheels = car.wheels
        dash = self._dash
        vx, vy = car.hull.linearVelocity
        dash[0] = math.sqrt(vx * vx + vy * vy)
        for w in range(4):
            dash[1 + w] = wheels[w].omega
        dash[5] = wheels[0].joint.angle
        dash[6] = car.hull.angularVelocity
        text, left, top = self._score(env.reward)
        road = env.road_vertices
        k = _scratch_arrays(1 + len(self._grass) + len(road) + CAR_POLYS + DASH_POLYS)
        out = np.empty((STATE_H, STATE_W, 3), np.uint8)
        rx.render_frame(
            out, _NO_SURFACE if surface is None else surface, k["buf"], k["dirty"], k["rows"], k["acc"],
            k["spans"], k["xs"], k["pv"], k["meta"], k["edges"],
            cam, _FIELD, self._field_color, self._grass, self._grass_color, road, env.road_colors,
            MAX_SHAPE_DIM,
            self._fix_local, self._fix_count, self._fix_body, self._fix_color, xforms, self._phases,
            self._stripe, self._stripe_color,
            dash, self._dash_colors, text, left, top,
            _XTAB, _XRECIP, _UTAB, _SEGS, _YKIND, _YTAB, _YRECIP,
        )  # fmt: skip
        return out


def _build_kernel() -> None:
    """Compile the kernel into numba's cache (the background process of `kernel_ready`):
    one frame of a CarRacing reset, drawn by the kernel."""
    if hasattr(os, "nice"):
        os.nice(BUILD_NICENESS)
    from engine.env.racing_env import DuelCarRacing

    env = DuelCarRacing(renderer="stock")
    env.reset(seed=0)
    ExactRenderer(tier="kernel").render(env)
    env.close()


if __name__ == "__main__":
    _build_kernel()
