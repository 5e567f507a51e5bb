"""Snapshot tests of the terminal app (pytest-textual-snapshot): the start screen, a paused
race with frames, and the finished screen. A fixed seed and a paused race make them
deterministic; `pytest --snapshot-update` re-records them after an intended change."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from tui.app import make_app  # noqa: E402

SIZE = (120, 40)


def app():
    return make_app(seed=7, device="cpu", renderer="fast", graphics="halfblock", speed=None, truecolor=True)


def test_start_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE)


def test_paused_race_with_frames(snap_compare):
    async def run_before(pilot):
        pilot.app.runner.step_n(150)
        pilot.app.draw()
        await pilot.pause(0.1)

    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)


def test_finished_screen(snap_compare):
    async def run_before(pilot):
        pilot.app.runner.step_n(1000)
        pilot.app.draw()
        await pilot.pause(0.1)

    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)
