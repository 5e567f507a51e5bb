"""A live duel: a `Duel` stepped in a worker thread, decoupled from whoever watches it
(the terminal app, the HTTP API).

The worker steps the duel at the race's real speed (CarRacing's 50 steps per second), a
multiple of it, or as fast as it can, and publishes an immutable `Snapshot` after every
step. Watchers read the latest snapshot on their own clock (the TUI at most 30 times a
second, API clients when they ask): a slow terminal or client never slows the race, and
nobody ever sees a half-updated state (snapshots are built under the lock, then never
change). Commands (start, pause, reset, knob changes) take the lock, so they land between
two steps; a knob change applies from the next step on.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.policy.knobs import KnobError
from engine.race.duel import FPS, PLAYERS, SEED_RANGE, Duel
from engine.race.track_map import LapProgress, TrackGeometry, car_positions, track_geometry
from engine.world_model.manifest import WEIGHTS_DIR

HISTORY = 1000  # reward samples kept per player for the sparkline (one episode)


@dataclass(frozen=True)
class Snapshot:
    """Everything the screen shows, as of one step."""

    version: int  # increases with every change
    seed: int
    step: int  # steps raced (the further car)
    status: str  # ready, running, paused or finished
    telemetry: list[dict[str, Any]]  # per player, PlayerTelemetry.as_dict()
    frames: np.ndarray  # (2, 96, 96, 3) uint8, what each car sees
    z: np.ndarray  # (2, 32) float32, the VAE latents of those frames
    rewards: list[np.ndarray]  # per player, the reward after each step (float64)
    knobs: list[dict[str, float | int]]  # per player, flat knob values
    leader: str | None
    winner: str | None  # once finished ("draw" on a tie)
    weather: str
    controllers: list[str] = field(default_factory=list)  # per player: PLACEHOLDER or how it was trained
    controller_info: list[dict[str, Any]] = field(default_factory=list)  # per player: ControllerInfo.as_dict()
    track: TrackGeometry | None = None  # the track's outline (the same object until the next reset)
    positions: np.ndarray | None = None  # (2, 2) float64, each car's world position (metres)
    progress: np.ndarray | None = None  # (2,) float64, tiles along the lap (unwrapped)
    gap: tuple[str | None, float, float] = (None, 0.0, 0.0)  # (leader, tiles, seconds) along the track
    error: str | None = None  # why the race stopped (status "error"), e.g. a worker process died; reset recovers


class RaceRunner:
    """Owns the duel and its worker thread.

    Args:
        seed: first track (None: random).
        speed: steps per second as a multiple of real time (1.0: 50 steps/s); None: as fast as possible.
        device, weather, renderer, weights_dir, driver: as for `engine.race.duel.Duel`.
        controllers: the two controller files (A, B), or None for weights_dir's controllerA.npz and controllerB.npz.
        workers: environment worker processes (0: in this thread's process, the default).
        human: "A" or "B": a person drives that car; `human_input(step)` gives their (steer, gas, brake)
            for the step after `step` steps, asked once per step in order, in whichever thread steps.

    When a step fails (a worker process killed, anything else), the race stops with status "error" and the
    error in the snapshot; the runner and its watchers stay up, and `reset` builds a fresh duel (new
    workers, new shared memory) with the players' knobs as they were.
    """

    def __init__(self, seed: int | None = None, speed: float | None = 1.0, device: str = "auto",
                 weather: str = "clear", renderer: str = "exact", weights_dir: Path | None = None,
                 driver: str = "model", controllers: Sequence[Path | None] | None = None,
                 workers: int = 0, human: str | None = None,
                 human_input: Callable[[int], Sequence[float]] | None = None):  # fmt: skip
        if human is not None and human_input is None:
            raise ValueError(f"player {human} is driven by a person: give human_input")
        self.weights_dir = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
        self.human, self.human_input = human, human_input
        self._duel_args = dict(controllers=controllers, renderer=renderer, weather=weather, device=device,
                               weights_dir=self.weights_dir, driver=driver, workers=workers,
                               human=human)  # fmt: skip
        self.duel = Duel(**self._duel_args)
        self.error: str | None = None
        self.speed, self.weather = speed, weather
        self.controllers = [info.kind for info in self.duel.controller_info]
        self.controller_info = [info.as_dict() for info in self.duel.controller_info]
        if driver == "autopilot":
            self.controllers = [f"autopilot {name} (scripted, reads the simulator)" for name in PLAYERS]
            self.controller_info = []  # the files are loaded but nobody drives with them
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._version, self._built = 0, None
        self._rewards = np.zeros((2, HISTORY))  # (2, T) reward after each step
        self._filled = [0, 0]
        self._pace_start, self._pace_steps = 0.0, 0
        self._thread: threading.Thread | None = None
        self.turns = 0  # the worker's rounds of its loop, stepping or idle: a watcher can wait for it to have looked
        self.reset(seed)

    # -- lifecycle ---------------------------------------------------------------------------
    def start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="race", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.duel.close()

    # -- commands (any thread) ---------------------------------------------------------------
    def toggle(self) -> None:
        """Start or pause; a finished race stays finished until reset."""
        with self._lock:
            if self.duel.running:
                self.duel.pause()
            elif self.error is None:  # a failed race waits for reset
                self.duel.start()
                self._pace_start, self._pace_steps = time.perf_counter(), 0
            self._publish()
        self._wake.set()

    def pause(self) -> None:
        with self._lock:
            self.duel.pause()
            self._publish()

    def reset(self, seed: int | None = None) -> int:
        """Back to the start of track `seed` (None: the current track, or a random one at first)."""
        with self._lock:
            if seed is None:
                seed = self.duel.seeds[0] if self.duel.seeds else secrets.randbelow(SEED_RANGE)
            if not 0 <= int(seed) < 2**32:
                raise ValueError(f"seed must be in 0..{2**32 - 1}, got {seed}")
            if self.error is not None:
                self._rebuild()
            self.duel.reset(int(seed))
            self._filled = [0, 0]
            # The map reads the track and the cars from the simulator: in-process environments only.
            local = self.duel.vec.workers == 0
            self.lap = LapProgress(track_geometry(self.duel.vec.local_envs()[0], int(seed))) if local else None
            self._publish()
            return int(seed)

    def new_seed(self) -> int:
        return self.reset(secrets.randbelow(SEED_RANGE))

    def set_knob(self, player: int, name: str, value: Any) -> None:
        """Change one knob; KnobError (reason on screen) leaves the old value."""
        with self._lock:
            self.duel.set_knobs(player, {name: value}, where=f"player {PLAYERS[player]}")
            self._publish()

    def set_knobs(self, player: int, changes: dict[str, Any], where: str | None = None) -> None:
        """Change several knobs at once (flat or nested); all apply, or none and KnobError names the bad one."""
        with self._lock:
            self.duel.set_knobs(player, changes, where=where or f"player {PLAYERS[player]}")
            self._publish()

    def restore_defaults(self, player: int) -> None:
        with self._lock:
            self.duel.set_knobs(player, self.duel.bounds.defaults(), where=f"player {PLAYERS[player]}")
            self._publish()

    def save_record(self, path: Path, force: bool = False) -> Path:
        """Write this race so far (since its reset) as a race record (engine.race.race_log), for `vmc-duel replay`."""
        from engine.race.replay import save_record

        with self._lock:
            return save_record(self.duel, path, force=force)

    def step_n(self, n: int) -> None:
        """Step `n` times now, in this thread (tests, and single-stepping while paused)."""
        with self._lock:
            for _ in range(n):
                if self.duel.finished:
                    break
                self._step()

    def snapshot(self) -> Snapshot:
        """The state now; built at most once per change, when the screen asks for it."""
        with self._lock:
            if self._built is None or self._built.version != self._version:
                self._built = self._build()
            return self._built

    def _rebuild(self) -> None:
        """A fresh duel after a failure (its workers and shared memory are new), the knobs as they were."""
        knobs = [dict(k.values) for k in self.duel.knobs]
        self.duel.close()  # releases the shared memory and ends the workers still alive
        self.duel = Duel(**self._duel_args)
        for p, values in enumerate(knobs):
            self.duel.set_knobs(p, values, where=f"player {PLAYERS[p]}")
        self.error = None

    # -- the worker --------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                running = self.duel.running
                if running:
                    try:
                        self._step()
                    except Exception as e:  # the race stops and says why; watchers stay up, reset recovers
                        self.error = " ".join(f"{type(e).__name__}: {e}".split())
                        self.duel.pause()
                        running = False
                        self._publish()
            self.turns += 1
            if not running:
                self._wake.wait(0.05)
                self._wake.clear()
            elif self.speed is not None:
                self._pace_steps += 1
                lag = self._pace_start + self._pace_steps / (FPS * self.speed) - time.perf_counter()
                if lag > 0:
                    time.sleep(lag)
                elif lag < -0.5:  # far behind (a slow machine): stop trying to catch up
                    self._pace_start, self._pace_steps = time.perf_counter(), 0
            else:
                time.sleep(0)  # let the drawing thread in

    def _step(self) -> None:
        if self.human_input is None:
            self.duel.step()
        else:
            self.duel.step(self.human_input(max(t.step for t in self.duel.telemetry)))
        if self.lap is not None:
            self.lap.update(max(t.step for t in self.duel.telemetry), car_positions(self.duel.vec.local_envs()))
        for p, t in enumerate(self.duel.telemetry):
            if self._filled[p] < min(t.step, HISTORY):
                self._rewards[p, self._filled[p]] = t.reward
                self._filled[p] += 1
        self._publish()

    def _publish(self) -> None:
        self._version += 1

    def _build(self) -> Snapshot:
        d = self.duel
        lead, tiles, seconds = self.lap.gap() if self.lap is not None else (None, 0.0, 0.0)
        if self.error is not None:
            status = "error"
        elif d.finished:
            status = "finished"
        elif d.running:
            status = "running"
        else:
            status = "ready" if max(t.step for t in d.telemetry) == 0 else "paused"
        return Snapshot(
            version=self._version, seed=d.seeds[0], step=max(t.step for t in d.telemetry), status=status,
            telemetry=[t.as_dict() for t in d.telemetry], frames=d.frames.copy(), z=d.players.z.copy(),
            rewards=[self._rewards[p, : self._filled[p]].copy() for p in range(2)],
            knobs=[dict(k.values) for k in d.knobs],
            leader=d.leader(), winner=(d.winner() or "draw") if d.finished else None, weather=self.weather,
            controllers=self.controllers, controller_info=self.controller_info,
            track=None if self.lap is None else self.lap.geometry,
            positions=None if self.lap is None else car_positions(d.vec.local_envs()),
            progress=None if self.lap is None else self.lap.progress.copy(),
            gap=(None if lead is None else PLAYERS[lead], tiles, seconds),
            error=self.error,
        )  # fmt: skip


__all__ = ["HISTORY", "KnobError", "RaceRunner", "Snapshot"]
