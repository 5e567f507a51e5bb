"""Snapshot tests of the terminal app (pytest-textual-snapshot): the start screen, a paused
race with frames, and the finished screen at 120x40; a paused race and its telemetry drawer
at 80x24, where every knob keeps its name, value and bar. `pytest --snapshot-update` re-records them
after an intended change.

The screens must be the same on every CPU, so the races drawn here are steered by the
scripted autopilot (`driver="autopilot"`): the frames, rewards and winner then come from
the simulator and the renderer alone. A model-driven race is not used for snapshots:
onnxruntime's kernels differ in the last float bits between AVX2, AVX-512 and ARM, and a
closed-loop race grows that into another line (docs/determinism.md). What the model
drive promises, the same screen twice on one machine, is tested below without a file.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("pytest_textual_snapshot")

from waiting import settled_screen  # noqa: E402

from tui.app import make_app  # noqa: E402
from tui.widgets.knob_row import KnobRow  # noqa: E402

SIZE = (120, 40)
SMALL = (80, 24)  # most terminals' and SSH sessions' default


def app(driver: str = "autopilot"):
    return make_app(seed=7, device="cpu", renderer="fast", graphics="halfblock", speed=None, truecolor=True,
                    driver=driver)  # fmt: skip


def stepped(steps: int, *keys: str):
    async def run_before(pilot):
        pilot.app.runner.step_n(steps)
        pilot.app.draw()
        await pilot.press(*keys)
        await settled_screen(pilot)

    return run_before


def test_start_screen(snap_compare):
    # Nothing has been stepped: the shipped controllers' names and the first frame, no model output.
    assert snap_compare(app("model"), terminal_size=SIZE)


def test_paused_race_with_frames(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=stepped(150))


def test_finished_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=stepped(1000))


def test_paused_race_at_80x24(snap_compare):
    assert snap_compare(app(), terminal_size=SMALL, run_before=stepped(150))


def test_telemetry_drawer_at_80x24(snap_compare):
    assert snap_compare(app(), terminal_size=SMALL, run_before=stepped(150, "t"))


@pytest.mark.parametrize("size", [SMALL, SIZE])
def test_every_knob_shows_its_name_value_and_bar(size):
    async def main() -> None:
        a = app()
        async with a.run_test(size=size) as pilot:
            a.runner.step_n(20)
            a.draw()
            await settled_screen(pilot)
            rows = list(a.query(KnobRow))
            assert len(rows) == 2 * 7
            for row in rows:
                r = row.region
                assert r.right <= size[0] and r.bottom <= size[1] - 1 and r.width >= 22 + 8  # a bar of 8+ cells
                # on top at its value's cell: nothing covers or clips it
                assert a.screen.get_widget_at(r.x + 16, r.y)[0] is row
                text = row.render().plain
                value = row.spec.default
                assert f"{value:.2f}" in text or f"{value:d}" in text
                assert "─" in text or "━" in text

    asyncio.run(main())


def screen_after(steps: int) -> str:
    async def main() -> str:
        a = app("model")
        async with a.run_test(size=SIZE) as pilot:
            a.runner.step_n(steps)
            a.draw()
            # Settled: on a loaded machine a refresh can still be pending for a while, so wait until two
            # screenshots in a row agree (the race does not move by itself: nothing steps it but step_n).
            return await settled_screen(pilot)

    return asyncio.run(main())


def test_model_race_draws_the_same_screen_twice_on_one_machine():
    first, second = screen_after(150), screen_after(150)
    assert "150/1000" in first  # the race really moved
    assert first == second
