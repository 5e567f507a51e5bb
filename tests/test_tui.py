"""The terminal app under Textual's Pilot: every control, the invalid-value path, the model view."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from textual.command import CommandList
from waiting import pilot_wait_for, runner_idles, settled_screen

from tui.app import DuelApp, make_app
from tui.widgets.frame_view import FrameView
from tui.widgets.knob_row import KnobRow
from tui.widgets.seed_screen import SeedScreen


def app_for_test(seed: int = 7, speed: float | None = None, graphics: str = "halfblock") -> DuelApp:
    return make_app(seed=seed, device="cpu", renderer="fast", graphics=graphics, speed=speed, truecolor=True)


def drive(app: DuelApp, script, size=(120, 40)) -> None:
    async def main():
        async with app.run_test(size=size) as pilot:
            await script(pilot)

    asyncio.run(main())


async def wait_for(pilot, condition, what: str = "the app's state to change") -> None:
    await pilot_wait_for(pilot, condition, what, seen=lambda: app_state(pilot.app))


def app_state(app: DuelApp) -> str:
    snap = app.runner.snapshot()
    return f"status {snap.status}, step {snap.step}, seed {snap.seed}, notes {[n.message for n in app._notifications]}"


def test_start_pause_reset_and_seeds():
    app = app_for_test(speed=4.0)

    async def script(pilot):
        snap = app.runner.snapshot()
        assert snap.status == "ready" and snap.step == 0 and snap.seed == 7
        await pilot.press("space")
        await wait_for(pilot, lambda: app.runner.snapshot().step >= 20)
        await pilot.press("space")
        paused = app.runner.snapshot()
        assert paused.status == "paused"
        await runner_idles(pilot, app.runner)
        assert app.runner.snapshot().step == paused.step  # nothing moves while paused
        await pilot.press("r")
        assert app.runner.snapshot().step == 0 and app.runner.snapshot().seed == 7
        await pilot.press("n")
        assert app.runner.snapshot().seed != 7
        await pilot.press("s")
        assert isinstance(app.screen, SeedScreen)
        await pilot.press("4", "2", "enter")
        assert not isinstance(app.screen, SeedScreen) and app.runner.snapshot().seed == 42
        await pilot.press("s")
        await pilot.press("escape")
        assert app.runner.snapshot().seed == 42

    drive(app, script)


def test_knobs_change_by_step_and_by_typing_and_refuse_bad_values():
    app = app_for_test()

    async def script(pilot):
        await pilot.press("tab")  # the first knob of player A
        row = app.focused
        assert isinstance(row, KnobRow) and row.player == 0 and row.spec.name == "alpha_action_smoothing"
        await pilot.press("up", "up", "+")
        assert app.runner.snapshot().knobs[0]["alpha_action_smoothing"] == pytest.approx(0.15)
        await pilot.press("-")
        assert app.runner.snapshot().knobs[0]["alpha_action_smoothing"] == pytest.approx(0.10)
        await pilot.press("tab", "tab")  # risk aversion
        assert app.focused.spec.name == "risk_aversion"
        await pilot.press("0", ".", "5", "enter")
        assert app.runner.snapshot().knobs[0]["risk_aversion"] == 0.5
        await pilot.press("space")  # the race goes on through a refusal
        await pilot.press("enter", "3", "enter")
        await wait_for(pilot, lambda: any("refused" in n.message and "risk_aversion = 3.0 is outside [0.0, 1.0]"
                                          in n.message for n in app._notifications), "the refusal's notice")
        assert app.runner.snapshot().knobs[0]["risk_aversion"] == 0.5  # refused, old value kept
        await wait_for(pilot, lambda: app.runner.snapshot().step > 5)
        for _ in range(5):  # to player B's first knob
            await pilot.press("tab")
        assert app.focused.player == 1 and app.focused.spec.name == "alpha_action_smoothing"
        await pilot.press("down")  # already at its minimum: stays there
        assert app.runner.snapshot().knobs[1]["alpha_action_smoothing"] == 0.0
        await pilot.press("d")  # defaults for player B only
        assert app.runner.snapshot().knobs[0]["risk_aversion"] == 0.5
        app.set_focus(None)
        await pilot.press("d")  # no knob focused: both players
        assert app.runner.snapshot().knobs[0]["risk_aversion"] == 0.0

    drive(app, script)


def test_model_view_shows_the_vae_reconstruction_and_quit():
    app = app_for_test()

    async def script(pilot):
        view = app.query_one("#frame-0", FrameView)
        assert view.frame.shape == (96, 96, 3)
        await pilot.press("v")
        assert app.model_view and view.frame.shape == (64, 64, 3)
        assert np.abs(view.frame.astype(int).mean() - 128) < 120  # an image, not a blank
        await pilot.press("v")
        assert view.frame.shape == (96, 96, 3)
        await pilot.press("q")

    drive(app, script)
    assert app.return_code == 0


def test_finished_race_shows_the_winner_and_a_summary():
    app = app_for_test()

    async def script(pilot):
        app.runner.step_n(1000)
        app.draw()
        summary = app.query_one("#summary")
        await wait_for(pilot, lambda: summary.has_class("shown"), "the race's summary")
        snap = app.runner.snapshot()
        assert snap.status == "finished" and snap.winner in ("A", "B", "draw")
        assert summary.has_class("shown") and "Race over" in str(summary.render())
        await pilot.press("space")  # stays finished until reset
        assert app.runner.snapshot().status == "finished"
        await pilot.press("r")
        assert app.runner.snapshot().status == "ready" and not summary.has_class("shown")

    drive(app, script)


def test_command_palette_lists_every_action_and_runs_them():
    app = app_for_test()

    async def script(pilot):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Start / pause", "Reset", "New track", "Type a seed", "Restore defaults", "Model view"} <= titles
        await pilot.press("ctrl+p")
        await pilot.press(*"new track")
        await wait_for(pilot, lambda: app.screen.query(CommandList) and app.screen.query_one(CommandList).option_count,
                       "the palette's matches")  # fmt: skip
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.runner.snapshot().seed != 7, "a new track")

    drive(app, script)


@pytest.mark.parametrize("graphics", ["halfblock", "ascii"])
def test_usable_at_80x24(graphics):
    app = app_for_test(graphics=graphics)

    async def script(pilot):
        for name in ("#frame-0", "#frame-1"):
            frame = app.query_one(name, FrameView)
            assert frame.size.width >= 10 and frame.size.height >= 4
        rows = list(app.query(KnobRow))
        assert len(rows) == 14 and all(r.region.height == 1 and r.region.y < 23 for r in rows)

    drive(app, script, size=(80, 24))


@pytest.mark.parametrize("graphics", ["kitty", "sixel"])
def test_terminal_graphics_decode_back_to_the_frame(graphics):
    from tui.encoders import decode_kitty, decode_sixel

    app = app_for_test(graphics=graphics)

    async def script(pilot):
        app.runner.step_n(40)
        app.draw()
        await settled_screen(pilot)
        view = app.query_one("#frame-1", FrameView)
        data = view.graphics(1)
        cols, rows = view.image_cells()
        region = view.content_region
        row, col = region.y + (region.height - rows) // 2 + 1, region.x + (region.width - cols) // 2 + 1
        assert data.startswith(f"\x1b7\x1b[?2026h\x1b[{row};{col}H") and data.endswith("\x1b[?2026l\x1b8")
        payload = data[len(f"\x1b7\x1b[?2026h\x1b[{row};{col}H") : -len("\x1b[?2026l\x1b8")]
        frame = app.runner.snapshot().frames[1]
        if graphics == "kitty":
            assert np.array_equal(decode_kitty(payload), frame) and f"c={cols},r={rows}" in payload
        else:
            pixels = decode_sixel(payload)
            scale = pixels.shape[0] // 96
            assert scale >= 1 and pixels.shape == (96 * scale, 96 * scale, 3)
            err = np.abs(pixels[::scale, ::scale].astype(int) - frame)
            assert err.max() <= 8 and err.mean() < 1  # percent registers; > 256 colours are grouped
            assert pixels.shape[1] <= cols * 10 and pixels.shape[0] <= rows * 20  # fits its cells

    drive(app, script)


def test_a_tiny_terminal_gets_a_clear_message():
    app = app_for_test()

    async def script(pilot):
        message = app.query_one("#too-small")
        assert message.display and "needs at least 60x20" in str(message.render())
        assert not app.query_one("#main").display  # the players and the map
        await pilot.press("space")  # the keys still work
        await wait_for(pilot, lambda: app.runner.snapshot().step > 0)

    drive(app, script, size=(50, 15))
