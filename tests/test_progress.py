"""Progress points (engine.progress): a listener hears them in order with their details, and a whole program
holds itself at one (VMC_DUEL_STOP_AT) until it is told to go on; a bad setting is one line, exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from waiting import process_state, stop_env, wait_stopped

from engine import progress
from engine.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def test_a_listener_hears_each_point_with_its_details_and_nothing_is_heard_without_one(tmp_path):
    heard = []
    previous = progress.listen(lambda name, details: heard.append((name, details, (tmp_path / "x").exists())))
    try:
        write_atomic(tmp_path / "x", "new")
    finally:
        progress.listen(previous)
    # the write's point comes when the new content is complete but not yet in place
    assert heard == [("write:ready", {"path": str(tmp_path / "x")}, False)]
    write_atomic(tmp_path / "x", "again")  # nobody listening: nothing heard, the write still happens
    assert len(heard) == 1 and (tmp_path / "x").read_text() == "again"


def test_a_program_holds_at_its_point_and_goes_on_when_told(tmp_path):
    cmd = [sys.executable, "-m", "vmc_duel", "race", "--seed", "5", "--steps", "20", "--renderer", "fast",
           "--device", "cpu", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=stop_env("duel:step", 7, ENV), cwd=tmp_path)  # fmt: skip
    try:
        wait_stopped(proc, "step 7 of its duel")
        assert process_state(proc.pid) == "T"
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert '"steps": 20' in out.splitlines()[-1]


def test_a_bad_stop_point_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vmc_duel", "health"], capture_output=True, text=True,
                            timeout=300, env=dict(ENV, VMC_DUEL_STOP_AT="duel:step"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "VMC_DUEL_STOP_AT='duel:step': expected NAME:N" in result.stderr.splitlines()[-1]
