"""Snapshot tests of `vmc-duel play`'s screen (pytest-textual-snapshot) at 120x40 and 80x24: the person's row
(the key mode, their numbers), the model's row with its knobs, the map, the footer's keys.

As in test_tui_snapshots.py the other car is steered by the scripted autopilot (`driver="autopilot"`), so the
screen is the same on every CPU; the person's car gets scripted keys (hold mode: gas from the start, left
for 20 steps), stepped by the test. `pytest --snapshot-update` re-records them after an intended change.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from waiting import settled_screen  # noqa: E402

from tui.play_app import make_play_app  # noqa: E402


def app():
    return make_play_app(seed=7, device="cpu", renderer="fast", graphics="halfblock", speed=None, truecolor=True,
                         driver="autopilot", keys="hold")  # fmt: skip


async def driven(pilot):
    """Gas for 150 steps, left from step 60 to 80, then the screen once it has settled."""
    a = pilot.app
    a.controls.press("gas")
    a.runner.step_n(60)
    a.controls.press("left")
    a.runner.step_n(20)
    a.controls.release("left")
    a.runner.step_n(70)
    a.clear_notifications()  # the first notice is the same every time, but covers the person's numbers
    a.draw()
    await settled_screen(pilot)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_play_screen(snap_compare, size):
    assert snap_compare(app(), terminal_size=size, run_before=driven)
