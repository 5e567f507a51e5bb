"""Waiting on other processes and threads by what they have done, never by the clock.

A test that must wait polls a condition until it holds, with a generous deadline (tens of seconds: the suite
runs on loaded machines and on one core), and a deadline that passes fails with what was awaited and what was
seen. A test that must act at a moment of another program's work holds that program at a progress point
(engine.progress: VMC_DUEL_STOP_AT=NAME:N in its environment stops it there) and acts while it is stopped.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from engine.progress import STOP_AT

DEADLINE_S = 120.0  # generous: a cold start on one loaded core imports numba, onnxruntime and gymnasium


def wait_for(condition: Callable[[], object], what: str, seen: Callable[[], object] | None = None,
             timeout: float = DEADLINE_S, every: float = 0.02) -> object:  # fmt: skip
    """Poll `condition` until it returns something true, and return that; AssertionError naming `what` was
    awaited and (`seen`) what was there instead when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; saw: {seen() if seen else value!r}")
        time.sleep(every)


def process_state(pid: int) -> str:
    """The process's state letter from /proc (R running, S sleeping, T stopped, Z zombie; "" when gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""


def alive(pid: int) -> bool:
    """pid runs (a zombie, ended but not yet reaped, does not)."""
    return process_state(pid) not in ("", "Z")


def stop_env(name: str, n: int, env: dict | None = None) -> dict:
    """An environment for `vmc-duel` in which it stops itself at its n-th progress point called `name`."""
    return dict(os.environ if env is None else env, **{STOP_AT: f"{name}:{n}"})


def wait_stopped(proc: subprocess.Popen, where: str, log: Callable[[], str] | None = None) -> None:
    """Wait until `proc` has stopped itself at its progress point `where` (its VMC_DUEL_STOP_AT); fails at
    once, with its output (`log`), if it ends first."""

    def stopped() -> bool:
        assert proc.poll() is None, f"it ended ({proc.returncode}) before reaching {where}:\n{log() if log else ''}"
        return process_state(proc.pid) == "T"

    wait_for(stopped, f"the program to stop at {where}", seen=lambda: f"state {process_state(proc.pid)!r}")


async def pilot_wait_for(pilot, condition: Callable[[], object], what: str, seen: Callable[[], object] | None = None,
                         timeout: float = DEADLINE_S) -> object:  # fmt: skip
    """`wait_for` for a Textual app under Pilot: pauses the test (the app processes its events, refreshes and
    timers meanwhile) until `condition` holds; fails naming `what` and `seen` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; saw: {seen() if seen else value!r}")
        await pilot.pause(0.05)


async def runner_idles(pilot, runner, turns: int = 5) -> None:
    """Wait until a RaceRunner's worker has gone round its loop `turns` more times: whatever a paused race
    would do, it had the chance to (the check that nothing moved is then about the worker, not the clock)."""
    start = runner.turns
    await pilot_wait_for(pilot, lambda: runner.turns >= start + turns, f"the race worker to go round {turns} times",
                         seen=lambda: runner.turns - start)  # fmt: skip


async def settled_screen(pilot) -> str:
    """The app's screenshot (SVG) once two in a row agree: every refresh that was pending has been drawn.
    Only for screens that do not move by themselves (a paused or finished race, nothing stepping it)."""
    previous = [pilot.app.export_screenshot()]

    def same() -> str:
        shot = pilot.app.export_screenshot()
        agree, previous[0] = shot == previous[0], shot
        return shot if agree else ""

    return await pilot_wait_for(pilot, same, "two screenshots in a row to agree (the screen to settle)",
                                seen=lambda: "a screen that kept changing")  # fmt: skip
