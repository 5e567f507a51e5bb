"""The track map: lap progress and the gap from a real race, the map image, and the map and
replay key in the real app under Pilot (autopilot races: the same on every CPU)."""

from __future__ import annotations

import numpy as np
import pytest
from test_tui import drive as drive_app
from waiting import pilot_wait_for, settled_screen

from engine.race.duel import FPS, Duel
from engine.race.race_log import RaceLog
from engine.race.replay import replay
from engine.race.track_map import LapProgress, car_positions, track_geometry
from tui.app import make_app
from tui.map_image import CAR_COLOURS, ROAD, MapPainter
from tui.widgets.frame_view import CELL_PX
from tui.widgets.knob_row import KnobRow
from tui.widgets.track_map import GRAPHICS_MAP_PX, MapInfo, TrackMapView


def test_lap_progress_and_gap_follow_a_real_race():
    with Duel(driver="autopilot", renderer="fast", device="cpu") as duel:
        duel.reset(7)
        envs = duel.vec.local_envs()
        geometry = track_geometry(envs[0], 7)
        lap = LapProgress(geometry)
        assert geometry.count == len(envs[0].unwrapped.track) and geometry.tiles.shape == (geometry.count, 4, 2)
        history = []
        for step in range(1, 301):
            duel.step()
            lap.update(step, car_positions(envs))
            history.append(lap.progress.copy())
        history = np.array(history)
        # the cars move forward round the lap, a tile at most per step (a car covers < 1 m per step)
        assert np.all(np.diff(history, axis=0) > -0.5) and np.all(np.diff(history, axis=0) < 1.5)
        tiles_visited = np.array([t.tiles_visited for t in duel.telemetry])
        assert np.all(np.abs(history[-1] - tiles_visited) < 4)  # progress agrees with the env's own tile count
        leader, tiles, seconds = lap.gap()
        assert leader is not None and tiles == abs(history[-1, 0] - history[-1, 1])
        # the gap in seconds: how long ago the leader reached the tile the other car is on now
        trail = 1 - leader
        reached = lap.reached[leader, int(np.floor(lap.progress[trail]))]
        assert seconds == (300 - reached) / FPS and 0 <= seconds < 5


def test_map_image_draws_the_road_and_both_cars():
    with Duel(driver="autopilot", renderer="fast", device="cpu") as duel:
        duel.reset(7)
        geometry = track_geometry(duel.vec.local_envs()[0], 7)
    painter = MapPainter(geometry, 64)
    centre = np.round(painter.to_pixels(geometry.centre)).astype(int)
    assert np.all((centre >= 0) & (centre < 64))  # the whole track fits
    road = np.all(painter.base == ROAD, axis=2)
    assert road[np.clip(centre[:, 1], 0, 63), np.clip(centre[:, 0], 0, 63)].mean() > 0.8  # the outline is the track
    assert 0.05 < road.mean() < 0.5
    far_apart = geometry.centre[[0, geometry.count // 2]]
    img = painter.draw(far_apart)
    for p, (c, r) in enumerate(np.round(painter.to_pixels(far_apart)).astype(int)):
        assert tuple(img[r, c]) == CAR_COLOURS[p]


def app(record_dir=None):
    a = make_app(seed=7, device="cpu", renderer="fast", graphics="halfblock", speed=None, truecolor=True,
                 driver="autopilot")  # fmt: skip
    if record_dir is not None:
        a.record_dir = record_dir
    return a


def colour_cells(view: TrackMapView, colour: tuple[int, int, int]) -> int:
    """Half-block cells of the map that show `colour` (top or bottom half)."""
    hexes = {"#{:02x}{:02x}{:02x}".format(*colour)}
    n = 0
    for y in range(view.size.height):
        for seg in view.render_line(y):
            if seg.style and ({str(seg.style.color and seg.style.color.triplet and seg.style.color.triplet.hex),
                               str(seg.style.bgcolor and seg.style.bgcolor.triplet and seg.style.bgcolor.triplet.hex)}
                              & hexes):  # fmt: skip
                n += len(seg.text)
    return n


def test_map_at_80x24_shows_both_cars_the_gap_and_hides_with_m():
    a = app()

    async def script(pilot):
        a.runner.step_n(200)
        a.draw()
        await settled_screen(pilot)
        view, info = a.query_one("#map", TrackMapView), a.query_one("#map-info", MapInfo)
        assert view.region.right <= 80 and view.region.bottom <= 23 and view.size.width >= 20  # fits 80x24
        snap = a.runner.snapshot()
        leader, tiles, seconds = snap.gap
        text = str(info.render())
        assert f"{leader} +{tiles:.1f} tiles  +{seconds:.2f} s" in text and "%" in text
        assert colour_cells(view, CAR_COLOURS[0]) + colour_cells(view, CAR_COLOURS[1]) > 0
        assert colour_cells(view, ROAD) > 20  # the outline
        before = colour_cells(view, CAR_COLOURS["AB".index(leader)])
        assert before > 0  # the leader is drawn on top
        knob = a.query_one(KnobRow)
        narrow = knob.size.width
        await pilot.press("m")
        await settled_screen(pilot)
        assert not a.query_one("#map-pane").display and knob.size.width > narrow  # the knobs take the room
        await pilot.press("m")
        await settled_screen(pilot)
        assert a.query_one("#map-pane").display
        a.runner.step_n(50)  # live: the dots move with the race
        a.draw()
        await settled_screen(pilot)
        assert a.runner.snapshot().progress.min() > snap.progress.min()
        assert str(info.render()) != text

    drive_app(a, script, size=(80, 24))


def test_replay_key_writes_a_record_that_replays(tmp_path):
    a = app(record_dir=tmp_path / "replays")

    async def script(pilot):
        a.runner.step_n(30)
        a.runner.set_knob(0, "risk_aversion", 0.4)
        a.runner.step_n(30)
        records = lambda: sorted((tmp_path / "replays").glob("duel-7-step60-*.json"))  # noqa: E731
        await pilot.press("w")
        await pilot_wait_for(pilot, lambda: len(records()) == 1, "the first record written", seen=records)
        await pilot.press("w")  # a second one never replaces the first
        await pilot_wait_for(pilot, lambda: len(records()) == 2, "the second record written", seen=records)

    drive_app(a, script, size=(80, 24))
    files = sorted((tmp_path / "replays").glob("duel-7-step60-*.json"))
    assert len(files) == 2
    log = RaceLog.load(files[0])
    assert log.steps == 60 and log.changes == [{"step": 30, "player": 0, "knobs": log.changes[0]["knobs"]}]
    assert log.changes[0]["knobs"]["risk_aversion"] == 0.4
    result = replay(log)
    assert result.ok and result.verified == 60


@pytest.mark.parametrize("graphics", ["kitty", "sixel"])
def test_map_in_terminal_graphics_is_pixel_exact(graphics):
    from tui.encoders import decode_kitty, decode_sixel

    a = make_app(seed=7, device="cpu", renderer="fast", graphics=graphics, speed=None, truecolor=True,
                 driver="autopilot")  # fmt: skip

    async def script(pilot):
        a.runner.step_n(100)
        a.draw()
        await settled_screen(pilot)
        view = a.query_one("#map", TrackMapView)
        snap = a.runner.snapshot()
        w, h = view.size
        side = min(w * CELL_PX[0], h * CELL_PX[1], GRAPHICS_MAP_PX)
        expected = MapPainter(snap.track, side).draw(snap.positions, on_top="AB".index(snap.gap[0]))
        data = view.graphics(2)
        payload = data[data.index("H", data.index("\x1b[?2026h\x1b[")) + 1 : -len("\x1b[?2026l\x1b8")]
        if graphics == "kitty":
            assert np.array_equal(decode_kitty(payload), expected)  # every pixel of the map, as painted
        else:
            pixels = decode_sixel(payload)
            assert pixels.shape == expected.shape and np.abs(pixels.astype(int) - expected).max() <= 8
        assert side > 2 * min(w, 2 * h)  # finer than half-block cells

    drive_app(a, script, size=(80, 24))
