"""Tournaments on a real local Ray cluster: the same per-track results as the local backend,
a worker killed mid-batch loses no track, an unreachable head is named at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from waiting import wait_for

ray = pytest.importorskip("ray")

from engine.race.cluster import CONNECT_TIMEOUT, ClusterError, connect, status_line  # noqa: E402
from engine.race.tournament import run_tournament  # noqa: E402

TRACKS = dict(tracks=6, seed_start=2_200_000, renderer="fast", device="cpu", batch=2)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster on this machine's two CPUs, as `ray start --head` would run. Its workers at the
    suite's priority: Ray starts them at nice 15, and beside busy processes at nice 0 (a loaded CI machine)
    they got a few percent of a core, so a batch took minutes instead of seconds."""
    niceness = os.environ.get("RAY_worker_niceness")
    os.environ["RAY_worker_niceness"] = "0"
    r = connect(None, num_cpus=2)
    yield r
    r.shutdown()
    if niceness is None:
        os.environ.pop("RAY_worker_niceness")
    else:
        os.environ["RAY_worker_niceness"] = niceness


@pytest.fixture(scope="module")
def local():
    return run_tournament(workers=0, threads=1, **TRACKS)


def test_a_tournament_on_ray_gives_the_local_per_track_results(cluster, local):
    seen = []
    on_ray = run_tournament(backend="ray", on_step=lambda done, total: seen.append((done, total)), **TRACKS)
    assert on_ray["results"] == local["results"] and on_ray["backend"] == "ray"
    assert [r["seed"] for r in on_ray["results"]] == list(range(2_200_000, 2_200_006))
    assert seen[-1] == (6000, 6000) and len(seen) == 3  # progress as each batch of 2 arrived
    line = status_line(cluster)
    assert line.startswith("Ray: 1 node, 2 CPUs")


def ray_task_pids() -> list[int]:
    """Ray worker processes racing a batch now (Ray names them after the task)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ray::race_tracks" in line]


def test_a_worker_killed_mid_tournament_loses_no_track(cluster, local):
    # One track a batch: 6 batches on 2 CPUs. When the first batch's results arrive (the tournament's progress),
    # at least four more are to race, so a Ray worker is racing one of them: it is SIGKILLed there, mid-batch.
    killed = []

    def kill_one_racing(done: int, total: int) -> None:
        if not killed:
            pids = wait_for(ray_task_pids, "a Ray worker racing a batch", timeout=60)
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    on_ray = run_tournament(backend="ray", on_step=kill_one_racing, **{**TRACKS, "batch": 1})
    assert killed, "no batch's results arrived"
    assert [r["seed"] for r in on_ray["results"]] == list(range(2_200_000, 2_200_006))  # each track once
    assert on_ray["results"] == local["results"]  # the lost batch was raced again, the same


def test_an_unreachable_head_is_named_within_seconds():
    start = time.monotonic()
    with pytest.raises(ClusterError, match=r"the Ray head at 127\.0\.0\.1:9 cannot be reached"):
        connect("127.0.0.1:9")
    assert time.monotonic() - start < CONNECT_TIMEOUT + 30  # named, not retried for minutes as Ray would
    with pytest.raises(ClusterError, match="expected HOST:PORT"):
        connect("nowhere")
    cmd = [sys.executable, "-m", "vmc_duel.cli", "tournament", "--tracks", "2", "--backend", "ray", "--address",
           "127.0.0.1:9", "--out", "/nonexistent-never-written"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "127.0.0.1:9 cannot be reached" in result.stderr


def test_a_cma_es_generation_on_ray_gives_the_local_fitnesses(cluster, tmp_path):
    """The generation's cars shared over Ray actors (one per CPU) against every car in this
    process: the same candidates drive the same tracks, so the same fitnesses and evaluation."""
    pytest.importorskip("cma")
    import csv

    from test_controller_training import tiny

    from train.controller import train_controller

    runs = [train_controller(tiny(tmp_path, name=name, max_steps=80, **kw))
            for name, kw in (("local", {"workers": 0}), ("ray", {"backend": "ray"}))]  # fmt: skip
    rows = [list(csv.DictReader((run / "log.csv").open()))[0] for run in runs]
    keys = ["fitness_mean", "fitness_max", "fitness_min", "reward_mean", "off_track_s_mean", "steps_mean", "eval_mean"]
    assert [rows[0][k] for k in keys] == [rows[1][k] for k in keys]
