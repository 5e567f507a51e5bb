"""Terminal graphics encoders for live frames: DEC sixel and the Kitty graphics protocol.

Half-block cells (`tui.halfblock`) give two pixels per cell; a terminal with a graphics protocol
can show the 96x96 CarRacing frame pixel for pixel. Two players at 30 fps means 60 encodes a
second on a machine that is also running the models, so the loops are in numba and the
per-frame Python work is a handful of numpy calls.

Sixel (xterm -ti vt340, foot, WezTerm, mlterm, Konsole, iTerm2, Windows Terminal, ...): a
paletted format. Colours are defined in registers ("#n;2;r;g;b", 0-100 percent), then the image
is sent in bands of 6 pixel rows; in a band each colour is one pass over the columns, one
character (63 + 6-bit mask) per column, run-length encoded ("!n<char>"), "$" going back to the
band's left edge for the next colour and "-" moving to the next band. The palette is adaptive:
a CarRacing frame has ~180-240 distinct colours, so up to `SIXEL_MAX_COLOURS` the colours are
exact (up to the 0-100 percent precision of sixel registers, at most 1 level of 0-255 off);
beyond that the colours are grouped by their top 7, 6, 5 then 4 bits per channel (palette
colour = the group's mean), and as a last resort mapped to the 6x6x6 cube of multiples of 51.

Kitty (kitty, Ghostty, WezTerm, Konsole): RGB (f=24), zlib-deflated (o=z) by default, base64
in chunks of at most 4096 bytes ("m=1" on all but the last). Exact colours. Deflate shrinks a
flat-coloured frame ~12x for ~0.03 ms of encoding. The image is transmitted and shown in one go
(a=T); re-sending the same image id replaces the image and its placements, so a live view
re-sends each frame under a fixed id (one id per player view).

Placing the output (the caller's job, outside Textual's rendering):

- Both formats draw at the terminal's cursor: write "\\x1b[{row};{col}H" (1-based) for the
  view's top-left cell first, wrap cursor save/restore ("\\x1b7" ... "\\x1b8") around it, and
  put the whole update in synchronized output (DEC mode 2026) so it does not tear.
- Kitty: C=1 (sent unless move_cursor) keeps the cursor still. Images sit above the text and
  text written into their cells does not erase them, so delete them when the view goes away
  ("\\x1b_Ga=d,d=I,i={id},q=2\\x1b\\\\"). q=2 matters: replies would arrive on stdin as keys.
- Sixel: the pixels replace the cells' contents, so anything Textual later draws in those cells
  (a repaint, a resize, an overlay) wipes them until the next frame; the widget underneath
  should render blank strips that never change. The cursor moves after a sixel image, and an
  image that reaches the bottom line of the screen scrolls the whole screen (sixel scrolling, the
  default; DECSDM, mode 80, turns it off but its sense differs between terminals): keep the image
  inside the view's cells, i.e. pick `scale` from the cell size in pixels (ask with "\\x1b[16t").
  Heights that are a multiple of 6 (96, 192) fill whole sixel bands.

`decode_sixel` and `decode_kitty` read back exactly what these encoders write; they exist for
the tests, not as general decoders.
"""

from __future__ import annotations

import base64
import re
import zlib

import numba
import numpy as np

SIXEL_MAX_COLOURS = 256  # colour registers used at most; 256 is what xterm, foot, WezTerm, mlterm allow
SIXEL_GROUP_SHIFTS = (1, 2, 3, 4)  # bits dropped per channel, in turn, when a frame has too many colours
SIXEL_CUBE_STEP = 51  # 0-255 levels of the fallback 6x6x6 cube: 0, 51, ..., 255 (0, 20, ..., 100 percent)
SIXEL_BAND_ROWS = 6  # pixel rows per sixel character
SIXEL_CHAR_BASE = 63  # "?": the sixel character of an empty column
SIXEL_MIN_RLE = 4  # runs this long or longer are written "!n<char>" (shorter ones repeat the char)
SIXEL_START = "\x1bPq"  # DCS ... q; aspect and size come from the raster attributes
SIXEL_END = "\x1b\\"  # ST

KITTY_CHUNK_BYTES = 4096  # max base64 payload per escape code (protocol limit; a multiple of 4)
KITTY_ZLIB_LEVEL = 1  # deflate level: level 1 gets most of the size win on flat-coloured frames, fastest
KITTY_START = "\x1b_G"  # APC G
KITTY_END = "\x1b\\"  # ST

_HASH_SLOTS = 1024  # open-addressing table for the palette search, >= 4x SIXEL_MAX_COLOURS
_HASH_MULT = 2654435761  # Knuth's multiplicative hash constant


def _check_frame(frame: np.ndarray, scale: int) -> np.ndarray:
    frame = np.ascontiguousarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame must not be empty, got {frame.shape}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return frame


# ---------------------------------------------------------------------------------------------- sixel


@numba.njit(cache=True)
def _group_palette(frame, shift, max_colours, index, sums, counts):
    """Colour groups of `frame` (H, W, 3) uint8 keyed by each channel >> shift.

    Writes index (H, W) uint8 group numbers, sums (max_colours, 3) int64, counts (max_colours,)
    int64 and returns the number of groups, or -1 as soon as there would be more than max_colours.
    """
    h, w = frame.shape[0], frame.shape[1]
    keys = np.full(_HASH_SLOTS, -1, np.int64)
    slot_group = np.zeros(_HASH_SLOTS, np.int64)
    n = 0
    for y in range(h):
        for x in range(w):
            r = np.int64(frame[y, x, 0])
            g = np.int64(frame[y, x, 1])
            b = np.int64(frame[y, x, 2])
            key = ((r >> shift) << 16) | ((g >> shift) << 8) | (b >> shift)
            slot = ((key * _HASH_MULT) >> 16) & (_HASH_SLOTS - 1)
            while keys[slot] != -1 and keys[slot] != key:
                slot = (slot + 1) & (_HASH_SLOTS - 1)
            if keys[slot] == -1:
                if n == max_colours:
                    return -1
                keys[slot] = key
                slot_group[slot] = n
                sums[n, 0] = 0
                sums[n, 1] = 0
                sums[n, 2] = 0
                counts[n] = 0
                n += 1
            group = slot_group[slot]
            index[y, x] = group
            sums[group, 0] += r
            sums[group, 1] += g
            sums[group, 2] += b
            counts[group] += 1
    return n


def sixel_palette(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A palette of at most `SIXEL_MAX_COLOURS` colours for `frame`, and each pixel's entry.

    Args:
        frame: (H, W, 3) uint8 RGB.

    Returns:
        (index (H, W) uint8, palette (n, 3) uint8). Exact colours when the frame has at most
        SIXEL_MAX_COLOURS; else group means by fewer bits per channel (error < 2**shift per
        channel); else the 6x6x6 cube of multiples of 51 (error <= 25 per channel).
    """
    frame = _check_frame(frame, 1)
    h, w = frame.shape[:2]
    index = np.empty((h, w), np.uint8)
    sums = np.empty((SIXEL_MAX_COLOURS, 3), np.int64)
    counts = np.empty(SIXEL_MAX_COLOURS, np.int64)
    for shift in (0, *SIXEL_GROUP_SHIFTS):
        n = _group_palette(frame, shift, SIXEL_MAX_COLOURS, index, sums, counts)
        if n > 0:
            c = counts[:n, None]
            return index, ((sums[:n] + c // 2) // c).astype(np.uint8)
    levels = (frame.astype(np.int32) + SIXEL_CUBE_STEP // 2) // SIXEL_CUBE_STEP  # 0..5 per channel
    cube = np.arange(6, dtype=np.int32) * SIXEL_CUBE_STEP
    palette = np.stack(np.meshgrid(cube, cube, cube, indexing="ij"), axis=-1).reshape(216, 3).astype(np.uint8)
    index = (36 * levels[..., 0] + 6 * levels[..., 1] + levels[..., 2]).astype(np.uint8)
    return index, palette


@numba.njit(cache=True)
def _write_int(out, pos, value):
    """Decimal digits of value >= 0 at out[pos:]; returns the new pos."""
    if value == 0:
        out[pos] = 48
        return pos + 1
    digits = 0
    v = value
    while v > 0:
        digits += 1
        v //= 10
    end = pos + digits
    v = value
    for i in range(end - 1, pos - 1, -1):
        out[i] = 48 + v % 10
        v //= 10
    return end


@numba.njit(cache=True)
def _sixel_bands(index, n_colours, scale, out):
    """The sixel bands of index (H, W) uint8 zoomed by `scale`, written into out (uint8); returns the length.

    Per band: one pass per colour present, its columns as RLE'd sixel characters, trailing empty
    columns left out, "$" between colours and "-" between bands.
    """
    h = index.shape[0] * scale
    w = index.shape[1] * scale
    bits = np.zeros((n_colours, w), np.uint8)
    used = np.zeros(n_colours, np.bool_)
    used_list = np.empty(n_colours, np.int64)
    end_col = np.zeros(n_colours, np.int64)
    pos = 0
    for top in range(0, h, 6):
        n_used = 0
        for k in range(min(6, h - top)):
            src_row = index[(top + k) // scale]
            bit = np.uint8(1 << k)
            for x in range(w):
                c = src_row[x // scale]
                if not used[c]:
                    used[c] = True
                    used_list[n_used] = c
                    n_used += 1
                bits[c, x] |= bit
                if x >= end_col[c]:  # rows of a band restart at x = 0: keep the furthest column
                    end_col[c] = x + 1
        for j in range(n_used):
            c = used_list[j]
            if j > 0:
                out[pos] = 36  # "$"
                pos += 1
            out[pos] = 35  # "#"
            pos = _write_int(out, pos + 1, c)
            row = bits[c]
            end = end_col[c]
            x = 0
            while x < end:
                ch = row[x]
                run = 1
                while x + run < end and row[x + run] == ch:
                    run += 1
                if run >= 4:
                    out[pos] = 33  # "!"
                    pos = _write_int(out, pos + 1, run)
                    out[pos] = 63 + ch
                    pos += 1
                else:
                    for _ in range(run):
                        out[pos] = 63 + ch
                        pos += 1
                x += run
            row[:end] = 0
            used[c] = False
            end_col[c] = 0
        if top + 6 < h:
            out[pos] = 45  # "-"
            pos += 1
    return pos


def encode_sixel(frame: np.ndarray, scale: int = 1) -> str:
    """DECSIXEL image of `frame`, each pixel repeated `scale` x `scale` times.

    Args:
        frame: (H, W, 3) uint8 RGB.
        scale: integer zoom, nearest neighbour (2 makes a 96x96 frame 192x192 pixels).

    Returns:
        "\\x1bPq" + raster attributes '"1;1;W;H' (1:1 pixels) + colour registers + bands + "\\x1b\\\\",
        ASCII. Drawn at the cursor; see the module docstring.
    """
    frame = _check_frame(frame, scale)
    scale = int(scale)
    index, palette = sixel_palette(frame)
    h, w = frame.shape[0] * scale, frame.shape[1] * scale
    percent = (palette.astype(np.int32) * 100 + 127) // 255  # registers take 0-100, rounded to nearest
    registers = "".join(f"#{i};2;{r};{g};{b}" for i, (r, g, b) in enumerate(percent.tolist()))
    # Bound: per band at most one "$#ccc" per colour present (<= 6 * w of them) and at most 2
    # tokens (a run of "?" and a mark) per painted (colour, column), each <= 2 + digits bytes.
    bands = -(-h // SIXEL_BAND_ROWS)
    per_band = 6 * w * (6 + 2 * (2 + len(str(w)))) + 1
    out = np.empty(bands * per_band, np.uint8)
    n = _sixel_bands(index, len(palette), scale, out)
    return f'{SIXEL_START}"1;1;{w};{h}{registers}{out[:n].tobytes().decode("ascii")}{SIXEL_END}'


_SIXEL_TOKEN = re.compile(r'"([\d;]*)|#([\d;]*)|!(\d+)([?-~])|([?-~]+)|(\$)|(-)')


def decode_sixel(data: str) -> np.ndarray:
    """(H, W, 3) uint8 image of a sixel string written by `encode_sixel` (size from the raster attributes).

    Register colours come back as round(percent * 255 / 100).
    """
    start, end = data.index("q") + 1, data.rindex(SIXEL_END)
    body = data[start:end]
    image: np.ndarray | None = None
    registers: dict[int, tuple[int, int, int]] = {}
    colour = (0, 0, 0)
    x = band = 0

    def paint(ch: str, n: int) -> None:
        mask = ord(ch) - 63
        for k in range(6):
            y = band * 6 + k
            if mask >> k & 1 and y < image.shape[0]:
                image[y, x : x + n] = colour

    for m in _SIXEL_TOKEN.finditer(body):
        raster, reg, rle_n, rle_ch, chars, cr, nl = m.groups()
        if raster is not None:
            _, _, w, h = (int(v) for v in raster.split(";"))
            image = np.zeros((h, w, 3), np.uint8)
        elif reg is not None:
            params = [int(v) for v in reg.split(";")]
            if len(params) == 5:
                registers[params[0]] = tuple((p * 255 + 50) // 100 for p in params[2:])
            colour = registers[params[0]]
        elif rle_n is not None:
            paint(rle_ch, int(rle_n))
            x += int(rle_n)
        elif chars is not None:
            for ch in chars:
                paint(ch, 1)
                x += 1
        elif cr is not None:
            x = 0
        elif nl is not None:
            x, band = 0, band + 1
    if image is None:
        raise ValueError("no raster attributes in sixel data")
    return image


# ---------------------------------------------------------------------------------------------- kitty


def encode_kitty(
    frame: np.ndarray,
    image_id: int,
    scale: int = 1,
    columns: int | None = None,
    rows: int | None = None,
    *,
    compress: bool = True,
    placement_id: int | None = None,
    move_cursor: bool = False,
) -> str:
    """Kitty graphics protocol escape codes that transmit `frame` and show it at the cursor.

    Args:
        frame: (H, W, 3) uint8 RGB.
        image_id: 1..4294967295. Re-sending an id replaces that image (and its placements).
        scale: integer zoom, nearest neighbour, done here (the terminal's own scaling to c/r may blur).
        columns, rows: cells to show the image over (c=, r=); the terminal scales to fit.
        compress: zlib-deflate the RGB before base64 (o=z). On by default: on a CarRacing frame it
            costs ~0.03 ms more to encode and makes the output ~12x smaller (about 3 KB instead of
            37 KB), which is what the terminal (or SSH) has to move and parse 60 times a second.
        placement_id: p=, so that showing the image again moves its placement rather than adding one.
        move_cursor: False sends C=1, leaving the cursor where it was (Textual does not expect it to move).

    Returns:
        ASCII: "\\x1b_Ga=T,f=24,s=W,v=H,i=id,q=2,...,m=1;<base64>\\x1b\\\\" then continuation
        chunks "\\x1b_Gm=1,q=2;<base64>\\x1b\\\\", the last with m=0. Each payload is at most
        `KITTY_CHUNK_BYTES` bytes, all but the last a multiple of 4 (one base64 stream, cut).
    """
    frame = _check_frame(frame, scale)
    if not 1 <= image_id <= 0xFFFFFFFF:
        raise ValueError(f"image_id must be in 1..4294967295, got {image_id}")
    scale = int(scale)
    if scale > 1:
        frame = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    h, w = frame.shape[:2]
    raw = frame.tobytes()
    keys = f"a=T,f=24,s={w},v={h},i={image_id},q=2"
    if compress:
        raw = zlib.compress(raw, KITTY_ZLIB_LEVEL)
        keys += ",o=z"
    if columns is not None:
        keys += f",c={int(columns)}"
    if rows is not None:
        keys += f",r={int(rows)}"
    if placement_id is not None:
        keys += f",p={int(placement_id)}"
    if not move_cursor:
        keys += ",C=1"
    payload = base64.b64encode(raw).decode("ascii")
    chunks = [payload[i : i + KITTY_CHUNK_BYTES] for i in range(0, len(payload), KITTY_CHUNK_BYTES)]
    last = len(chunks) - 1
    # Continuations carry only m (and q, which the spec allows and some terminals want per chunk).
    parts = [f"{KITTY_START}{keys},m={int(last > 0)};{chunks[0]}{KITTY_END}"]
    parts.extend(f"{KITTY_START}m={int(i < last)},q=2;{chunk}{KITTY_END}" for i, chunk in enumerate(chunks[1:], 1))
    return "".join(parts)


_KITTY_CHUNK = re.compile(r"\x1b_G([^;\x1b]*);([^\x1b]*)\x1b\\")


def decode_kitty(data: str) -> np.ndarray:
    """(H, W, 3) uint8 image of an `encode_kitty` string: joins the chunks, base64, then zlib if o=z."""
    chunks = _KITTY_CHUNK.findall(data)
    if not chunks:
        raise ValueError("no kitty graphics escape codes in data")
    keys = dict(kv.split("=", 1) for kv in chunks[0][0].split(","))
    if keys.get("f") != "24":
        raise ValueError(f"only f=24 is decoded, got f={keys.get('f')}")
    raw = base64.b64decode("".join(payload for _, payload in chunks))
    if keys.get("o") == "z":
        raw = zlib.decompress(raw)
    w, h = int(keys["s"]), int(keys["v"])
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3).copy()
