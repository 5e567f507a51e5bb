"""An interrupted tournament (SIGKILL or SIGINT) continues where it stopped and ends with the same results.

The real CLI in subprocesses, killed for real once its journal holds a finished batch; short duels (--max-steps)
and in-process environments keep it quick.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRACKS = 8
ARGS = ["tournament", "--tracks", str(TRACKS), "--batch", "1", "--processes", "1", "--workers", "0",
        "--renderer", "fast", "--device", "cpu", "--precision", "fp32", "--max-steps", "150", "--json"]  # fmt: skip
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmc_duel", *ARGS, "--out", str(out), *extra], capture_output=True,
                          text=True, timeout=300, env=ENV, cwd=out.parent)  # fmt: skip


def interrupt(out: Path, sig: int) -> tuple[int, str, int]:
    """Start the tournament, send `sig` once at least 2 tracks are journalled; (exit status, stderr, tracks
    journalled when the signal went)."""
    # SIGINT as a terminal gives it: a suite started in the background (`make test &` from a script) runs with
    # SIGINT ignored, which its children inherit, and then the tournament never sees the signal.
    proc = subprocess.Popen([sys.executable, "-m", "vmc_duel", *ARGS, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=out.parent,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    journal = out / "tournament.journal.jsonl"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"finished before it could be interrupted:\n{proc.stderr.read()}"
        assert time.monotonic() < deadline
        lines = journal.read_text().count("\n") if journal.exists() else 0
        if lines >= 3:  # the settings line and two finished tracks
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, lines - 1


def per_track(out: Path) -> list[dict]:
    return json.loads((out / "tournament.json").read_text())["results"]


def test_sigkill_then_the_same_command_continues_to_the_same_results(tmp_path):
    reference = run(tmp_path / "whole")
    assert reference.returncode == 0, reference.stderr
    cut = tmp_path / "cut"
    status, _, journalled = interrupt(cut, signal.SIGKILL)
    assert status == -signal.SIGKILL and not (cut / "tournament.json").exists()
    again = run(cut)
    assert again.returncode == 0, again.stderr
    resumed = json.loads(again.stdout.splitlines()[-1])["resumed_tracks"]
    assert journalled <= resumed < TRACKS, "the rerun did not continue from the journal"
    assert f"continued an interrupted tournament: {resumed} of {TRACKS} tracks" in again.stderr
    assert per_track(cut) == per_track(tmp_path / "whole")
    assert not (cut / "tournament.journal.jsonl").exists(), "the journal outlived the saved results"


def test_sigint_then_other_settings_are_refused_and_force_starts_over(tmp_path):
    reference = run(tmp_path / "whole")
    assert reference.returncode == 0, reference.stderr
    for attempt in range(3):  # a SIGINT that lands while the last batch is being written can let the run end (0)
        cut = tmp_path / f"cut{attempt}"
        status, err, _ = interrupt(cut, signal.SIGINT)
        if status != 0:
            break
    assert status == 130 and "interrupted" in err and "Traceback" not in err
    other = subprocess.run([sys.executable, "-m", "vmc_duel", *ARGS, "--out", str(cut), "--max-steps", "100"],
                           capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)  # fmt: skip
    assert other.returncode == 2 and "tournament.journal.jsonl" in other.stderr.splitlines()[-1]
    assert "--force" in other.stderr.splitlines()[-1]
    fresh = run(cut, "--force")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout.splitlines()[-1])["resumed_tracks"] == 0 and "continued" not in fresh.stderr
    assert per_track(cut) == per_track(tmp_path / "whole")


def alive(pid: int) -> bool:
    """pid runs (a zombie, ended but not yet reaped by whoever adopted it, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the parent-death signal is Linux's")
def test_sigterm_ends_the_pool_workers_too(tmp_path):
    # --processes 2: a pool of worker processes, each driving a batch of long duels. A parent killed by a
    # signal skips the pool's shutdown; without the parent-death signal its workers drove on for minutes.
    args = [a for a in ARGS if a not in ("--json",)]
    args[args.index("--processes") + 1], args[args.index("--max-steps") + 1] = "2", "1000"
    args[args.index("--batch") + 1] = "4"
    log = (tmp_path / "stderr.txt").open("w")  # a file, not a pipe: an orphan holding a pipe would stall the read
    proc = subprocess.Popen([sys.executable, "-m", "vmc_duel", *args, "--out", str(tmp_path / "t")],
                            stdout=subprocess.DEVNULL, stderr=log, env=ENV, cwd=tmp_path)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2:
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "the pool's workers never started"
            workers = [c for c in children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
            time.sleep(0.1)
        time.sleep(3)  # they are racing now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
        deadline = time.monotonic() + 20
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if alive(w)], f"pool workers {workers} outlived the tournament's process"
    finally:
        proc.kill()
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)
        log.close()
