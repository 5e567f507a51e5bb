"""A racing worker process SIGKILLed mid-step: the caller hears of it, by name, and nothing hangs.

Real worker processes are killed with SIGKILL (no mocks): the vector env itself, a pipelined duel, the HTTP
API (which reports it, stays up, and resets onto fresh workers) and the terminal app (the same, under Pilot).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from waiting import DEADLINE_S, alive, pilot_wait_for, stop_env, wait_for, wait_stopped

from engine.env.vector_env import VecRaceEnv, WorkerDied
from engine.race.duel import Duel
from engine.race.live import RaceRunner

# s from the kill to the caller's error, at most. The engine hears of a death at once (the worker's end of the pipe
# closes; a liveness check every 0.5 s covers the rest), so this bound only tells a report from a hang: generous,
# so that a loaded or slow machine cannot fail it.
REPORT_WITHIN = DEADLINE_S / 2


def shm_path(vec: VecRaceEnv) -> Path:
    return Path("/dev/shm") / vec._shm.name.lstrip("/")


def test_killed_worker_mid_step_is_named_and_its_memory_released():
    vec = VecRaceEnv(4, workers=2, renderer="fast")
    shm = shm_path(vec)
    pids = [vec.worker_pid(w) for w in range(2)]
    vec.reset(list(range(4)))
    actions = np.tile([0.0, 0.5, 0.0], (4, 1))
    for _ in range(3):
        vec.step(actions)
    vec.step_async(actions, [0, 1])  # both workers stepping now
    os.kill(pids[1], signal.SIGKILL)
    killed = time.monotonic()
    with pytest.raises(WorkerDied) as caught:
        vec.step_wait([0, 1])  # a worker quick enough may have answered before the kill landed:
        vec.step(actions)  # then the next step finds it dead
    assert time.monotonic() - killed < REPORT_WITHIN
    message = str(caught.value)
    assert f"racing worker 1 (pid {pids[1]}, environments 2-3 of 4) killed by SIGKILL" in message
    assert caught.value.envs == range(2, 4)
    with pytest.raises(WorkerDied):  # the batch is incomplete from now on: every call says so at once
        vec.step(actions)
    assert shm.exists()
    vec.close()
    assert not shm.exists(), "shared memory left behind"
    assert not any(alive(p) for p in pids), "a worker outlived close()"


def test_killed_worker_during_a_pipelined_duel_ends_run():
    with Duel(renderer="fast", duels=2, workers=2, device="cpu", threads=1) as duel:
        duel.reset([3, 4])
        duel.run(steps=2)  # everything compiled and warm
        pid = duel.vec.worker_pid(0)
        shm = shm_path(duel.vec)
        killed = []

        def kill_at_step_5(step: int) -> None:  # mid-race, the pipeline full: the other half is stepping
            if step == 5:
                os.kill(pid, signal.SIGKILL)
                killed.append(time.monotonic())

        with pytest.raises(WorkerDied, match=r"racing worker 0 \(pid \d+, environments 0-1 of 4\) killed by SIGKILL"):
            duel.run(on_step=kill_at_step_5)
        assert killed and time.monotonic() - killed[0] < REPORT_WITHIN
    assert not shm.exists()


def test_api_reports_a_dead_worker_stays_up_and_resets_onto_fresh_workers():
    from test_api import Server  # uvicorn in a thread, on a real socket

    from server.app import make_api

    runner = RaceRunner(seed=5, speed=1.0, device="cpu", renderer="fast", workers=1)
    try:
        with Server(make_api(runner)) as server, httpx.Client(base_url=server.url, timeout=DEADLINE_S) as client:
            assert client.post("/control", json={"action": "start"}).json()["status"] == "running"
            old_pid, old_shm = runner.duel.vec.worker_pid(0), shm_path(runner.duel.vec)
            os.kill(old_pid, signal.SIGKILL)

            def reported() -> dict | None:
                doc = client.get("/telemetry", params={"frames": "false"}).json()
                return doc if doc["status"] == "error" else None

            doc = wait_for(reported, "the API to report the dead worker", timeout=REPORT_WITHIN)
            assert f"pid {old_pid}" in doc["error"] and "killed by SIGKILL" in doc["error"]
            health = client.get("/health")
            assert health.status_code == 503 and "race" in health.json()["problems"]
            again = client.post("/control", json={"action": "start"})
            assert again.status_code == 409 and "reset it first" in again.json()["detail"]
            knobs = client.post("/update_knobs", json={"player": "A", "knobs": {"risk_aversion": 0.3}})
            assert knobs.status_code == 200
            reset = client.post("/control", json={"action": "reset", "seed": 9})
            assert reset.status_code == 200 and reset.json()["status"] == "ready"
            assert not old_shm.exists(), "the dead duel's shared memory was not released"
            assert runner.duel.vec.worker_pid(0) != old_pid
            client.post("/control", json={"action": "start"})

            def ten_steps() -> dict | None:
                doc = client.get("/telemetry", params={"frames": "false"}).json()
                assert doc["status"] == "running", doc.get("error")
                return doc if doc["step"] >= 10 else None

            doc = wait_for(ten_steps, "10 steps on the fresh workers")
            assert doc["error"] is None and doc["players"]["A"]["knobs"]["risk_aversion"] == 0.3
    finally:
        runner.close()


def test_tui_reports_a_dead_worker_stays_up_and_resets():
    from tui.app import DuelApp

    # At the race's real pace (a lap takes ~18 s): as fast as possible, a loaded machine could see the whole race end
    # (900 steps in a few seconds) between the wait for step 3 and the kill, and then there is no race to stop.
    runner = RaceRunner(seed=6, speed=1.0, device="cpu", renderer="fast", workers=1)
    app = DuelApp(runner, graphics="halfblock", truecolor=True)

    async def script(pilot) -> None:
        await pilot.press("space")
        await app_wait_for(pilot, lambda: runner.snapshot().step > 3)
        pid = runner.duel.vec.worker_pid(0)
        os.kill(pid, signal.SIGKILL)
        await app_wait_for(pilot, lambda: any("the race stopped" in str(n.message) for n in app._notifications),
                       REPORT_WITHIN)  # fmt: skip
        note = next(str(n.message) for n in app._notifications if "the race stopped" in str(n.message))
        assert f"pid {pid}" in note and "press r" in note.lower()
        assert runner.snapshot().status == "error"
        await pilot.press("space")  # does not start a failed race
        assert runner.snapshot().status == "error"
        await pilot.press("r")
        await app_wait_for(pilot, lambda: runner.snapshot().status == "ready")
        await pilot.press("space")
        await app_wait_for(pilot, lambda: runner.snapshot().step > 3)
        assert runner.duel.vec.worker_pid(0) != pid and runner.snapshot().error is None

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await script(pilot)

    asyncio.run(main())


async def app_wait_for(pilot, condition, timeout: float = DEADLINE_S) -> None:
    await pilot_wait_for(pilot, condition, "the app's state to change", timeout=timeout,
                         seen=lambda: runner_state(pilot.app.runner))  # fmt: skip


def runner_state(runner: RaceRunner) -> str:
    snap = runner.snapshot()
    return f"status {snap.status}, step {snap.step}, error {snap.error}"


def test_cli_tournament_with_a_killed_worker_ends_with_one_line(tmp_path):
    """The CLI turns the error into one line naming the worker, exit status 1, no traceback."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "vmc_duel", "tournament", "--tracks", "8", "--batch", "8",
                             "--workers", "2", "--processes", "1", "--renderer", "fast", "--device", "cpu",
                             "--out", str(tmp_path / "t")], cwd=tmp_path,
                            env=stop_env("duel:step", 5, dict(os.environ, PYTHONPATH=str(root))),
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    wait_stopped(proc, "step 5 of its duels")  # racing, the main process held there

    def env_workers() -> list[int]:  # the tournament's own env workers
        return [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text() and "pipe_handle" in
                Path(f"/proc/{p}/cmdline").read_text()]  # fmt: skip

    workers = env_workers()
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "racing worker" in lines[-1] and "killed by SIGKILL" in lines[-1]
