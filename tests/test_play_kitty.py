"""End to end: the real `vmc-duel play` in a terminal that speaks the kitty keyboard protocol, hold to steer.

No kitty here, so the test is the terminal: a pseudo-terminal whose output goes through pyte (a VT100 emulator)
and which answers as kitty does. When the app asks which keyboard flags it got (CSI ? u, after setting flag 2,
the event types: tui/kitty_keys.py's ReleaseDriver), the test answers 27 (1 | 2 | 8 | 16 granted); the screen must
then say "hold (key releases)". Keys go in as kitty sends them: a press (CSI 1 A), repeats (CSI 1;1:2 A) while
held, a release (CSI 1;1:3 A). The record then holds exactly what hold mode gives: gas 1.0 from press to
release and 0.0 after, no fade, steering full lock or none; and `vmc-duel replay` verifies it.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import numpy as np
import pytest
from waiting import wait_for

from engine.race.race_log import RaceLog

pyte = pytest.importorskip("pyte")
if sys.platform == "win32":
    pytest.skip("a pseudo-terminal needs a POSIX system", allow_module_level=True)

EXE = shutil.which("vmc-duel", path=str(Path(sys.executable).parent))
COLS, ROWS = 120, 40
QUERY, ANSWER = b"\x1b[?u", b"\x1b[?27u"  # "which flags?" and kitty's answer with the event types granted


class KittyTerminal:
    """A pseudo-terminal running `argv`, drawn by pyte, answering the flags query as kitty does."""

    def __init__(self, argv: list[str], cwd: Path):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TEXTUAL_DRIVER")}
        env.update(TERM="xterm-kitty", COLORTERM="truecolor")
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                                     start_new_session=True)  # fmt: skip
        os.close(slave)
        self.master = master
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.answered = False
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the program ended and closed its side
                return
            if not data:
                return
            with self.lock:
                self.raw += data
                self.stream.feed(data)
                if not self.answered and QUERY in self.raw:
                    self.answered = True
                    os.write(self.master, ANSWER)

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.screen.display)

    def send(self, data: str) -> None:
        os.write(self.master, data.encode())

    def wait_text(self, pattern: str) -> str:
        def seen() -> str:
            text = self.text()
            return text if re.search(pattern, text) else ""

        return wait_for(seen, f"{pattern!r} on the screen", seen=lambda: "the screen:\n" + self.text(), every=0.1)

    def step(self) -> int:
        match = re.search(r"step\s+(\d+)/1000", self.text())
        return int(match.group(1)) if match else -1

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.master)


@pytest.mark.skipif(EXE is None, reason="vmc-duel is not installed in this environment")
def test_hold_to_steer_in_a_kitty_protocol_terminal(tmp_path):
    record = tmp_path / "kitty.json"
    # Half-block frames: pyte has no kitty graphics, and prints an image's escape sequence as text over the row
    # it shares with the screen's key mode (whether it hides that text depends on the order of Textual's writes).
    term = KittyTerminal([EXE, "play", "--seed", "3", "--renderer", "fast", "--device", "cpu", "--graphics",
                          "halfblock", "--record", str(record), "--scores-file", str(tmp_path / "scores.json")],
                         tmp_path)  # fmt: skip
    try:
        term.wait_text(r"READY")
        term.wait_text(r"hold \(key releases\)")  # the app set flag 2, asked, and believed the answer
        assert b"\x1b[=27;1u" in term.raw  # the flags it set: Textual's 1 | 8 | 16 and the event types
        term.send("\x1b[32u")  # space: press ...
        term.send("\x1b[32;1:3u")  # ... and release (bindings fire on presses only: one start)
        term.wait_text(r"RUNNING")

        def after(steps: int) -> None:
            start = term.step()
            wait_for(lambda: term.step() >= start + steps, f"{steps} more steps", seen=term.text, every=0.05)

        def shows(control: str, value: float) -> None:
            """Wait until the person's row (B's, below A's: the last such line) shows `control` at `value`:
            the app has applied the key by then, however late a loaded machine let it read the key."""

            def now() -> float | None:
                # Not anchored at the line's start: the frame's half blocks share the row, left of the label.
                found = re.findall(rf"(?<!\w){control} +[^\d+\-\n]*?([+-]?\d+\.\d\d)", term.text())
                return float(found[-1]) if found else None

            wait_for(lambda: now() == value, f"the person's {control} at {value}", seen=term.text, every=0.05)

        term.send("\x1b[1;1:1A")  # up down
        shows("gas", 1.0)
        after(20)
        term.send("\x1b[1;1:2A\x1b[1;1:2A")  # kitty's repeats while it is held: nothing new
        after(20)
        term.send("\x1b[1;1:1D")  # left down, up still held
        shows("steer", -1.0)
        after(5)
        term.send("\x1b[1;1:3D\x1b[1;1:3A")  # both up
        shows("gas", 0.0)
        after(30)
        term.send("\x1b[113u")  # q
        wait_for(lambda: term.proc.poll() is not None, "vmc-duel play to end", seen=term.text)
        assert term.proc.returncode == 0, term.text()
    finally:
        term.close()
    log = RaceLog.load(record)
    gas, steer = log.actions[:, 1, 1], log.actions[:, 1, 0]
    on = np.flatnonzero(gas)
    assert len(on) >= 40 and np.all(gas[on[0] : on[-1] + 1] == 1.0)  # held: full gas, one block, no fade
    assert np.all(gas[on[-1] + 1 :] == 0.0) and log.steps - on[-1] > 25  # released: off at once
    assert steer.min() == -1.0 and set(np.unique(steer)) == {-1.0, 0.0}  # full lock while held, nothing else
    assert log.human == "B"
    replayed = subprocess.run([sys.executable, "-m", "vmc_duel", "replay", str(record), "--json"],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
    assert replayed.returncode == 0 and json.loads(replayed.stdout)["ok"], replayed.stderr
