"""The `exact` renderer's raster: CarRacing-v3's 96x96 observation in one numba call.

Stock CarRacing-v3 draws a 1000x800 window with pygame-ce (SDL_gfx's anti-aliased outline
and filled polygon for the field, grass and road; pygame.draw.polygon for the car and the
dashboard; a font blit for the score), flips it and box-filters it to 96x96 with
`transform.smoothscale`. `render_frame` does all of it with the same integer arithmetic,
ported from pygame-ce 2.5.8's C sources (src_c/SDL_gfx/SDL_gfxPrimitives.c: `_clipLine`,
`_aalineColor`, `_putPixelAlpha`, `filledPolygonColorMT`; src_c/draw.c: `draw_fillpoly`;
src_c/simd_transform_sse2.c: `filter_shrink_X_SSE2`, `filter_shrink_Y_SSE2`), so the
bytes are the same, but never holds the window:

- the window is drawn in bands of BAND_ROWS rows of the flipped picture (the flip is the
  row order), each polygon clipped to the band, and each band is shrunk horizontally
  while it is in cache;
- the world is not drawn under the dashboard, whose black box covers those rows whole;
- a shrink segment (the ~11 window pixels one output pixel averages) that no span end
  or single pixel landed in is one colour, and its output is read from a table.

smoothscale: pygame-ce runs its SSE2 filters on every x86-64 CPU (SSE2 is part of x86-64;
there is no AVX2 variant of smoothscale in 2.5.8) and the same code through sse2neon on
ARM; `transform.get_smoothscale_backend()` says "SSE2". Its 14-bit fixed point differs
from the portable C filter's 16-bit one (other weights, other bytes), so the SSE2 one is
what is ported here; the renderer refuses to run where pygame reports another backend.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium.envs.box2d.car_dynamics import SIZE, WHEEL_R, WHEEL_W
from numba import njit

WINDOW_W = 1000  # px, CarRacing-v3's window
WINDOW_H = 800
STATE_W = 96  # px, the observation
STATE_H = 96
BAND_ROWS = 16  # window rows drawn and shrunk together (64 kB of pixels: stays in L2)
DASH_TOP = WINDOW_H - 5 * (WINDOW_H // 40)  # flipped row where the dashboard's black box starts (700)
MAX_VERTS = 8  # vertices of the largest polygon (the car hull's HULL_POLY3)
SSE2_ONE = 0x4000  # pygame-ce's SSE2 smoothscale: one source pixel in 14-bit fixed point
EDGE_FIELDS = 10  # int64 fields of an outline edge record

# Kinds of polygon: SDL_gfx outline + fill in window coordinates; pygame.draw.polygon in
# window coordinates (the car, drawn before the flip); pygame.draw.polygon in flipped
# coordinates (the dashboard, drawn after it).
KIND_GFX = 0
KIND_CAR = 1
KIND_DASH = 2
# Kinds of outline edge, as _aalineColor draws them after clipping.
EDGE_NONE = 0
EDGE_VLINE = 1
EDGE_HLINE = 2
EDGE_PIXEL = 3
EDGE_YMAJOR = 4
EDGE_XMAJOR = 5
# _clipLine's outcodes.
CLIP_LEFT = 1
CLIP_RIGHT = 2
CLIP_BOTTOM = 4
CLIP_TOP = 8


# -- scalar helpers -------------------------------------------------------------------------------
# Every kernel uses numpy's error model: no division here can be by zero, and Python's
# (a ZeroDivisionError check and its exception code at every division) costs compile time.
# Helpers take scalars, or few arrays and are called per polygon or per band, never per
# pixel: each array handed to a numba function that is not inlined costs an atomic
# reference count increment and decrement per call.


@njit(cache=True, error_model="numpy")
def _wrap16(v):
    # C's (Sint16) cast: gfxdraw hands SDL_gfx its coordinates as Sint16.
    return ((v + 32768) & 0xFFFF) - 32768


@njit(cache=True, error_model="numpy")
def _wrap32(v):
    # C int arithmetic wraps at 32 bits; numba's int64 does not.
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@njit(cache=True, error_model="numpy")
def _blend_px(d, color, weight):
    """SDL_gfx's pixelColorWeightNolock of an opaque colour onto pixel d of a 32-bit XRGB
    surface: alpha = 255 * weight >> 8, then each channel d + ((c - d) * alpha >> 8)
    (the unsigned masks of _putPixelAlpha give this floor for either sign of c - d)."""
    a = (255 * weight) >> 8
    if a == 0 or d == color:
        return d
    r = (d >> 16) & 255
    g = (d >> 8) & 255
    b = d & 255
    r += (((color >> 16) & 255) - r) * a >> 8
    g += (((color >> 8) & 255) - g) * a >> 8
    b += ((color & 255) - b) * a >> 8
    return (r << 16) | (g << 8) | b


@njit(cache=True, error_model="numpy")
def _clip_line(x1, y1, x2, y2):
    """SDL_gfx's _clipLine (Cohen-Sutherland on Sint16, float32 slope) against the window.
    Returns (drawn, x1, y1, x2, y2); the ends may come back swapped, as in C."""
    left, right, top, bottom = 0, WINDOW_W - 1, 0, WINDOW_H - 1
    while True:
        code1 = 0
        if x1 < left:
            code1 |= CLIP_LEFT
        elif x1 > right:
            code1 |= CLIP_RIGHT
        if y1 < top:
            code1 |= CLIP_TOP
        elif y1 > bottom:
            code1 |= CLIP_BOTTOM
        code2 = 0
        if x2 < left:
            code2 |= CLIP_LEFT
        elif x2 > right:
            code2 |= CLIP_RIGHT
        if y2 < top:
            code2 |= CLIP_TOP
        elif y2 > bottom:
            code2 |= CLIP_BOTTOM
        if (code1 | code2) == 0:
            return True, x1, y1, x2, y2
        if (code1 & code2) != 0:
            return False, x1, y1, x2, y2
        if code1 == 0:
            x1, x2 = x2, x1
            y1, y2 = y2, y1
            code1, code2 = code2, code1
        if x2 != x1:
            m = np.float32(y2 - y1) / np.float32(x2 - x1)
        else:
            m = np.float32(1.0)
        # (Sint16)(float): truncation toward zero, then the 16-bit wrap of the sum.
        if code1 & CLIP_LEFT:
            y1 = _wrap16(y1 + _wrap16(int(np.float32(left - x1) * m)))
            x1 = left
        elif code1 & CLIP_RIGHT:
            y1 = _wrap16(y1 + _wrap16(int(np.float32(right - x1) * m)))
            x1 = right
        elif code1 & CLIP_BOTTOM:
            if x2 != x1:
                x1 = _wrap16(x1 + _wrap16(int(np.float32(bottom - y1) / m)))
            y1 = bottom
        elif code1 & CLIP_TOP:
            if x2 != x1:
                x1 = _wrap16(x1 + _wrap16(int(np.float32(top - y1) / m)))
            y1 = top


@njit(cache=True, error_model="numpy")
def _edge_record(rec, x1, y1, x2, y2):
    """What _aalineColor(x1, y1, x2, y2, draw_endpoint=0) draws, as a record rec
    (EDGE_FIELDS,) int64: kind, first pixel x, y, top end x, y, |dx|, dy, x step, error
    step, last row. Rows are window rows."""
    drawn, x1, y1, x2, y2 = _clip_line(x1, y1, x2, y2)
    rec[0] = EDGE_NONE
    if not drawn:
        return
    xx0, yy0, xx1, yy1 = x1, y1, x2, y2
    if yy0 > yy1:
        xx0, yy0, xx1, yy1 = xx1, yy1, xx0, yy0
    dx = xx1 - xx0
    dy = yy1 - yy0
    rec[1] = x1
    rec[2] = y1
    rec[3] = xx0
    rec[4] = yy0
    rec[9] = yy1
    if dx == 0:
        rec[0] = EDGE_VLINE if dy > 0 else EDGE_PIXEL
        rec[6] = dy
        return
    if dy == 0:
        rec[0] = EDGE_HLINE
        rec[3] = min(xx0, xx1)
        rec[5] = max(xx0, xx1)
        return
    xdir = 1
    if dx < 0:
        xdir = -1
        dx = -dx
    rec[5] = dx
    rec[6] = dy
    rec[7] = xdir
    if dy > dx:
        rec[0] = EDGE_YMAJOR
        rec[8] = (((dx << 16) // dy) << 16) & 0xFFFFFFFF
    else:
        rec[0] = EDGE_XMAJOR
        # 0 when dx == dy: the accumulator then "rolls over" at every step (a diagonal).
        rec[8] = (((dy << 16) // dx) << 16) & 0xFFFFFFFF


# -- drawing one band of rows -----------------------------------------------------------------------
# A band holds flipped rows r0..r1-1 in buf (BAND_ROWS, WINDOW_W) uint32; band row i is
# flipped row r0 + i, i.e. window row WINDOW_H - 1 - r0 - i. dirty (BAND_ROWS, STATE_W)
# uint8 marks the shrink segments a write may have split: segs (2, WINDOW_W) int64 gives
# the first and last segment holding each pixel. A write of pixels xa..xb can only split
# a segment it ends inside of, which is segs[0, xa] or segs[1, xb] (a segment that starts
# at xa or ends at xb is either covered whole or ended inside of at the other end).


@njit(cache=True, error_model="numpy")
def _pg_fill(buf, dirty, segs, xs, pv, p, n, color, ya, yb, r0, flip):
    """pygame's draw_fillpoly (float32 crossings, floor/ceil by parity) of polygon pv[p]
    (n vertices) on its rows ya..yb: window rows when flip (the car, drawn before the
    flip), flipped rows otherwise (the dashboard). xs (MAX_VERTS,) int64 scratch."""
    miny = pv[p, 1, 0]
    maxy = miny
    minx = pv[p, 0, 0]
    maxx = minx
    for k in range(1, n):
        miny = min(miny, pv[p, 1, k])
        maxy = max(maxy, pv[p, 1, k])
        minx = min(minx, pv[p, 0, k])
        maxx = max(maxx, pv[p, 0, k])
    for y in range(max(miny, ya), min(maxy, yb) + 1):
        m = 0
        if miny == maxy:  # one row high: a line from the leftmost to the rightmost vertex
            xs[0] = minx
            xs[1] = maxx
            m = 2
        for k in range(n if miny < maxy else 0):
            kp = n - 1 if k == 0 else k - 1
            y1 = pv[p, 1, kp]
            y2 = pv[p, 1, k]
            if y1 < y2:
                x1 = pv[p, 0, kp]
                x2 = pv[p, 0, k]
            elif y1 > y2:
                y1, y2 = y2, y1
                x1 = pv[p, 0, k]
                x2 = pv[p, 0, kp]
            else:
                continue
            if (y1 <= y < y2) or (y == maxy and y2 == maxy):
                q = np.float32((y - y1) * (x2 - x1)) / np.float32(y2 - y1)
                xs[m] = (math.floor(q) if m % 2 == 0 else math.ceil(q)) + x1
                m += 1
        for a in range(1, m):
            v = xs[a]
            b = a - 1
            while b >= 0 and xs[b] > v:
                xs[b + 1] = xs[b]
                b -= 1
            xs[b + 1] = v
        i = WINDOW_H - 1 - y - r0 if flip else y - r0
        for a in range(0, m - 1, 2):
            xa, xb = min(xs[a], xs[a + 1]), max(xs[a], xs[a + 1])  # drawhorzlineclipbounding: order, clip, store
            xa, xb = max(xa, 0), min(xb, WINDOW_W - 1)
            if xa <= xb:
                buf[i, xa : xb + 1] = color
                dirty[i, segs[0, xa]] = 1
                dirty[i, segs[1, xb]] = 1
    # Horizontal edges strictly between the top and the bottom row, drawn last.
    for k in range(n):
        kp = n - 1 if k == 0 else k - 1
        y = pv[p, 1, k]
        if miny < y < maxy and pv[p, 1, kp] == y and ya <= y <= yb:
            i = WINDOW_H - 1 - y - r0 if flip else y - r0
            xa, xb = min(pv[p, 0, k], pv[p, 0, kp]), max(pv[p, 0, k], pv[p, 0, kp])  # as above
            xa, xb = max(xa, 0), min(xb, WINDOW_W - 1)
            if xa <= xb:
                buf[i, xa : xb + 1] = color
                dirty[i, segs[0, xa]] = 1
                dirty[i, segs[1, xb]] = 1


@njit(cache=True, error_model="numpy")
def _draw_band(buf, dirty, segs, spans, xs, pv, meta, edges, n_polys, r0, r1, text, text_left, text_top):
    """Every polygon's part in flipped rows r0..r1-1, in drawing order, then the score.

    pv (P, 2, MAX_VERTS), meta (P, 5) (kind, vertices, colour, first and last row) and
    edges (P, 4, EDGE_FIELDS) int64 describe the first n_polys polygons (render_frame).
    spans (BAND_ROWS, 1 + 2 * MAX_VERTS) int64 scratch: a gfx fill's hlines per band row.
    """
    world_end = min(r1, DASH_TOP)  # flipped rows r0..world_end-1 show the world
    dirty[:, :] = 0
    top = WINDOW_H - 1 - r0  # window row of band row 0
    wya = WINDOW_H - world_end  # window rows of this band's world part: wya..top
    for p in range(n_polys):
        kind = meta[p, 0]
        if kind == KIND_DASH:
            ya = max(meta[p, 3], r0)
            yb = min(meta[p, 4], r1 - 1)
        else:
            ya = max(meta[p, 3], wya)
            yb = min(meta[p, 4], top)
        if p == 0:  # the field, drawn first: its rows are the band's world rows, which it clears
            ya = wya
            yb = top
        if ya > yb:
            continue
        n = meta[p, 1]
        color = meta[p, 2]
        if kind != KIND_GFX:
            _pg_fill(buf, dirty, segs, xs, pv, p, n, color, ya, yb, r0, kind == KIND_CAR)
            continue

        # SDL_gfx's filledPolygonColorMT (16.16 fixed-point crossings): the hlines of rows
        # ya..yb, computed before the outline so that it can skip the pixels they cover.
        miny = pv[p, 1, 0]
        maxy = miny
        for k in range(1, n):
            miny = min(miny, pv[p, 1, k])
            maxy = max(maxy, pv[p, 1, k])
        for y in range(ya, yb + 1):
            spans[top - y, 0] = 0
        for y in range(max(miny, ya), min(maxy, yb) + 1):
            m = 0
            for k in range(n):
                kp = n - 1 if k == 0 else k - 1
                y1 = pv[p, 1, kp]
                y2 = pv[p, 1, k]
                if y1 < y2:
                    x1 = pv[p, 0, kp]
                    x2 = pv[p, 0, k]
                elif y1 > y2:
                    y1, y2 = y2, y1
                    x1 = pv[p, 0, k]
                    x2 = pv[p, 0, kp]
                else:
                    continue
                if (y1 <= y < y2) or (y == maxy and y1 < y <= y2):
                    # (65536 * t) / d in C ints, t >= 0, d > 0: the double quotient's floor is
                    # exact here (t < 2^31, d < 2^16) and cheaper than a 64-bit division.
                    quot = int(np.float64(65536 * (y - y1)) / np.float64(y2 - y1))
                    xs[m] = _wrap32(quot * (x2 - x1) + 65536 * x1)
                    m += 1
            for a in range(1, m):  # insertion sort: m is 2 for convex polygons
                v = xs[a]
                b = a - 1
                while b >= 0 and xs[b] > v:
                    xs[b + 1] = xs[b]
                    b -= 1
                xs[b + 1] = v
            i = top - y
            c = 0
            for a in range(0, m - 1, 2):
                xa = _wrap32(xs[a] + 1)
                xa = _wrap16((xa >> 16) + ((xa & 32768) >> 15))
                xb = _wrap32(xs[a + 1] - 1)
                xb = _wrap16((xb >> 16) + ((xb & 32768) >> 15))
                if xa > xb:  # hlineColor: swap, clip
                    xa, xb = xb, xa
                if xb < 0 or xa > WINDOW_W - 1:
                    continue
                spans[i, 1 + 2 * c] = max(xa, 0)
                spans[i, 2 + 2 * c] = min(xb, WINDOW_W - 1)
                c += 1
            spans[i, 0] = c

        if p == 0:
            # The window starts black (stock fills it); only what the field's fill does not
            # cover needs it, the rest is stored over at once.
            for y in range(ya, yb + 1):
                i = top - y
                x = 0
                for c in range(spans[i, 0] + 1):
                    xe = spans[i, 1 + 2 * c] if c < spans[i, 0] else WINDOW_W
                    for xx in range(x, xe):
                        buf[i, xx] = 0
                    if c < spans[i, 0]:
                        x = spans[i, 2 + 2 * c] + 1

        # The outline (aapolygon, before the fill): _aalineColor of each edge, its pixels
        # on rows ya..yb. A Wu pixel the fill covers next is skipped (the fill's plain
        # stores overwrite it), and so is one the blend leaves as it is.
        for e in range(4):
            ek = edges[p, e, 0]
            if ek == EDGE_NONE:
                continue
            if ek == EDGE_VLINE or ek == EDGE_HLINE or ek == EDGE_PIXEL:
                y0 = edges[p, e, 2] if ek != EDGE_VLINE else edges[p, e, 4]
                y1 = edges[p, e, 2] if ek != EDGE_VLINE else edges[p, e, 4] + edges[p, e, 6]
                xa = edges[p, e, 3] if ek == EDGE_HLINE else edges[p, e, 1]
                xb = edges[p, e, 5] if ek == EDGE_HLINE else edges[p, e, 1]
                for y in range(max(y0, ya), min(y1, yb) + 1):  # inside the window: _clipLine ran
                    buf[top - y, xa : xb + 1] = color
                    dirty[top - y, segs[0, xa]] = 1
                    dirty[top - y, segs[1, xb]] = 1
                continue
            # The first pixel in the full colour, then the Wu pairs.
            if ya <= edges[p, e, 2] <= yb:
                x = edges[p, e, 1]
                i = top - edges[p, e, 2]
                buf[i, x] = color
                dirty[i, segs[0, x]] = 1
                dirty[i, segs[1, x]] = 1
            xx0 = edges[p, e, 3]
            yy0 = edges[p, e, 4]
            dx = edges[p, e, 5]
            dy = edges[p, e, 6]
            xdir = edges[p, e, 7]
            adj = edges[p, e, 8]
            # Step k's first pixel is (xx0, yy0) + k * major + carries * minor, its pair
            # that plus minor; the accumulator's carries after k steps are k * adj >> 32
            # (k itself when adj is 0: dx == dy, where the accumulator "rolls over" at
            # every step). y-major: major (0, 1), minor (xdir, 0); x-major: (xdir, 0), (0, 1).
            if ek == EDGE_YMAJOR:
                mx, my, nx, ny = 0, 1, xdir, 0
                k0 = max(1, ya - yy0)  # rows ya..yb
                k1 = min(dy - 1, yb - yy0)
            else:
                mx, my, nx, ny = xdir, 0, 0, 1
                lo_c = ya - 1 - yy0  # carries whose row or the next is in ya..yb
                hi_c = yb - yy0
                if adj == 0:
                    k0 = max(1, lo_c)
                    k1 = min(dx - 1, hi_c)
                else:
                    k0 = 1 if lo_c <= 0 else max(1, ((lo_c << 32) + adj - 1) // adj)
                    k1 = min(dx - 1, (((hi_c + 1) << 32) - 1) // adj) if hi_c >= 0 else 0
            for k in range(k0, k1 + 1):
                acc = k * adj
                carries = k if adj == 0 else acc >> 32
                wgt = (acc >> 24) & 255
                for side in range(2):
                    x = xx0 + k * mx + carries * nx + side * nx
                    y = yy0 + k * my + carries * ny + side * ny
                    if y < ya or y > yb or x < 0 or x >= WINDOW_W:
                        continue
                    i = top - y
                    if spans[i, 0] == 1 and spans[i, 1] <= x <= spans[i, 2]:
                        continue  # the fill covers it
                    d = np.int64(buf[i, x])
                    v = _blend_px(d, color, wgt if side else 255 - wgt)
                    if v != d:
                        buf[i, x] = v
                        dirty[i, segs[0, x]] = 1
                        dirty[i, segs[1, x]] = 1

        # The fill's hlines (already ordered and clipped).
        for y in range(ya, yb + 1):
            i = top - y
            for c in range(spans[i, 0]):
                xa = spans[i, 1 + 2 * c]
                xb = spans[i, 2 + 2 * c]
                buf[i, xa : xb + 1] = color
                dirty[i, segs[0, xa]] = 1
                dirty[i, segs[1, xb]] = 1

    # The score: an opaque blit, clipped to the window.
    th, tw = text.shape
    xa = max(text_left, 0)
    xe = min(text_left + tw, WINDOW_W)
    for r in range(max(r0, text_top, 0), min(r1, text_top + th)):
        if xa >= xe:
            break
        i = r - r0
        for x in range(xa, xe):  # element by element: an array-to-slice copy costs seconds of compile
            buf[i, x] = text[r - text_top, x - text_left]
        for k in range(segs[0, xa], segs[1, xe - 1] + 1):
            dirty[i, k] = 1


def shrink_plan(src: int, dst: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """pygame-ce's SSE2 area filter from src to dst pixels along one axis:
    (reciprocal, boundary (dst,), weight (dst,), remainder (dst,)), int64. Output k sums the
    source pixels after boundary[k-1] and before boundary[k] whole, boundary[k] times
    weight[k] and boundary[k-1] times remainder[k-1], in units of 1/SSE2_ONE."""
    space = SSE2_ONE * src // dst
    boundary = np.zeros(dst, np.int64)
    weight = np.zeros(dst, np.int64)
    remainder = np.zeros(dst, np.int64)
    counter = space
    k = 0
    for x in range(src):
        if counter > SSE2_ONE:
            counter -= SSE2_ONE
        else:
            boundary[k] = x
            weight[k] = counter
            remainder[k] = SSE2_ONE - counter
            counter = space - remainder[k]
            k += 1
    if k != dst:
        raise ValueError(f"smoothscale {src} -> {dst} writes {k} pixels")
    return (1 << 30) // space, boundary, weight, remainder


def uniform_table(recip: int, boundary: np.ndarray, weight: np.ndarray, remainder: np.ndarray) -> np.ndarray:
    """Output k of the SSE2 shrink when all of its source pixels hold the value v:
    (dst, 256) uint8, indexed [k, v]."""
    v = np.arange(256, dtype=np.int64)
    out = np.zeros((len(boundary), 256), np.uint8)
    for k in range(len(boundary)):
        whole = boundary[k] - (boundary[k - 1] + 1 if k else 0)
        acc = whole * v + ((4 * v * weight[k]) >> 16)
        if k:
            acc += (4 * v * remainder[k - 1]) >> 16
        out[k] = np.minimum((acc * recip) >> 16, 255)
    return out


def segments_of_pixels(boundary: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For each source pixel, the first and last output whose segment holds it: (width,)
    int64 each. Segment k runs from boundary[k-1] (0 for k = 0) to boundary[k], so a
    boundary pixel is in two; pixels past the last boundary (none for 1000 -> 96) count
    with the last output."""
    lo = np.full(width, len(boundary) - 1, np.int64)
    hi = np.full(width, len(boundary) - 1, np.int64)
    start = 0
    for k, b in enumerate(boundary):
        for x in range(start, b + 1):
            if not (k and x == start):  # boundary[k-1] keeps k-1 as its first segment
                lo[x] = k
            hi[x] = k
        start = b
    return lo, hi


@njit(cache=True, error_model="numpy")
def _shrink_band(buf, dirty, rows, r0, n_rows, xtab, recip, utab):
    """filter_shrink_X_SSE2 of band rows 0..n_rows-1 into rows[r0 + i] (STATE_W * 3,)
    uint8, R G B per output pixel. xtab (3, STATE_W) int64: boundary pixel, its weight, its
    remainder (shrink_plan). A segment not marked in dirty is one colour: utab[k, value]."""
    for i in range(n_rows):
        # Row views and unsigned indices: numba then adds no negative-index fix-up to each access.
        src = buf[i]
        flags = dirty[i]
        dst = rows[r0 + i]
        start = np.uint64(0)
        for kk in range(STATE_W):
            k = np.uint64(kk)
            b = np.uint64(xtab[0, k])
            if flags[k] == 0:
                v = np.uint64(src[b])
                dst[np.uint64(3) * k] = utab[k, (v >> np.uint64(16)) & np.uint64(255)]
                dst[np.uint64(3) * k + np.uint64(1)] = utab[k, (v >> np.uint64(8)) & np.uint64(255)]
                dst[np.uint64(3) * k + np.uint64(2)] = utab[k, v & np.uint64(255)]
            else:
                rb = 0
                g = 0
                for x in range(start, b):
                    p = np.int64(src[x])
                    rb += p & 0xFF00FF  # red and blue in separate 16-bit lanes: 11 pixels never carry
                    g += p & 0xFF00
                r = rb >> 16
                bl = rb & 0xFFFF
                g >>= 8
                p = np.int64(src[b])
                w = 4 * xtab[1, k]
                r += (((p >> 16) & 255) * w) >> 16
                g += (((p >> 8) & 255) * w) >> 16
                bl += ((p & 255) * w) >> 16
                if kk:
                    p = np.int64(src[start - np.uint64(1)])
                    w = 4 * xtab[2, k - np.uint64(1)]
                    r += (((p >> 16) & 255) * w) >> 16
                    g += (((p >> 8) & 255) * w) >> 16
                    bl += ((p & 255) * w) >> 16
                # No clamp: an output's weights sum to 170666 / 16384 pixels, so 255 everywhere
                # gives 2656 * recip >> 16 = 254 (SSE2's packus never saturates).
                dst[np.uint64(3) * k] = (r * recip) >> 16
                dst[np.uint64(3) * k + np.uint64(1)] = (g * recip) >> 16
                dst[np.uint64(3) * k + np.uint64(2)] = (bl * recip) >> 16
            start = b + np.uint64(1)


@njit(cache=True, error_model="numpy")
def _shrink_columns(out, rows, ykind, ytab, recip, acc):
    """filter_shrink_Y_SSE2 of the shrunk rows (WINDOW_H, STATE_W * 3) uint8 into out
    (STATE_H, STATE_W, 3) uint8. ykind (WINDOW_H,): -1 for a row taken whole, else the
    output row it completes; ytab (2, STATE_H): that row's weight and remainder. acc
    (STATE_W * 3,) int64 scratch."""
    flat = out.reshape(STATE_H, STATE_W * 3)
    n = rows.shape[1]
    acc[:] = 0
    for y in range(rows.shape[0]):
        j = ykind[y]
        if j < 0:
            for c in range(n):
                acc[c] += rows[y, c]
        else:
            w = 4 * ytab[0, j]
            f = 4 * ytab[1, j]
            for c in range(n):  # no clamp: at most 2125 * recip >> 16 = 254, as along x
                s = np.int64(rows[y, c])
                flat[j, c] = ((acc[c] + ((s * w) >> 16)) * recip) >> 16
                acc[c] = (s * f) >> 16


# -- the frame --------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _setup_quads(quads, colors, one_color, cam, max_shape, pv, meta, edges, n_polys):
    """Rotate quads (Q, 4, 2) (world) as CarRacing does, cull them (a vertex within
    max_shape px of the window), truncate to gfxdraw's Sint16 and record their outline
    edges; colours from colors (Q, 3) (truncated, as stock's int()) or one_color when colors
    has no rows. Returns the new number of polygons set up in pv, meta, edges."""
    c, s, zoom, tx, ty = cam[0], cam[1], cam[2], cam[3], cam[4]
    for q in range(quads.shape[0]):
        seen = False
        for k in range(4):
            x = quads[q, k, 0]
            y = quads[q, k, 1]
            sx = (c * x - s * y) * zoom + tx
            sy = (s * x + c * y) * zoom + ty
            if -max_shape <= sx <= WINDOW_W + max_shape and -max_shape <= sy <= WINDOW_H + max_shape:
                seen = True
            pv[n_polys, 0, k] = _wrap16(int(sx))
            pv[n_polys, 1, k] = _wrap16(int(sy))
        if not seen:
            continue
        lo = WINDOW_H
        hi = -1
        for k in range(4):
            k2 = 0 if k == 3 else k + 1
            x1, y1, x2, y2 = pv[n_polys, 0, k], pv[n_polys, 1, k], pv[n_polys, 0, k2], pv[n_polys, 1, k2]
            _edge_record(edges[n_polys, k], x1, y1, x2, y2)
            lo = min(lo, pv[n_polys, 1, k])
            hi = max(hi, pv[n_polys, 1, k])
        meta[n_polys, 0] = KIND_GFX
        meta[n_polys, 1] = 4
        if colors.shape[0]:
            meta[n_polys, 2] = (int(colors[q, 0]) << 16) | (int(colors[q, 1]) << 8) | int(colors[q, 2])
        else:
            meta[n_polys, 2] = one_color
        meta[n_polys, 3] = max(lo, 0)  # window rows; the outline stays within the vertices' rows
        meta[n_polys, 4] = min(hi, WINDOW_H - 1)
        n_polys += 1
    return n_polys


@njit(cache=True, error_model="numpy")
def render_frame(
    out, surface, buf, dirty, rows, acc, spans, xs, pv, meta, edges,
    cam, field, field_color, grass, grass_color, road, road_colors, max_shape,
    fix_local, fix_count, fix_body, fix_color, xforms, phases, stripe, stripe_color,
    dash, dash_colors, text, text_left, text_top,
    xtab, xrecip, utab, segs, ykind, ytab, yrecip,
):  # fmt: skip
    """One observation of CarRacing-v3, bit for bit, into out (STATE_H, STATE_W, 3) uint8.

    surface: (WINDOW_H, WINDOW_W) uint32 receives the flipped window before smoothscale
    (for tests), or (0, 0) for none. Scratch: buf (BAND_ROWS, WINDOW_W) uint32, dirty
    (BAND_ROWS, STATE_W) uint8, rows (WINDOW_H, STATE_W * 3) uint8, acc (STATE_W * 3,),
    spans (BAND_ROWS, 1 + 2 * MAX_VERTS), xs (MAX_VERTS,), pv (cap, 2, MAX_VERTS), meta
    (cap, 5), edges (cap, 4, EDGE_FIELDS), all int64, with cap >= 1 + G + P + 20.

    cam (5,) float64: cos, sin (pygame's, of the camera angle), zoom, translation x, y.
    field (1, 4, 2), grass (G, 4, 2), road (P, 4, 2) float64 world quads; field_color and
    grass_color: gfxdraw's pixels; road_colors (P, 3) float64, truncated as stock does.
    max_shape: CarRacing's MAX_SHAPE_DIM (px) for the cull.
    Car, in drawing order: fixtures fix_local (F, MAX_VERTS, 2) float32 with fix_count (F,),
    fix_body (F,) (index into xforms (B, 4) float32: x, y, cos, sin of Box2D's transform),
    fix_color (F,) mapped; stripe (F,) the wheel whose grey stripe follows the fixture (-1:
    none), phases (W,) float64 the wheels' phase, stripe_color mapped.
    dash (7,) float64: speed, 4 wheel omegas, wheel 0 joint angle, hull angular velocity;
    dash_colors (7,) mapped. text (h, w) uint32: the score as blitted, at (text_left, text_top).
    Shrink tables: xtab (3, STATE_W), xrecip, utab (STATE_W, 256) uint8, segs (2, WINDOW_W)
    (shrink_plan, uniform_table, segments_of_pixels along x); ykind (WINDOW_H,), ytab
    (2, STATE_H), yrecip along y.
    """
    # One signature for the three calls (a literal argument would compile another): the
    # field is drawn whatever its position (clip=False), as an infinite margin does.
    no_colors = road_colors[:0]
    n_polys = _setup_quads(field, no_colors, field_color, cam, max_shape * np.inf, pv, meta, edges, 0)
    n_polys = _setup_quads(grass, no_colors, grass_color, cam, max_shape, pv, meta, edges, n_polys)
    n_polys = _setup_quads(road, road_colors, field_color, cam, max_shape, pv, meta, edges, n_polys)

    # The car: Box2D's float32 transform, then the camera, then (int) as pygame.draw takes it.
    c, s, zoom, tx, ty = cam[0], cam[1], cam[2], cam[3], cam[4]
    sx = np.empty(MAX_VERTS)
    sy = np.empty(MAX_VERTS)
    for f in range(fix_local.shape[0]):
        for part in range(2):
            if part == 0:
                n = fix_count[f]
                color = fix_color[f]
                for k in range(n):
                    sx[k] = fix_local[f, k, 0]
                    sy[k] = fix_local[f, k, 1]
            else:
                w = stripe[f]
                if w < 0:
                    continue
                a1 = phases[w]
                a2 = phases[w] + 1.2
                s1 = math.sin(a1)
                s2 = math.sin(a2)
                c1 = math.cos(a1)
                c2 = math.cos(a2)
                if s1 > 0 and s2 > 0:
                    continue
                if s1 > 0:
                    c1 = 1.0 if c1 > 0 else (-1.0 if c1 < 0 else c1)  # np.sign
                if s2 > 0:
                    c2 = 1.0 if c2 > 0 else (-1.0 if c2 < 0 else c2)
                # car_dynamics.Car.draw's white_poly, in its operation order (-WHEEL_W * SIZE
                # is the negated WHEEL_W times SIZE: the same double as -(WHEEL_W * SIZE)).
                sx[0] = -WHEEL_W * SIZE
                sy[0] = WHEEL_R * c1 * SIZE
                sx[1] = WHEEL_W * SIZE
                sy[1] = WHEEL_R * c1 * SIZE
                sx[2] = WHEEL_W * SIZE
                sy[2] = WHEEL_R * c2 * SIZE
                sx[3] = -WHEEL_W * SIZE
                sy[3] = WHEEL_R * c2 * SIZE
                n = 4
                color = stripe_color
            b = fix_body[f]
            px = xforms[b, 0]
            py = xforms[b, 1]
            qc = xforms[b, 2]
            qs = xforms[b, 3]
            lo = WINDOW_H
            hi = -WINDOW_H
            for k in range(n):
                vx = np.float32(sx[k])
                vy = np.float32(sy[k])
                wx = np.float64((qc * vx - qs * vy) + px)  # b2Mul(transform, v) in float32
                wy = np.float64((qs * vx + qc * vy) + py)
                pv[n_polys, 0, k] = int((c * wx - s * wy) * zoom + tx)
                y = int((s * wx + c * wy) * zoom + ty)
                pv[n_polys, 1, k] = y
                lo = min(lo, y)
                hi = max(hi, y)
            meta[n_polys, 0] = KIND_CAR
            meta[n_polys, 1] = n
            meta[n_polys, 2] = color
            meta[n_polys, 3] = max(lo, 0)
            meta[n_polys, 4] = min(hi, WINDOW_H - 1)
            n_polys += 1

    # The dashboard (CarRacing._render_indicators), in flipped rows.
    wf = float(WINDOW_W)
    hf = float(WINDOW_H)
    bar_w = wf / 40.0
    bar_h = hf / 40.0
    for d in range(8):
        if d == 0:  # the black box: (W, H), (W, H - 5h), (0, H - 5h), (0, H)
            x0, y0, x1, y1 = wf, hf, 0.0, hf - 5 * bar_h
            color = 0
        else:
            value = dash[d - 1]
            if not abs(value) > 1e-4:  # render_if_min (a nan is not drawn either)
                continue
            color = dash_colors[d - 1]
            if d <= 5:  # vertical bars: speed, then the four ABS sensors
                place = 5.0 if d == 1 else 5.0 + d
                val = (0.02 if d == 1 else 0.01) * value
                x0, x1 = place * bar_w, (place + 1) * bar_w
                y0, y1 = hf - (bar_h + bar_h * val), hf - bar_h
            else:  # horizontal bars: steering, gyro
                place = 20.0 if d == 6 else 30.0
                val = (-10.0 if d == 6 else -0.8) * value
                x0, x1 = (place + 0) * bar_w, (place + val) * bar_w
                y0, y1 = hf - 4 * bar_h, hf - 2 * bar_h
        # Corners in CarRacing's order: the bars (x0, y0), (x1, y0), (x1, y1), (x0, y1); the
        # box (x0, y0), (x0, y1), (x1, y1), (x1, y0).
        pv[n_polys, 0, 0] = int(x0)
        pv[n_polys, 1, 0] = int(y0)
        pv[n_polys, 0, 1] = int(x0) if d == 0 else int(x1)
        pv[n_polys, 1, 1] = int(y1) if d == 0 else int(y0)
        pv[n_polys, 0, 2] = int(x1)
        pv[n_polys, 1, 2] = int(y1)
        pv[n_polys, 0, 3] = int(x1) if d == 0 else int(x0)
        pv[n_polys, 1, 3] = int(y0) if d == 0 else int(y1)
        meta[n_polys, 0] = KIND_DASH
        meta[n_polys, 1] = 4
        meta[n_polys, 2] = color
        meta[n_polys, 3] = max(min(int(y0), int(y1)), 0)
        meta[n_polys, 4] = min(max(int(y0), int(y1)), WINDOW_H - 1)
        n_polys += 1

    # Bands of flipped rows: draw, then shrink along x while the band is in cache.
    keep = surface.shape[0] == WINDOW_H
    for r0 in range(0, WINDOW_H, BAND_ROWS):
        r1 = min(r0 + BAND_ROWS, WINDOW_H)
        _draw_band(buf, dirty, segs, spans, xs, pv, meta, edges, n_polys, r0, r1, text, text_left, text_top)
        _shrink_band(buf, dirty, rows, r0, r1 - r0, xtab, xrecip, utab)
        if keep:
            for i in range(r1 - r0):
                for x in range(WINDOW_W):
                    surface[r0 + i, x] = buf[i, x]
    _shrink_columns(out, rows, ykind, ytab, yrecip, acc)
