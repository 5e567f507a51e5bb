"""RGB frames as Textual `Strip`s of upper-half-block cells, two pixel rows per terminal cell.

Every terminal can show text, so this is the fallback that always works (SSH, tmux, terminals
without a graphics protocol): each cell draws "▀" with the foreground colour set to the top pixel
and the background colour set to the bottom pixel. A terminal cell is about twice as tall as it is
wide, so half-block pixels come out close to square, and a 96x96 CarRacing frame fills 96x48 cells.

Why the caches: building a rich `Style` per cell costs ~31 ms per 96x96 frame, far too much for
two players at 30 fps. A frame, though, has few distinct (top, bottom) colour pairs and long runs
of equal cells (grass, road), so:

- neighbouring equal cells of a row merge into one `Segment` ("▀" * n), found with numpy;
- `Segment`s are cached per (top colour, bottom colour, run length), and their `Style`s per
  colour pair, so a style is built only the first time a pair is seen (the caches are cleared
  when they pass `SEGMENT_CACHE_MAX` entries);
- rows are kept as `Strip`s per run sequence for one frame, so a row that repeats within a
  frame or from the previous frame (grass, the dashboard, a paused game) gives back the very
  same `Strip` object, which also keeps Textual's own per-strip caches warm.

A cell whose two pixels have the same colour is drawn as a space on that background rather than
"▀": same look, and the terminal is sent no foreground colour for it (fewer bytes over SSH).

`truecolor=False` quantises to the xterm 256-colour palette (the 6x6x6 cube 16-231 and the grey
ramp 232-255, picking the nearer of the two candidates) for terminals, often over SSH, that do not
advertise 24-bit colour; `detect_truecolor` makes that call from the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from rich.color import Color
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

UPPER_HALF_BLOCK = "\u2580"  # "▀": foreground paints the top half of the cell, background the bottom
SEGMENT_CACHE_MAX = 65536  # entries (one per colour pair and run length) before the cache is cleared
INDEX_CACHE_MAX = 16  # (frame shape, width, height) layouts kept
RUN_BITS = 16  # low bits of a run code that hold the run length, cells (so width < 65536)
RUN_MASK = (1 << RUN_BITS) - 1
COLOUR_BITS = 24  # bits of one packed colour: 0xRRGGBB in truecolor mode, a palette index in 256-colour mode

XTERM_CUBE_LEVELS = np.array([0, 95, 135, 175, 215, 255], dtype=np.int32)  # 0-255 levels of colours 16-231
XTERM_CUBE_FIRST = 16  # palette index of cube colour (0, 0, 0)
XTERM_GREY_FIRST = 232  # palette index of the darkest grey of the ramp
XTERM_GREY_STEPS = 24  # greys 232-255 are 8, 18, ..., 238

# COLORTERM values that promise 24-bit colour; ssh does not forward COLORTERM, TERM survives.
TRUECOLOR_COLORTERMS = frozenset({"truecolor", "24bit"})
TRUECOLOR_TERM_PROGRAMS = frozenset(
    {"iterm.app", "wezterm", "vscode", "ghostty", "hyper", "tabby", "rio", "warpterminal", "kitty", "alacritty"}
)
TRUECOLOR_TERM_PARTS = ("direct", "truecolor", "24bit", "kitty", "alacritty", "foot", "wezterm", "ghostty", "contour")


def detect_truecolor(environ: Mapping[str, str]) -> bool:
    """Whether the terminal described by `environ` (e.g. `os.environ`) shows 24-bit colour.

    True when COLORTERM is "truecolor"/"24bit", TERM_PROGRAM names a terminal known to do 24-bit
    colour (iTerm.app, WezTerm, vscode, ghostty, ...), TERM names one (xterm-direct, xterm-kitty,
    alacritty, foot, wezterm, ...), or WT_SESSION says Windows Terminal. Apple's Terminal.app and
    plain xterm-256color without COLORTERM (the usual state over SSH) give False.
    """
    if environ.get("COLORTERM", "").strip().lower() in TRUECOLOR_COLORTERMS:
        return True
    if environ.get("TERM_PROGRAM", "").strip().lower() in TRUECOLOR_TERM_PROGRAMS:
        return True
    if environ.get("WT_SESSION"):
        return True
    term = environ.get("TERM", "").lower()
    return any(part in term for part in TRUECOLOR_TERM_PARTS)


def _xterm_luts() -> tuple[np.ndarray, np.ndarray]:
    """(nearest cube level index for each 0-255 value, nearest grey step for each 0-255 mean), int32 (256,)."""
    values = np.arange(256, dtype=np.int32)
    cube = np.abs(values[:, None] - XTERM_CUBE_LEVELS[None, :]).argmin(axis=1).astype(np.int32)
    grey_levels = 8 + 10 * np.arange(XTERM_GREY_STEPS, dtype=np.int32)
    grey = np.abs(values[:, None] - grey_levels[None, :]).argmin(axis=1).astype(np.int32)
    return cube, grey


_CUBE_LUT, _GREY_LUT = _xterm_luts()


def quantise_xterm256(packed: np.ndarray) -> np.ndarray:
    """Nearest xterm 256-colour palette index (16-255) of each packed 0xRRGGBB colour.

    Args:
        packed: any shape, integer dtype, 0xRRGGBB values.

    Returns:
        Same shape, uint32, palette indices 16-255: the nearer (squared RGB distance) of the
        nearest 6x6x6 cube colour and the nearest grey of the 232-255 ramp.
    """
    p = packed.astype(np.int32)
    r, g, b = (p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF
    ri, gi, bi = _CUBE_LUT[r], _CUBE_LUT[g], _CUBE_LUT[b]
    cube_d = (XTERM_CUBE_LEVELS[ri] - r) ** 2 + (XTERM_CUBE_LEVELS[gi] - g) ** 2 + (XTERM_CUBE_LEVELS[bi] - b) ** 2
    gk = _GREY_LUT[(r + g + b) // 3]
    gv = 8 + 10 * gk
    grey_d = (gv - r) ** 2 + (gv - g) ** 2 + (gv - b) ** 2
    cube_index = XTERM_CUBE_FIRST + 36 * ri + 6 * gi + bi
    return np.where(grey_d < cube_d, XTERM_GREY_FIRST + gk, cube_index).astype(np.uint32)


class _SegmentCache(dict):
    """Run code -> Segment; a miss builds and keeps the Segment (lookups stay in C on a hit)."""

    def __init__(self, make: Callable[[int], Segment]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, code: int) -> Segment:
        segment = self[code] = self._make(code)
        return segment


class HalfBlockRenderer:
    """Turns (H, W, 3) uint8 RGB frames into `height` Strips of `width` half-block cells.

    Scaling is nearest neighbour and keeps the frame's aspect ratio, taking a half-block pixel
    as square: the frame is fitted inside `width` x `2 * height` pixels, centred, and the
    margins are black. (A 96x96 frame in 96x48 cells has no margin.)

    One renderer per view: its caches are tuned to one stream of similar frames. Not thread-safe.
    """

    def __init__(self, truecolor: bool = True) -> None:
        self.truecolor = truecolor
        self._layouts: dict[tuple[tuple[int, ...], int, int], np.ndarray] = {}
        self._segments = _SegmentCache(self._make_segment)
        self._styles: dict[int, Style] = {}  # per (top, bottom) pair: runs of many lengths share it
        self._colors: dict[int, Color] = {}  # per colour: a frame has hundreds, its pairs thousands
        self._strips: dict[tuple[int, ...], Strip] = {}

    def render(self, frame: np.ndarray, width: int, height: int) -> list[Strip]:
        """Half-block strips of `frame`.

        Args:
            frame: (H, W, 3) uint8 RGB.
            width: cells per strip (pixel columns).
            height: number of strips (pixel rows / 2).

        Returns:
            `height` Strips, each exactly `width` cells wide (width < 65536). A row equal to
            another row of this frame or of the previous frame is the same Strip object.
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if height <= 0:
            return []
        if width <= 0:
            return [Strip([], 0) for _ in range(height)]
        if width > RUN_MASK:
            raise ValueError(f"width must be < {RUN_MASK + 1} cells, got {width}")
        flat_index = self._layout(frame.shape, width, height)

        # Pack each source pixel to one int; the extra last entry is the black of the margins.
        h, w = frame.shape[:2]
        f = frame.reshape(h * w, 3).astype(np.uint32)
        packed = np.empty(h * w + 1, dtype=np.uint32)
        packed[:-1] = (f[:, 0] << 16) | (f[:, 1] << 8) | f[:, 2]
        packed[-1] = 0
        if not self.truecolor:
            # Quantise the source, not the scaled image: fewer pixels when scaling up, and equal
            # neighbours after quantisation merge into longer runs.
            packed = quantise_xterm256(packed)
        pixels = packed[flat_index]  # (2 * height, width)
        pair = (pixels[0::2].astype(np.uint64) << np.uint64(COLOUR_BITS)) | pixels[1::2]  # (height, width)

        # Runs of equal cells, row by row: a run starts where the pair changes or a row begins.
        keys = pair.ravel()
        starts = np.empty(keys.size, dtype=bool)
        starts[0] = True
        np.not_equal(keys[1:], keys[:-1], out=starts[1:])
        starts[::width] = True
        start_at = np.flatnonzero(starts)
        lengths = np.diff(start_at, append=keys.size).astype(np.uint64)
        codes = ((keys[start_at] << np.uint64(RUN_BITS)) | lengths).tolist()
        row_ends = np.searchsorted(start_at, np.arange(width, keys.size + 1, width)).tolist()

        if len(self._segments) > SEGMENT_CACHE_MAX:
            self._segments.clear()
            self._styles.clear()
            self._colors.clear()
        segment_of = self._segments.__getitem__  # builds the Segment on a miss
        # Rows are looked up among this frame's and the previous frame's rows only: in a live view
        # rows rarely come back later than that, and the dict stays small without being cleared.
        previous, current = self._strips, {}
        out: list[Strip] = []
        begin = 0
        for end in row_ends:
            row = tuple(codes[begin:end])
            begin = end
            strip = current.get(row)
            if strip is None:
                strip = previous.get(row)
                if strip is None:
                    strip = Strip(list(map(segment_of, row)), width)
                current[row] = strip
            out.append(strip)
        self._strips = current
        return out

    def _layout(self, shape: tuple[int, ...], width: int, height: int) -> np.ndarray:
        """(2 * height, width) intp indices into the packed frame; margins index the extra black entry."""
        key = (shape, width, height)
        flat_index = self._layouts.get(key)
        if flat_index is not None:
            return flat_index
        h, w = shape[:2]
        rows = 2 * height
        scale = min(width / w, rows / h)
        out_w = min(width, max(1, round(w * scale)))
        out_h = min(rows, max(1, round(h * scale)))
        x0, y0 = (width - out_w) // 2, (rows - out_h) // 2
        # Sample at cell centres so that an integer zoom repeats every source pixel equally.
        xs = np.arange(width) - x0
        ys = np.arange(rows) - y0
        src_x = np.clip(((xs + 0.5) * w / out_w).astype(np.intp), 0, w - 1)
        src_y = np.clip(((ys + 0.5) * h / out_h).astype(np.intp), 0, h - 1)
        inside = ((ys >= 0) & (ys < out_h))[:, None] & ((xs >= 0) & (xs < out_w))[None, :]
        flat_index = np.where(inside, src_y[:, None] * w + src_x[None, :], h * w).astype(np.intp)
        if len(self._layouts) >= INDEX_CACHE_MAX:
            self._layouts.clear()
        self._layouts[key] = flat_index
        return flat_index

    def _make_segment(self, code: int) -> Segment:
        """The Segment of a run code (top colour, bottom colour, length)."""
        n = code & RUN_MASK
        pair = code >> RUN_BITS
        top, bottom = pair >> COLOUR_BITS, pair & ((1 << COLOUR_BITS) - 1)
        style = self._styles.get(pair)
        if style is None:
            if top == bottom:
                style = Style(bgcolor=self._color(bottom))
            else:
                style = Style(color=self._color(top), bgcolor=self._color(bottom))
            self._styles[pair] = style
        return Segment((" " if top == bottom else UPPER_HALF_BLOCK) * n, style)

    def _color(self, value: int) -> Color:
        """The rich Color of a packed 0xRRGGBB (truecolor) or palette index (256-colour mode)."""
        color = self._colors.get(value)
        if color is None:
            if self.truecolor:
                color = Color.from_triplet(ColorTriplet(value >> 16, (value >> 8) & 0xFF, value & 0xFF))
            else:
                color = Color.from_ansi(value)
            self._colors[value] = color
        return color
