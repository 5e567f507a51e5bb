"""End to end: the real `vmc-duel` in a real terminal (tmux), driven by keys."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from terminal_png import render

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
COLS, ROWS = 120, 40


def tmux(*args: str) -> str:
    return subprocess.run([TMUX, *args], capture_output=True, text=True, timeout=30).stdout


def wait_for(session: str, pattern: str, timeout: float = 60.0) -> str:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        screen = tmux("capture-pane", "-p", "-t", session)
        if re.search(pattern, screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} never appeared; the screen:\n{screen}")


def step_of(screen: str) -> int:
    return int(re.search(r"step\s+(\d+)/1000", screen).group(1))


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
        time.sleep(0.5)
        coloured = tmux("capture-pane", "-e", "-p", "-t", session)
        # two half-block frames: upper-half blocks where the two pixel rows differ, and
        # truecolor cells (a flat area is a space with its background colour)
        assert coloured.count("▀") > 50
        assert len(re.findall(r"\x1b\[[0-9;]*48;2;\d+;\d+;\d+", coloured)) > 200
        tmux("send-keys", "-t", session, "Space")
        screen = wait_for(session, r"RUNNING")
        time.sleep(1.5)
        first = step_of(tmux("capture-pane", "-p", "-t", session))
        time.sleep(1.0)
        second = step_of(tmux("capture-pane", "-p", "-t", session))
        assert second > first > 0  # the race moves at real speed
        tmux("send-keys", "-t", session, "Space")
        paused = step_of(wait_for(session, r"PAUSED"))
        time.sleep(1.0)
        assert step_of(tmux("capture-pane", "-p", "-t", session)) == paused
        picture = render(tmux("capture-pane", "-e", "-p", "-t", session), COLS, ROWS, tmp_path / "tui.png")
        if os.environ.get("VMC_SCREENSHOT"):  # to refresh the README's picture
            shutil.copyfile(picture, os.environ["VMC_SCREENSHOT"])
        tmux("send-keys", "-t", session, "q")
        wait_for(session, r"EXITED 0")
    finally:
        tmux("kill-session", "-t", session)
    assert screen
