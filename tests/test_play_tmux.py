"""End to end: the real `vmc-duel play` in a real terminal (tmux), driven by a person's keys.

tmux reports no key releases, so the keys repeat and fade, and the screen says so. The test starts the race
with Space, gives the gas and steers with Up, Left and Right (each batch of keys once the race has moved on
from the last, never after a set time), quits with q, and checks the record: it exists, marks player B as
the person, holds their gas and steering, and `vmc-duel replay` verifies it step by step. The screen is kept
as a PNG (VMC_PLAY_SCREENSHOT=DIR copies it there: the README's pictures).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from terminal_png import render
from test_tui_tmux import TMUX, screen_of, step_of, tmux, wait_for, wait_screen

from engine.race.race_log import RaceLog

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
EXE = shutil.which("vmc-duel", path=str(Path(sys.executable).parent))


def start(tmp_path: Path, cols: int, rows: int, *args: str) -> str:
    session = f"play-{uuid.uuid4().hex[:8]}"
    env_cmd = (f"cd {tmp_path} && unset COLUMNS LINES && TERM=xterm-256color COLORTERM=truecolor "
               f"{EXE} play --seed 3 --renderer fast --device cpu --scores-file {tmp_path / 'scores.json'} "
               + " ".join(args))  # fmt: skip
    tmux("new-session", "-d", "-s", session, "-x", str(cols), "-y", str(rows), "bash", "-c",
         env_cmd + "; echo EXITED $?; sleep 30")  # fmt: skip
    return session


def keys_while_racing(session: str, key: str, batches: int) -> None:
    """Send `key` a few times, then wait for the race to step on; `batches` times (the keys of a person
    holding it down, paced by the race itself)."""
    for _ in range(batches):
        before = step_of(screen_of(session))
        tmux("send-keys", "-t", session, *[key] * 3)
        wait_screen(session, lambda s, b=before: step_of(s) > b + 5, f"the race to step on after {key}")


def screenshot(session: str, cols: int, rows: int, path: Path) -> Path:
    picture = render(screen_of(session, colours=True), cols, rows, path)
    if os.environ.get("VMC_PLAY_SCREENSHOT"):  # to refresh the README's pictures
        shutil.copyfile(picture, Path(os.environ["VMC_PLAY_SCREENSHOT"]) / path.name)
    return picture


def test_play_in_tmux_records_the_persons_race_and_replay_verifies_it(tmp_path):
    record = tmp_path / "race.json"
    session = start(tmp_path, 120, 40, "--record", str(record))
    try:
        wait_for(session, r"READY")
        wait_for(session, r"repeat, fading")  # tmux reports no releases: the screen says which mode
        screen = wait_for(session, r"start/pause")  # the footer
        for text in ("you at the keyboard", "↑ w gas", "↓ s brake", "← a → d steer", "space start/pause", "q quit"):
            assert text in screen, screen
        tmux("send-keys", "-t", session, "Space")
        wait_for(session, r"RUNNING")
        keys_while_racing(session, "Up", 6)
        keys_while_racing(session, "Left", 3)
        keys_while_racing(session, "Up", 3)
        keys_while_racing(session, "Right", 3)
        tmux("send-keys", "-t", session, "q")
        screen = wait_for(session, r"EXITED \d+")
        assert "EXITED 0" in screen and "replay it: vmc-duel replay" in screen, screen
    finally:
        tmux("kill-session", "-t", session)
    log = RaceLog.load(record)
    assert log.human == "B" and log.steps > 60
    b = log.actions[:, 1]
    assert b[:, 1].max() == 1.0 and b[:, 0].min() < -0.5 and b[:, 0].max() > 0.5  # gas, left and right
    assert np.any(log.actions[:, 0] != b)  # the model's car drove its own race
    gif = tmp_path / "race.gif"
    replayed = subprocess.run([sys.executable, "-m", "vmc_duel", "replay", str(record), "--json", "--gif", str(gif)],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
    result = json.loads(replayed.stdout)
    assert replayed.returncode == 0 and result["ok"] and result["verified"] == log.steps, replayed.stderr
    assert gif.stat().st_size > 10_000  # and made its GIF


@pytest.mark.parametrize("cols, rows", [(80, 24), (120, 40)])
def test_play_screen_shows_both_cars_keys_and_mode(tmp_path, cols, rows):
    session = start(tmp_path, cols, rows)
    try:
        wait_for(session, r"READY")
        tmux("send-keys", "-t", session, "Space")
        wait_for(session, r"RUNNING")
        keys_while_racing(session, "Up", 5)
        tmux("send-keys", "-t", session, "Space")
        wait_for(session, r"PAUSED")
        # the first notice (who drives what, how the keys work) gone: the whole screen in the picture
        screen = wait_screen(session, lambda s: "Space starts" not in s, "the first notice to go")
        for text in ("repeat, fading", "you at the keyboard", "speed", "Player A", "gas", "steer", "start/pause"):
            assert text in screen, screen
        screenshot(session, cols, rows, tmp_path / f"play_{cols}x{rows}.png")
        tmux("send-keys", "-t", session, "q")
        wait_for(session, r"EXITED 0")
    finally:
        tmux("kill-session", "-t", session)
