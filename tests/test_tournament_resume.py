"""An interrupted tournament (SIGKILL or SIGINT) continues where it stopped and ends with the same results.

The real CLI in subprocesses, killed for real once its journal holds two finished tracks: the program holds itself
at that progress point (VMC_DUEL_STOP_AT), so the signal lands at the same point of the work on any machine; short
duels (--max-steps) and in-process environments keep it quick.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from waiting import alive, stop_env, wait_for, wait_stopped

ROOT = Path(__file__).resolve().parents[1]
TRACKS = 8
JOURNALLED = 2  # tracks journalled when the signal goes
ARGS = ["tournament", "--tracks", str(TRACKS), "--batch", "1", "--processes", "1", "--workers", "0",
        "--renderer", "fast", "--device", "cpu", "--precision", "fp32", "--max-steps", "150", "--json"]  # fmt: skip
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmc_duel", *ARGS, "--out", str(out), *extra], capture_output=True,
                          text=True, timeout=300, env=ENV, cwd=out.parent)  # fmt: skip


def interrupt(out: Path, sig: int) -> tuple[int, str, int]:
    """Start the tournament, hold it once JOURNALLED tracks are journalled (its progress point), send `sig`
    there (SIGINT is delivered when it goes on); (exit status, stderr, tracks journalled when the signal went)."""
    # SIGINT as a terminal gives it: a suite started in the background (`make test &` from a script) runs with
    # SIGINT ignored, which its children inherit, and then the tournament never sees the signal.
    env = stop_env("tournament:tracks", JOURNALLED, ENV)
    proc = subprocess.Popen([sys.executable, "-m", "vmc_duel", *ARGS, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=out.parent,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        wait_stopped(proc, f"its {JOURNALLED}th journalled track")
        lines = (out / "tournament.journal.jsonl").read_text().count("\n")  # the settings line, then tracks
        proc.send_signal(sig)
        proc.send_signal(signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err, lines - 1


def per_track(out: Path) -> list[dict]:
    return json.loads((out / "tournament.json").read_text())["results"]


def test_sigkill_then_the_same_command_continues_to_the_same_results(tmp_path):
    reference = run(tmp_path / "whole")
    assert reference.returncode == 0, reference.stderr
    cut = tmp_path / "cut"
    status, _, journalled = interrupt(cut, signal.SIGKILL)
    assert journalled == JOURNALLED
    assert status == -signal.SIGKILL and not (cut / "tournament.json").exists()
    again = run(cut)
    assert again.returncode == 0, again.stderr
    resumed = json.loads(again.stdout.splitlines()[-1])["resumed_tracks"]
    assert resumed == JOURNALLED, "the rerun did not continue from the journal"
    assert f"continued an interrupted tournament: {resumed} of {TRACKS} tracks" in again.stderr
    assert per_track(cut) == per_track(tmp_path / "whole")
    assert not (cut / "tournament.journal.jsonl").exists(), "the journal outlived the saved results"


def test_sigint_then_other_settings_are_refused_and_force_starts_over(tmp_path):
    reference = run(tmp_path / "whole")
    assert reference.returncode == 0, reference.stderr
    cut = tmp_path / "cut"
    status, err, journalled = interrupt(cut, signal.SIGINT)
    assert journalled == JOURNALLED
    assert status == 130 and "interrupted" in err and "Traceback" not in err
    other = subprocess.run([sys.executable, "-m", "vmc_duel", *ARGS, "--out", str(cut), "--max-steps", "100"],
                           capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)  # fmt: skip
    assert other.returncode == 2 and "tournament.journal.jsonl" in other.stderr.splitlines()[-1]
    assert "--force" in other.stderr.splitlines()[-1]
    fresh = run(cut, "--force")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout.splitlines()[-1])["resumed_tracks"] == 0 and "continued" not in fresh.stderr
    assert per_track(cut) == per_track(tmp_path / "whole")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


def loaded_onnxruntime(pid: int) -> bool:
    try:
        return "onnxruntime" in Path(f"/proc/{pid}/maps").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


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

    def racing() -> list[int]:  # both pool workers have loaded the world model: they are in their batch
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        found = [c for c in children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        return found if len(found) == 2 and all(loaded_onnxruntime(c) for c in found) else []

    try:
        workers = wait_for(racing, "two pool workers racing (onnxruntime loaded)", seen=lambda: children(proc.pid))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM
        wait_for(lambda: not any(alive(w) for w in workers), "the pool workers to end with the tournament",
                 seen=lambda: [w for w in workers if alive(w)], timeout=60)  # fmt: skip
    finally:
        proc.kill()
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)
        log.close()
