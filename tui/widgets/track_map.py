"""The track map: the whole track with both cars as coloured dots, and who is ahead by how much.

`TrackMapView` is a `FrameView` whose image is the map (tui/map_image.py), so it draws in the
same modes: half-block cells by default, pixel-exact sixel or kitty images where the terminal
shows them. In half-block mode the image is painted at the widget's own pixel size (no scaling),
and only the rows whose cells changed (where the dots moved) are repainted: a map costs a few
rows per draw, not the whole widget. `MapInfo` is the text beneath: the gap and each car's lap.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.geometry import Region
from textual.widget import Widget

from engine.race.duel import PLAYERS
from engine.race.live import Snapshot
from tui.map_image import CAR_COLOURS, MapPainter
from tui.widgets.frame_view import CELL_PX, FrameView

GRAPHICS_MAP_PX = 640  # largest side of a sixel / kitty map image, pixels


def rgb(colour: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*colour)


class TrackMapView(FrameView):
    """The track from above with a dot per car, updated from each Snapshot."""

    def __init__(self, mode: str = "halfblock", truecolor: bool = True, **kwargs):
        super().__init__(mode, truecolor, **kwargs)
        self._painter: MapPainter | None = None
        self._snap: Snapshot | None = None  # the last one shown: repainted at the new size on a resize

    def _side(self) -> int:
        """The map's side in image pixels: one per half-block pixel, or the cells' pixels for graphics."""
        w, h = self.size.width, self.size.height
        if self.mode in ("sixel", "kitty"):
            return min(w * CELL_PX[0], h * CELL_PX[1], GRAPHICS_MAP_PX)
        return min(w, 2 * h)

    def show_snapshot(self, snap: Snapshot) -> None:
        self._snap = snap
        side = self._side()
        if snap.track is None or side < 4:
            return
        p = self._painter
        if p is None or p.geometry is not snap.track or p.size != side:
            self._painter = MapPainter(snap.track, side)
        leader = snap.gap[0]
        self.show(self._painter.draw(snap.positions, on_top=None if leader is None else PLAYERS.index(leader)))

    def show(self, frame: np.ndarray) -> None:
        if self.mode != "halfblock" or not self._strips or self.frame is None or frame.shape != self.frame.shape:
            super().show(frame)
            return
        # Repaint only the rows that changed: the renderer hands back the very same Strip for a row
        # that did not change, so `is` finds them.
        old = self._strips
        self.frame = frame
        self._strips = self._render_strips()
        changed = [y for y, (a, b) in enumerate(zip(old, self._strips)) if a is not b]
        for y in changed:
            self.refresh(Region(0, y, self.size.width, 1))

    def on_resize(self) -> None:
        super().on_resize()
        self._painter = None
        if self._snap is not None:
            self.show_snapshot(self._snap)


class MapInfo(Widget):
    """Who is ahead along the track, by tiles and seconds, and each car's progress round the lap.

    Drawn at render time from the last snapshot, so it fits whatever width the pane has."""

    DEFAULT_CSS = "MapInfo { height: 3; }"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._snap: Snapshot | None = None

    def show(self, snap: Snapshot) -> None:
        self._snap = snap
        self.refresh()

    def render(self) -> Text:
        snap = self._snap
        text = Text(no_wrap=True, overflow="crop")
        if snap is None:
            return text
        leader, tiles, seconds = snap.gap
        if leader is None:
            text.append("level on the track\n")
        else:
            text.append(f"{leader}", style=f"bold {rgb(CAR_COLOURS[PLAYERS.index(leader)])}")
            text.append(f" +{tiles:.1f} tiles  +{seconds:.2f} s\n")
        n = snap.track.count if snap.track is not None else 1
        progress = snap.progress if snap.progress is not None else np.zeros(2)
        bar_w = max(self.content_region.width - 10, 2)
        for p, name in enumerate(PLAYERS):
            frac = float(np.clip(progress[p] / n, 0.0, 1.0))
            fill = round(frac * bar_w)
            text.append("● ", style=rgb(CAR_COLOURS[p]))
            text.append(f"{name} ", style="bold")
            text.append("━" * fill, style=rgb(CAR_COLOURS[p]))
            text.append("─" * (bar_w - fill), style="grey23")
            text.append(f"{100 * progress[p] / n:4.0f}%" + ("\n" if p == 0 else ""))
        return text


__all__ = ["MapInfo", "TrackMapView"]
