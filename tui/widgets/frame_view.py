"""A live 96x96 frame drawn in the terminal: half-block cells (default), ASCII, sixel or kitty.

Half-block and ASCII frames are ordinary Textual lines (Strips), so they work in every
terminal, over SSH and in tmux. Sixel and kitty frames are terminal graphics: the widget
reserves its cells (blank) and the app writes the encoded image at the widget's position
after each screen update (see `TerminalGraphics` in tui/graphics.py).
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

ASCII_RAMP = " .:-=+*#%@"  # darkest to brightest
MODES = ("halfblock", "ascii", "sixel", "kitty")
CELL_PX = (10, 20)  # assumed terminal cell size in pixels (width, height) when sizing sixel images
KITTY_ID_BASE = 4200  # kitty image ids: one per view, re-sent to replace the image in place


class FrameView(Widget):
    """Shows one RGB frame (H, W, 3) uint8, scaled to the widget, aspect kept."""

    def __init__(self, mode: str = "halfblock", truecolor: bool = True, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"graphics mode {mode!r} is not one of {', '.join(MODES)}")
        self.mode = mode
        self.frame: np.ndarray | None = None
        self._strips: list[Strip] = []
        self._renderer = None
        if mode == "halfblock":
            from tui.halfblock import HalfBlockRenderer

            self._renderer = HalfBlockRenderer(truecolor=truecolor)

    def show(self, frame: np.ndarray) -> None:
        """Draw `frame` (the widget keeps a reference: pass a copy that will not change).

        In sixel and kitty modes the cells stay blank and unchanged (a repaint would wipe a
        sixel image); the app writes `graphics()` after the screen update instead."""
        self.frame = frame
        if self.mode in ("halfblock", "ascii"):
            self._strips = []
            self.refresh()

    def on_resize(self) -> None:
        self._strips = []

    def _render_strips(self) -> list[Strip]:
        w, h = self.size.width, self.size.height
        if self.frame is None or w < 1 or h < 1:
            return [Strip.blank(w)] * h
        if self.mode == "halfblock":
            return self._renderer.render(self.frame, w, h)
        if self.mode == "ascii":
            return ascii_strips(self.frame, w, h)
        return [Strip.blank(w)] * h  # sixel / kitty: cells reserved, the image is written over them

    def render_line(self, y: int) -> Strip:
        if not self._strips:
            self._strips = self._render_strips()
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)

    def image_cells(self) -> tuple[int, int]:
        """(columns, rows) the image occupies, aspect kept (a cell is about twice as tall as wide)."""
        w, h = self.size.width, self.size.height
        side = min(w, 2 * h)
        return side, max(side // 2, 1)

    def graphics(self, image_id: int = 0) -> str:
        """The escape sequence that draws the frame as terminal graphics over this widget's
        cells, centred like the half-block image; "" outside sixel and kitty modes."""
        if self.mode not in ("sixel", "kitty") or self.frame is None or not self.region.area:
            return ""
        from tui.encoders import encode_kitty, encode_sixel

        cols, rows = self.image_cells()
        region = self.content_region
        x = region.x + (region.width - cols) // 2
        y = region.y + (region.height - rows) // 2
        if self.mode == "kitty":
            payload = encode_kitty(self.frame, KITTY_ID_BASE + image_id, columns=cols, rows=rows)
        else:  # whole multiples of the frame that fit the cells, so the image never spills (and scrolls)
            scale = max(1, min(cols * CELL_PX[0], rows * CELL_PX[1]) // self.frame.shape[0])
            payload = encode_sixel(self.frame, scale=scale)
        return f"\x1b7\x1b[?2026h\x1b[{y + 1};{x + 1}H{payload}\x1b[?2026l\x1b8"


def ascii_strips(frame: np.ndarray, width: int, height: int) -> list[Strip]:
    """Brightness as characters, for terminals without colour."""
    side_w, side_h = min(width, 2 * height), min(width, 2 * height) // 2
    if side_w < 1 or side_h < 1:
        return [Strip.blank(width)] * height
    ys = (np.arange(side_h) * frame.shape[0] / side_h).astype(int)
    xs = (np.arange(side_w) * frame.shape[1] / side_w).astype(int)
    lum = frame[ys][:, xs] @ np.array([0.299, 0.587, 0.114])  # (side_h, side_w)
    idx = np.minimum((lum / 256.0 * len(ASCII_RAMP)).astype(int), len(ASCII_RAMP) - 1)
    pad = " " * (width - side_w)
    lines = ["".join(ASCII_RAMP[i] for i in row) + pad for row in idx]
    lines += [" " * width] * (height - side_h)
    return [Strip([Segment(line, Style())], width) for line in lines]
