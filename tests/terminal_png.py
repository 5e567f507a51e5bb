"""Render a terminal capture (tmux `capture-pane -e -p`, ANSI colours) to a PNG.

Used by the end-to-end TUI test to keep a picture of what the real terminal showed, and
to make the README's screenshot. The capture is replayed through pyte (a VT100
emulator); block characters are drawn as exact rectangles so half-block frames look as
they do in a terminal.
"""

from __future__ import annotations

from pathlib import Path

import pyte
from PIL import Image, ImageDraw, ImageFont

CELL_W, CELL_H = 9, 18  # pixels per terminal cell
FONT_PATHS = ["/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"]
DEFAULT_FG, DEFAULT_BG = (220, 220, 220), (12, 12, 16)
NAMED = {
    "black": (0, 0, 0), "red": (205, 49, 49), "green": (13, 188, 121), "brown": (229, 229, 16),
    "yellow": (229, 229, 16), "blue": (36, 114, 200), "magenta": (188, 63, 188), "cyan": (17, 168, 205),
    "white": (229, 229, 229), "brightblack": (102, 102, 102), "brightred": (241, 76, 76),
    "brightgreen": (35, 209, 139), "brightyellow": (245, 245, 67), "brightblue": (59, 142, 234),
    "brightmagenta": (214, 112, 214), "brightcyan": (41, 184, 219), "brightwhite": (255, 255, 255),
}  # fmt: skip


def _rgb(colour: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if colour == "default":
        return default
    if colour in NAMED:
        return NAMED[colour]
    try:
        return tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))  # pyte gives 256 and truecolour as hex
    except ValueError:
        return default


def render(capture: str, columns: int, rows: int, path: Path) -> Path:
    """Write the capture, as a `columns` x `rows` terminal, to `path` (PNG)."""
    screen = pyte.Screen(columns, rows)
    stream = pyte.Stream(screen)
    stream.feed(capture.rstrip("\n").replace("\n", "\r\n"))
    font = next((ImageFont.truetype(p, 14) for p in FONT_PATHS if Path(p).exists()), ImageFont.load_default())
    img = Image.new("RGB", (columns * CELL_W, rows * CELL_H), DEFAULT_BG)
    draw = ImageDraw.Draw(img)
    for y in range(rows):
        line = screen.buffer[y]
        for x in range(columns):
            ch = line[x]
            fg, bg = _rgb(ch.fg, DEFAULT_FG), _rgb(ch.bg, DEFAULT_BG)
            if ch.reverse:
                fg, bg = bg, fg
            x0, y0 = x * CELL_W, y * CELL_H
            draw.rectangle([x0, y0, x0 + CELL_W - 1, y0 + CELL_H - 1], fill=bg)
            if ch.data == "▀":
                draw.rectangle([x0, y0, x0 + CELL_W - 1, y0 + CELL_H // 2 - 1], fill=fg)
            elif ch.data == "▄":
                draw.rectangle([x0, y0 + CELL_H // 2, x0 + CELL_W - 1, y0 + CELL_H - 1], fill=fg)
            elif ch.data == "█":
                draw.rectangle([x0, y0, x0 + CELL_W - 1, y0 + CELL_H - 1], fill=fg)
            elif ch.data.strip():
                draw.text((x0, y0 + 1), ch.data, fill=fg, font=font)
    img.save(path)
    return path
