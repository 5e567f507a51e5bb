"""Many racing environments at once, across worker processes, for training and tournaments.

`VecRaceEnv(num_envs, workers)` splits N environments over W processes (each worker
steps its share one after another, so N may be far larger than the core count);
observations land in one shared-memory array, so a step moves only actions and a few
numbers through the pipes. With `workers=0` everything runs in this process.

Unlike gymnasium's vector envs there is no autoreset: an episode that ends stays
ended (its observation frozen, reward 0) until `reset` is called for it. Tournaments
and CMA-ES rollouts want exactly one episode per environment, and a duel is two
environments on the same seed stepped in lockstep, each ending on its own.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from engine.env.racing_env import make_env

OBS_SHAPE = (96, 96, 3)  # CarRacing-v3 state_pixels, uint8
INFO_FIELDS = {  # per-step telemetry gathered from every env's info, with its dtype
    "speed": np.float64,
    "slip": np.float64,
    "off_track": np.bool_,
    "tiles_visited": np.int64,
    "track_tiles": np.int64,
    "lap_finished": np.bool_,
}


WORKER_CHECK_S = 0.5  # while waiting for a worker's answer, check this often (s) that it is still alive


class WorkerDied(RuntimeError):
    """A worker process ended (killed, crashed) while the caller waited for it; the message names the worker,
    its process id, its environments and how it ended. The VecRaceEnv is unusable after it: close it (its
    shared memory is released) and build a new one."""

    def __init__(self, message: str, worker: int, pid: int | None, envs: range):
        super().__init__(message)
        self.worker, self.pid, self.envs = worker, pid, envs


@dataclass
class StepResult:
    """One step of every environment. Arrays are indexed by environment."""

    obs: np.ndarray  # (N, 96, 96, 3) uint8, a view of shared memory: copy to keep
    reward: np.ndarray  # (N,) float64, 0 for environments already done
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    done: np.ndarray  # (N,) bool, ended at this step or before
    info: dict[str, np.ndarray]  # INFO_FIELDS, each (N,)


class _Shard:
    """The environments of one worker: indices [lo, hi) of the batch."""

    def __init__(self, lo: int, hi: int, obs: np.ndarray, env_kwargs: dict[str, Any], weathers: list[str]):
        self.lo, self.hi = lo, hi
        self.obs = obs  # (N, 96, 96, 3) the whole shared batch
        self.envs = [make_env(weather=w, **env_kwargs) for w in weathers[lo:hi]]
        self.done = np.ones(hi - lo, dtype=bool)
        self.last_info = [dict.fromkeys(INFO_FIELDS, 0) for _ in range(hi - lo)]

    def reset(self, seeds: dict[int, int | None]) -> dict[str, np.ndarray]:
        for i, seed in seeds.items():
            k = i - self.lo
            self.obs[i], info = self.envs[k].reset(seed=seed)
            info["lap_finished"] = False
            self.last_info[k] = info
            self.done[k] = False
        return self._infos()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        n = self.hi - self.lo
        reward = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        for k in range(n):
            if self.done[k]:
                continue
            obs, r, te, tr, info = self.envs[k].step(actions[k])
            self.obs[self.lo + k] = obs
            reward[k], terminated[k], truncated[k] = r, te, tr
            self.last_info[k] = info
            self.done[k] = te or tr
        return reward, terminated, truncated, self.done.copy(), self._infos()

    def end(self, indices: list[int]) -> None:
        for i in indices:
            self.done[i - self.lo] = True

    def _infos(self) -> dict[str, np.ndarray]:
        return {
            key: np.array([info[key] for info in self.last_info], dtype=dtype)
            for key, dtype in INFO_FIELDS.items()
        }

    def close(self) -> None:
        for env in self.envs:
            env.close()


def serve(conn, target: Any, before_recv: Callable[[Any], None] | None = None) -> None:
    """A worker's command loop: ("name", arg) from `conn` -> ("ok", target.name(arg)), or ("error",
    traceback) and the worker carries on, until ("close", None). before_recv(conn) runs before each
    wait for a command (engine.race.lanes polls there before it blocks)."""
    while True:
        if before_recv is not None:
            before_recv(conn)
        cmd, arg = conn.recv()
        if cmd == "close":
            return
        try:  # a bad command is reported to the caller; the worker carries on
            conn.send(("ok", getattr(target, cmd)(arg)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


def exit_reason(proc) -> str:
    """How a worker process ended, for a message: "killed by SIGKILL", "exited with status 1", or
    "still running but its pipe closed"."""
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return "still running but its pipe closed" if code is None else f"exited with status {code}"


def _worker(conn, shm_name: str, num_envs: int, lo: int, hi: int, env_kwargs: dict[str, Any],
            weathers: list[str]) -> None:  # fmt: skip
    shm = shared_memory.SharedMemory(name=shm_name)
    obs = np.ndarray((num_envs, *OBS_SHAPE), dtype=np.uint8, buffer=shm.buf)
    shard = None
    try:
        shard = _Shard(lo, hi, obs, env_kwargs, weathers)
        conn.send(("ok", None))
        serve(conn, shard)
    except (KeyboardInterrupt, EOFError):
        pass
    except Exception:  # the environments could not be built
        conn.send(("error", traceback.format_exc()))
    finally:
        if shard is not None:
            shard.close()
        del obs
        shm.close()


class VecRaceEnv:
    """N racing environments stepped together, split over worker processes.

    Args:
        num_envs: N, the number of environments.
        workers: processes to spread them over (0: all in this process). At most N.
        renderer, **car_racing_kwargs: as for `engine.make_env`, the same for all.
        weather: as for `engine.make_env`, for all, or a sequence of N, one per environment.
        start_method: multiprocessing start method ("spawn" is safe with threads).
    """

    def __init__(
        self,
        num_envs: int,
        workers: int = 0,
        renderer: str = "fast",
        weather: str | Sequence[str] = "clear",
        start_method: str = "spawn",
        **car_racing_kwargs: Any,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if workers < 0:
            raise ValueError(f"workers must be 0 (in-process) or more, got {workers}")
        weathers = [weather] * num_envs if isinstance(weather, str) else list(weather)
        if len(weathers) != num_envs:
            raise ValueError(f"weather: {len(weathers)} weathers for {num_envs} environments")
        for w in set(weathers):
            make_env(renderer=renderer, weather=w).close()  # fail here on bad arguments
        self.num_envs = num_envs
        self.workers = min(workers, num_envs)
        self.weathers = weathers
        env_kwargs = dict(renderer=renderer, **car_racing_kwargs)
        self._shm = shared_memory.SharedMemory(create=True, size=num_envs * int(np.prod(OBS_SHAPE)))
        self.obs = np.ndarray((num_envs, *OBS_SHAPE), dtype=np.uint8, buffer=self._shm.buf)
        self.obs[:] = 0
        bounds = np.linspace(0, num_envs, max(self.workers, 1) + 1).round().astype(int)
        self._bounds = list(zip(bounds[:-1], bounds[1:]))
        self._conns, self._procs, self._local = [], [], None
        self.done = np.ones(num_envs, dtype=bool)
        self._closed = False
        self._broken: WorkerDied | None = None  # set once a worker has died
        try:
            if self.workers == 0:
                self._local = _Shard(0, num_envs, self.obs, env_kwargs, weathers)
            else:
                ctx = mp.get_context(start_method)
                for lo, hi in self._bounds:
                    parent, child = ctx.Pipe()
                    proc = ctx.Process(
                        target=_worker,
                        args=(child, self._shm.name, num_envs, lo, hi, env_kwargs, weathers),
                        daemon=True,
                    )
                    proc.start()
                    child.close()
                    self._conns.append(parent)
                    self._procs.append(proc)
                for w in range(len(self._conns)):
                    self._receive(w, starting=True)
        except BaseException:
            self.close()  # no orphaned workers or shared memory
            raise

    def _receive(self, w: int, starting: bool = False):
        """Worker `w`'s answer. A worker that has died raises WorkerDied within WORKER_CHECK_S (its end of the
        pipe closes at once; the liveness check covers a pipe some other process still holds)."""
        if self._broken is not None:
            raise self._broken
        conn, proc = self._conns[w], self._procs[w]
        try:
            while not conn.poll(WORKER_CHECK_S):
                if not proc.is_alive():
                    raise EOFError
            status, payload = conn.recv()
        except (EOFError, OSError):
            raise self._died(w, "starting" if starting else "working") from None
        if status == "error":
            raise RuntimeError(f"racing worker {w} (environments {self._envs_text(w)}) failed:\n{payload}")
        return payload

    def _send(self, w: int, message: tuple) -> None:
        if self._broken is not None:
            raise self._broken
        try:
            self._conns[w].send(message)
        except OSError:  # BrokenPipeError, ConnectionResetError: the worker has gone
            raise self._died(w, "taking a command") from None

    def _envs_text(self, w: int) -> str:
        lo, hi = self._bounds[w]
        return f"{lo}-{hi - 1}" if hi - lo > 1 else str(lo)

    def _died(self, w: int, doing: str) -> WorkerDied:
        """The error for worker `w` gone; every later call raises it too (the batch is incomplete)."""
        proc = self._procs[w]
        proc.join(timeout=1)
        how = exit_reason(proc)
        message = (f"racing worker {w} (pid {proc.pid}, environments {self._envs_text(w)} of {self.num_envs}) "
                   f"{how} while {doing}; its environments are lost: close this VecRaceEnv and build a new one")
        if doing == "starting":
            message += (" (its error is printed above; with the 'spawn' start method, scripts need an "
                        "`if __name__ == '__main__':` guard)")
        self._broken = WorkerDied(message, w, proc.pid, self.worker_envs(w))
        return self._broken

    def worker_pid(self, worker: int) -> int | None:
        """The process id of worker `worker` (for monitoring; None before it started)."""
        return self._procs[worker].pid

    def _gather(self, parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {key: np.concatenate([p[key] for p in parts]) for key in INFO_FIELDS}

    def reset(self, seeds: list[int | None] | np.ndarray, indices: list[int] | None = None):
        """Start new episodes: env `indices[j]` (default: all) on track `seeds[j]`.

        Returns (obs (N, 96, 96, 3) uint8 view, info dict of (N,) arrays).
        """
        indices = list(range(self.num_envs)) if indices is None else [int(i) for i in indices]
        if len(seeds) != len(indices):
            raise ValueError(f"reset: {len(seeds)} seeds for {len(indices)} environments")
        bad = [i for i in indices if not 0 <= i < self.num_envs]
        if bad:
            raise IndexError(f"reset: environment indices {bad} outside 0..{self.num_envs - 1}")
        wanted = {i: (None if s is None else int(s)) for i, s in zip(indices, seeds)}
        if self._local is not None:
            info = self._local.reset(wanted)
        else:
            for w, (lo, hi) in enumerate(self._bounds):
                self._send(w, ("reset", {i: s for i, s in wanted.items() if lo <= i < hi}))
            info = self._gather([self._receive(w) for w in range(len(self._conns))])
        self.done[indices] = False
        return self.obs, info

    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.dtype == np.float64 and actions.shape == (self.num_envs, 3) and np.isfinite(actions).all():
            return actions  # the usual case, in one numpy call
        if actions.dtype.kind not in "fiu" or actions.shape != (self.num_envs, 3):
            raise ValueError(
                f"step: actions must be numeric of shape ({self.num_envs}, 3), "
                f"got {actions.dtype} {actions.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(actions).all(axis=1) & ~self.done)
        if bad.size:
            raise ValueError(f"step: actions of environments {bad.tolist()} are not finite")
        return actions

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every environment that has not ended. actions: (N, 3) float (steer, gas, brake)."""
        if self._local is None:
            everyone = range(self.workers)
            self.step_async(actions, everyone)
            return self.step_wait(everyone)
        part = self._local.step(self._check_actions(actions))
        self.done = part[3]
        return StepResult(self.obs, *part[:4], part[4])

    def worker_envs(self, worker: int) -> range:
        """The environment indices worker `worker` steps."""
        lo, hi = self._bounds[worker]
        return range(int(lo), int(hi))

    def step_async(self, actions: np.ndarray, workers: Sequence[int]) -> None:
        """Start stepping the environments of `workers` (worker indices) and return at once;
        `step_wait(workers)` collects them. actions: (N, 3), only those workers' rows are read.
        Meanwhile the caller may read and decide for the other workers' environments: each
        worker writes only its own rows of the shared observations (the pipelined race of
        engine.race.duel.Duel.run)."""
        if self._local is not None:
            raise RuntimeError("step_async needs worker processes (workers > 0)")
        actions = self._check_actions(actions)
        for w in workers:
            lo, hi = self._bounds[w]
            self._send(w, ("step", actions[lo:hi]))

    def step_wait(self, workers: Sequence[int]) -> StepResult:
        """The results of `step_async(actions, workers)`: arrays over those workers'
        environments in index order (obs is the whole shared array)."""
        parts = [self._receive(w) for w in workers]
        reward, terminated, truncated, done = (np.concatenate([p[k] for p in parts]) for k in range(4))
        for w, part in zip(workers, parts):
            lo, hi = self._bounds[w]
            self.done[lo:hi] = part[3]
        return StepResult(self.obs, reward, terminated, truncated, done, self._gather([p[4] for p in parts]))

    def run_pipelined(self, decide: Callable[[int, np.ndarray], np.ndarray | None],
                      record: Callable[[int, np.ndarray, StepResult], None]) -> None:  # fmt: skip
        """Step the environments in two halves (of the workers), each half's decision
        overlapping the other half's environment step, until neither half has a step to take.

        decide(half, envs) -> actions (N, 3) whose rows `envs` (that half's environment
        indices, in order) are its next actions, or None: that half has finished.
        record(half, envs, res): that half's step results (rows of `envs`).
        Each environment sees the same actions as in a lockstep loop when the decisions of
        one environment do not depend on the others' (independent rows of a batched model)."""
        if self.workers < 2:
            raise RuntimeError("run_pipelined needs at least 2 worker processes")
        halves = [list(range(self.workers // 2)), list(range(self.workers // 2, self.workers))]
        envs = [np.arange(self.worker_envs(h[0]).start, self.worker_envs(h[-1]).stop) for h in halves]
        pending = []
        for half in (0, 1):
            actions = decide(half, envs[half])
            if actions is not None:
                self.step_async(actions, halves[half])
                pending.append(half)
        while pending:
            for half in list(pending):
                record(half, envs[half], self.step_wait(halves[half]))
                actions = decide(half, envs[half])  # while the other half's environments step
                if actions is None:
                    pending.remove(half)
                else:
                    self.step_async(actions, halves[half])

    def local_envs(self) -> list:
        """The environments themselves (index order), when they live in this process (workers=0)."""
        if self._local is None:
            raise RuntimeError("local_envs: the environments live in worker processes (workers > 0)")
        return self._local.envs

    def end(self, indices: list[int] | np.ndarray) -> None:
        """End the episodes of environments `indices` now (a training rollout cut short):
        they are skipped by `step` until reset."""
        indices = [int(i) for i in indices]
        if not indices:
            return
        if self._local is not None:
            self._local.end(indices)
        else:  # only the workers that own them: another may be stepping (step_async)
            owners = [(w, [i for i in indices if lo <= i < hi]) for w, (lo, hi) in enumerate(self._bounds)]
            owners = [(w, mine) for w, mine in owners if mine]
            for w, mine in owners:
                self._send(w, ("end", mine))
            for w, _ in owners:
                self._receive(w)
        self.done[indices] = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._local is not None:
            self._local.close()
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        del self.obs
        self._shm.close()
        self._shm.unlink()

    def __enter__(self) -> VecRaceEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
