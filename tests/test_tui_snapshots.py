"""Snapshot tests of the terminal app (pytest-textual-snapshot): the start screen, a paused
race with frames, and the finished screen. `pytest --snapshot-update` re-records them
after an intended change.

The screens must be the same on every CPU, so the races drawn here are steered by the
scripted autopilot (`driver="autopilot"`): the frames, rewards and winner then come from
the simulator and the renderer alone. A model-driven race is not used for snapshots:
onnxruntime's kernels differ in the last float bits between AVX2, AVX-512 and ARM, and a
closed-loop race grows that into another line (README: Determinism). What the model
drive promises, the same screen twice on one machine, is tested below without a file.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("pytest_textual_snapshot")

from tui.app import make_app  # noqa: E402

SIZE = (120, 40)


def app(driver: str = "autopilot"):
    return make_app(seed=7, device="cpu", renderer="fast", graphics="halfblock", speed=None, truecolor=True,
                    driver=driver)  # fmt: skip


def stepped(steps: int):
    async def run_before(pilot):
        pilot.app.runner.step_n(steps)
        pilot.app.draw()
        await pilot.pause(0.1)

    return run_before


def test_start_screen(snap_compare):
    # Nothing has been stepped: the shipped controllers' names and the first frame, no model output.
    assert snap_compare(app("model"), terminal_size=SIZE)


def test_paused_race_with_frames(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=stepped(150))


def test_finished_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=stepped(1000))


def screen_after(steps: int) -> str:
    async def main() -> str:
        a = app("model")
        async with a.run_test(size=SIZE) as pilot:
            a.runner.step_n(steps)
            a.draw()
            await pilot.pause(0.1)
            return a.export_screenshot()

    return asyncio.run(main())


def test_model_race_draws_the_same_screen_twice_on_one_machine():
    first, second = screen_after(150), screen_after(150)
    assert "150/1000" in first  # the race really moved
    assert first == second
