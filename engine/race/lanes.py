"""A duel's cars in two lanes, each lane's whole chain on its own core.

A duel step is a chain per car: world model -> controller -> risk -> knobs -> action ->
environment step. In one process the two cars' chains run one after the other, and at a
batch of two the model does not fill a core. With lanes, the cars are split in two halves
(car A and car B in a single duel): this process races the first half, a worker process
the second, each with its own environments and its own onnxruntime sessions, at the same
time. Shared memory carries the worker's observations, knobs and results; a pipe carries
the commands.

A player's numbers do not depend on the rest of the batch (the world model, the lookahead
and the numba kernels compute each row alone), so a laned duel is the same race, bit for
bit, as the same duel in one process (tests/test_lanes.py).
"""

from __future__ import annotations

import multiprocessing as mp
import select
import time
import traceback
from dataclasses import dataclass, replace
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import numpy as np

from engine.env.vector_env import (
    INFO_FIELDS,
    OBS_SHAPE,
    WORKER_CHECK_S,
    StepResult,
    VecRaceEnv,
    WorkerDied,
    exit_reason,
    serve,
)
from engine.policy.players import Players
from engine.policy.strategy import REGIMES
from engine.race.track_map import car_positions

LANES = (1, 2)  # 1: every car in this process; 2: the second half of the cars in a worker process
# Both sides poll their pipe up to this long (s) before they block on it: the other lane's answer
# is usually a fraction of a millisecond away, and a process woken from a blocking read
# costs 50-100 us more here (the core has gone idle). A paused duel blocks after this.
SPIN_S = 0.002
# When the other lane is late (its core is busy with other work, or the duel is paused or paced),
# spinning only takes CPU time from it: after a wait longer than SPIN_S the next wait blocks at
# once (the core goes to whoever needs it); after a shorter one it spins again.
BLOCK_MS = 100  # ms: a blocking wait looks this long for the answer (to time it), then the caller waits on


class _Spin:
    """Wait for data on a connection: poll it without blocking for up to SPIN_S, then block.

    One select.poll object for the connection, asked with a zero timeout: `Connection.poll()`
    builds a selector on every call (~15 us here), which is how late the answer was noticed.
    Whether it spins depends on the last wait: only when that one was within SPIN_S."""

    def __init__(self, conn, seconds: float = SPIN_S):
        self.seconds = self.budget = seconds
        self.poller = select.poll()
        self.poller.register(conn.fileno(), select.POLLIN)

    def __call__(self, conn=None) -> None:
        start = time.perf_counter()
        deadline = start + self.budget
        while not self.poller.poll(0):
            if time.perf_counter() >= deadline:
                self.poller.poll(BLOCK_MS)  # blocking: returns when the data is there, or after BLOCK_MS
                break
        self.budget = self.seconds if time.perf_counter() - start <= self.seconds else 0.0


@dataclass
class LaneSpec:
    """What a lane needs to build its cars (picklable: the worker builds its own from it)."""

    W: np.ndarray  # (n, 3, Z+H) float64 controllers of the lane's cars
    b: np.ndarray  # (n, 3)
    knobs: np.ndarray  # (n, 7) initial knob rows
    invariants: np.ndarray  # (4,)
    wet: np.ndarray  # (n,) 0/1
    renderer: str
    weather: str
    device: str
    precision: str
    weights_dir: Path
    threads: int
    max_episode_steps: int
    steer_hold: np.ndarray | None = None  # (n,) the controllers' steering holds (None: none)
    pace: np.ndarray | None = None  # (n, 2) the controllers' paces, m/s (None: none)


def _fields(n: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """The shared arrays of a lane of n cars: name -> (shape, dtype)."""
    fields = {"obs": ((n, *OBS_SHAPE), np.uint8), "knobs": ((n, 7), np.float64), "slip_in": ((n,), np.float64),
              "actions": ((n, 3), np.float64), "risk": ((n,), np.float64),
              "regimes": ((n, len(REGIMES)), np.float64), "reward": ((n,), np.float64),
              "terminated": ((n,), np.bool_), "truncated": ((n,), np.bool_), "done": ((n,), np.bool_),
              "positions": ((n, 2), np.float64)}  # fmt: skip
    fields.update({f"info_{k}": ((n,), dtype) for k, dtype in INFO_FIELDS.items()})
    return fields


def _layout(n: int) -> tuple[list[tuple[str, tuple[int, ...], Any, int]], int]:
    """The shared arrays of a lane of n cars one after another, 8-byte aligned: [(name, shape, dtype,
    offset)] and the bytes in all."""
    layout, offset = [], 0
    for name, (shape, dtype) in _fields(n).items():
        layout.append((name, shape, dtype, offset))
        offset += -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // 8) * 8
    return layout, offset


def _carve(buf, n: int) -> dict[str, np.ndarray]:
    """The lane's arrays as views of `buf` (see _layout)."""
    return {name: np.ndarray(shape, dtype=dtype, buffer=buf, offset=offset) for name, shape, dtype, offset in
            _layout(n)[0]}  # fmt: skip


class Lane:
    """Some cars of a duel batch, their environments (in this process) and their players.

    `step` is the whole chain for those cars: decide from the last observations, then
    step the environments with the actions."""

    def __init__(self, spec: LaneSpec):
        n = len(spec.W)
        self.wet = np.asarray(spec.wet, np.float64)
        self.vec = VecRaceEnv(n, workers=0, renderer=spec.renderer, weather=spec.weather,
                              max_episode_steps=spec.max_episode_steps)  # fmt: skip
        try:
            self.players = Players(spec.W, spec.b, np.array(spec.knobs, np.float64), spec.invariants,
                                   device=spec.device, precision=spec.precision, weights_dir=spec.weights_dir,
                                   threads=spec.threads, steer_hold=spec.steer_hold, pace=spec.pace)  # fmt: skip
        except BaseException:
            self.vec.close()
            raise

    def reset(self, seeds: list[int]) -> dict[str, np.ndarray]:
        _, info = self.vec.reset(seeds)
        self.players.reset()
        return info

    def step(self, slip: np.ndarray) -> tuple[np.ndarray, StepResult]:
        """slip (n,) rad -> (actions (n, 3), the environments' StepResult)."""
        actions = self.players.act(self.vec.obs, slip, self.wet)
        return actions, self.vec.step(actions)

    def positions(self) -> np.ndarray:
        return car_positions(self.vec.local_envs())

    def close(self) -> None:
        self.vec.close()


class _LaneServer:
    """The worker's side of a RemoteLane: its commands (engine.env.vector_env.serve), the results in shared memory."""

    def __init__(self, lane: Lane, arrays: dict[str, np.ndarray]):
        self.lane, self.arrays = lane, arrays

    def reset(self, seeds: list[int]) -> None:
        _publish_reset(self.arrays, self.lane, self.lane.reset(seeds))

    def step(self, _: None) -> None:
        self.lane.players.knobs[:] = self.arrays["knobs"]
        actions, res = self.lane.step(self.arrays["slip_in"].copy())
        _publish_step(self.arrays, self.lane, actions, res)

    def controllers(self, wb: tuple[np.ndarray, np.ndarray]) -> None:
        self.lane.players.set_controllers(*wb)

    def positions(self, _: None) -> None:
        self.arrays["positions"][:] = self.lane.positions()


def _lane_worker(conn, shm_name: str, spec: LaneSpec) -> None:
    shm = shared_memory.SharedMemory(name=shm_name)
    arrays = _carve(shm.buf, len(spec.W))
    lane = None
    try:
        lane = Lane(spec)
        conn.send(("ok", (lane.players.world.device, lane.players.world.precision)))
        serve(conn, _LaneServer(lane, arrays), before_recv=_Spin(conn))
    except (KeyboardInterrupt, EOFError):
        pass
    except Exception:  # the lane could not be built
        conn.send(("error", traceback.format_exc()))
    finally:
        if lane is not None:
            lane.close()
        del arrays
        shm.close()


def _publish_reset(arrays: dict[str, np.ndarray], lane: Lane, info: dict[str, np.ndarray]) -> None:
    arrays["obs"][:] = lane.vec.obs
    for k in INFO_FIELDS:
        arrays[f"info_{k}"][:] = info[k]
    arrays["done"][:] = False


def _publish_step(arrays: dict[str, np.ndarray], lane: Lane, actions: np.ndarray, res: StepResult) -> None:
    arrays["obs"][:] = lane.vec.obs
    arrays["actions"][:] = actions
    arrays["risk"][:] = lane.players.risk
    arrays["regimes"][:] = lane.players.regime_weights
    for name in ("reward", "terminated", "truncated", "done"):
        arrays[name][:] = getattr(res, name)
    for k in INFO_FIELDS:
        arrays[f"info_{k}"][:] = res.info[k]


class RemoteLane:
    """A Lane in a worker process (spawn), mirrored through shared memory."""

    def __init__(self, spec: LaneSpec, cars: range):
        n = len(spec.W)
        self.cars = cars  # their rows in the duel's batch (for messages)
        self.cars_text = str(cars.start) if len(cars) == 1 else f"{cars.start}-{cars.stop - 1}"
        self._shm = shared_memory.SharedMemory(create=True, size=_layout(n)[1])
        self.arrays = _carve(self._shm.buf, n)
        self.arrays["knobs"][:] = spec.knobs
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._conn, self._closed = parent, False
        self._spin = _Spin(parent)
        self._proc = ctx.Process(target=_lane_worker, args=(child, self._shm.name, spec), daemon=True)
        try:
            self._proc.start()
            child.close()
            self.device, self.precision = self._receive("starting")
        except BaseException:
            self.close()
            raise

    def _receive(self, doing: str):
        try:
            while not self._conn.poll(WORKER_CHECK_S):
                if not self._proc.is_alive():
                    raise EOFError
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            raise self._died(doing) from None
        if status == "error":
            raise RuntimeError(f"lane worker (pid {self._proc.pid}) failed while {doing}:\n{payload}")
        return payload

    def _send(self, message: tuple) -> None:
        try:
            self._conn.send(message)
        except OSError:  # the worker has gone
            raise self._died("taking a command") from None

    def _died(self, doing: str) -> WorkerDied:
        self._proc.join(timeout=1)
        how = exit_reason(self._proc)
        how = f"was {how}" if how.startswith("killed") else how
        return WorkerDied(f"lane worker (pid {self._proc.pid}, cars {self.cars_text}) {how} while {doing}: close this "
                          "duel and build a new one", 1, self._proc.pid, self.cars)  # fmt: skip

    def reset_async(self, seeds: list[int]) -> None:
        self._send(("reset", list(seeds)))

    def reset_wait(self) -> None:
        self._receive("resetting")

    def positions(self) -> np.ndarray:
        """(n, 2) the lane's cars' world positions."""
        self._send(("positions", None))
        self._receive("reading positions")
        return self.arrays["positions"].copy()

    def step_async(self, slip: np.ndarray) -> None:
        self.arrays["slip_in"][:] = slip
        self._send(("step", None))

    def step_wait(self) -> None:
        self._spin()
        self._receive("stepping")

    def set_controllers(self, W: np.ndarray, b: np.ndarray) -> None:
        self._send(("controllers", (W, b)))
        self._receive("taking new controllers")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.send(("close", None))
        except (OSError, ValueError):
            pass
        if self._proc.pid is not None:
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.terminate()
        self.arrays = {}
        self._shm.close()
        self._shm.unlink()


class LanePair:
    """Cars [0, h) raced here, cars [h, n) by a worker process, stepped at the same time.

    Args:
        spec: the LaneSpec of all n cars (n >= 2); it is split at h = n // 2.

    `obs` (n, 96, 96, 3), `knobs` (n, 7) (write a row to change a player's knobs), and after
    a step `actions` (n, 3), `risk` (n,), `regime_weights` (n, 4) hold every car's values."""

    def __init__(self, spec: LaneSpec):
        n = len(spec.W)
        if n < 2:
            raise ValueError(f"lanes=2 needs at least 2 cars, got {n}")
        h = self.split = n // 2

        def rows(lo, hi):
            return replace(spec, W=spec.W[lo:hi], b=spec.b[lo:hi], knobs=spec.knobs[lo:hi], wet=spec.wet[lo:hi],
                           steer_hold=None if spec.steer_hold is None else spec.steer_hold[lo:hi],
                           pace=None if spec.pace is None else spec.pace[lo:hi])

        self.remote = RemoteLane(rows(h, n), range(h, n))
        try:
            self.local = Lane(rows(0, h))
        except BaseException:
            self.remote.close()
            raise
        self.n = n
        self.device, self.precision = self.local.players.world.device, self.local.players.world.precision
        self.obs = np.zeros((n, *OBS_SHAPE), np.uint8)
        self.knobs = np.array(spec.knobs, np.float64)
        self.actions, self.risk = np.zeros((n, 3)), np.zeros(n)
        self.regime_weights = np.zeros((n, len(REGIMES)))

    def reset(self, seeds: list[int]) -> dict[str, np.ndarray]:
        """Every car to the start of its track seeds[p]; the info arrays (n,) of INFO_FIELDS."""
        h, far = self.split, self.remote.arrays
        self.remote.reset_async(seeds[h:])
        info = self.local.reset(list(seeds[:h]))
        self.remote.reset_wait()
        self.obs[:h], self.obs[h:] = self.local.vec.obs, far["obs"]
        return {k: np.concatenate([info[k], far[f"info_{k}"]]) for k in INFO_FIELDS}

    def set_knobs(self, p: int, row: np.ndarray) -> None:
        self.knobs[p] = row
        if p < self.split:
            self.local.players.knobs[p] = row
        else:
            self.remote.arrays["knobs"][p - self.split] = row

    def set_controllers(self, W: np.ndarray, b: np.ndarray) -> None:
        h = self.split
        self.local.players.set_controllers(W[:h], b[:h])
        self.remote.set_controllers(W[h:], b[h:])

    def step(self, slip: np.ndarray) -> StepResult:
        """One step of every car (both lanes at once); slip (n,) rad -> the StepResult of all n."""
        h, far = self.split, self.remote.arrays
        self.remote.step_async(slip[h:])
        actions, res = self.local.step(slip[:h])  # meanwhile the worker steps its cars
        self.remote.step_wait()
        self.obs[:h], self.obs[h:] = self.local.vec.obs, far["obs"]
        self.actions[:h], self.actions[h:] = actions, far["actions"]
        self.risk[:h], self.risk[h:] = self.local.players.risk, far["risk"]
        self.regime_weights[:h], self.regime_weights[h:] = self.local.players.regime_weights, far["regimes"]
        both = {name: np.concatenate([getattr(res, name), far[name]])
                for name in ("reward", "terminated", "truncated", "done")}  # fmt: skip
        info = {k: np.concatenate([res.info[k], far[f"info_{k}"]]) for k in INFO_FIELDS}
        return StepResult(self.obs, both["reward"], both["terminated"], both["truncated"], both["done"], info)

    def positions(self) -> np.ndarray:
        """(n, 2) every car's world position (the track map)."""
        return np.concatenate([self.local.positions(), self.remote.positions()])

    def close(self) -> None:
        try:
            self.local.close()
        finally:
            self.remote.close()
