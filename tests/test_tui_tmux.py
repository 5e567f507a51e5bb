"""End to end: the real `vmc-duel` in a real terminal (tmux), driven by keys."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import waiting
from terminal_png import render

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
COLS, ROWS = 120, 40


def tmux(*args: str) -> str:
    return subprocess.run([TMUX, *args], capture_output=True, text=True, timeout=30).stdout


def screen_of(session: str, colours: bool = False) -> str:
    return tmux("capture-pane", *(["-e"] if colours else []), "-p", "-t", session)


def wait_for(session: str, pattern: str) -> str:
    """The screen once `pattern` is on it."""
    return wait_screen(session, lambda screen: re.search(pattern, screen), f"{pattern!r} on the screen")


def wait_screen(session: str, condition, what: str, colours: bool = False) -> str:
    """The screen once `condition(screen)` holds; fails with what was awaited and the last screen."""
    last = [""]

    def check() -> str:
        last[0] = screen_of(session, colours)
        return last[0] if condition(last[0]) else ""

    return waiting.wait_for(check, what, seen=lambda: "the screen:\n" + last[0], every=0.2)


def step_of(screen: str) -> int:
    return int(re.search(r"step\s+(\d+)/1000", screen).group(1))


def drawn(coloured: str) -> bool:
    """Both half-block frames are drawn: upper-half blocks where the two pixel rows differ, and truecolor cells
    (a flat area is a space with its background colour)."""
    return coloured.count("\u2580") > 50 and len(re.findall(r"\x1b\[[0-9;]*48;2;\d+;\d+;\d+", coloured)) > 200


def test_vmc_duel_in_tmux_draws_frames_and_obeys_keys(tmp_path):
    exe = shutil.which("vmc-duel", path=str(Path(sys.executable).parent))
    session = f"vmc-{uuid.uuid4().hex[:8]}"
    # COLUMNS / LINES (set by test tools) would override the terminal size for Textual
    env_cmd = (f"cd {tmp_path} && unset COLUMNS LINES && TERM=xterm-256color COLORTERM=truecolor "
               f"{exe} --seed 3 --renderer fast")  # fmt: skip
    tmux("new-session", "-d", "-s", session, "-x", str(COLS), "-y", str(ROWS), "bash", "-c",
         env_cmd + "; echo EXITED $?; sleep 30")  # fmt: skip
    try:
        wait_for(session, r"READY")
        wait_for(session, r"bias straight")  # the whole screen is drawn
        wait_screen(session, drawn, "both frames drawn in half blocks and truecolor", colours=True)
        assert step_of(screen_of(session)) == 0
        tmux("send-keys", "-t", session, "Space")
        screen = wait_for(session, r"RUNNING")
        first = step_of(wait_screen(session, lambda s: step_of(s) > 0, "the race to step"))
        wait_screen(session, lambda s: step_of(s) > first, f"the race to step on from {first}")
        tmux("send-keys", "-t", session, "Space")
        paused = step_of(wait_for(session, r"PAUSED"))
        for note in ("VAE reconstruction", "camera view"):  # the app answers keys and redraws; the race stays
            tmux("send-keys", "-t", session, "v")
            wait_for(session, note)
        assert step_of(screen_of(session)) == paused
        picture = render(screen_of(session, colours=True), COLS, ROWS, tmp_path / "tui.png")
        if os.environ.get("VMC_SCREENSHOT"):  # to refresh the README's picture
            shutil.copyfile(picture, os.environ["VMC_SCREENSHOT"])
        tmux("send-keys", "-t", session, "q")
        wait_for(session, r"EXITED 0")
    finally:
        tmux("kill-session", "-t", session)
    assert screen
