"""The duel: two learned players on the same track, stepped in lockstep, each ending on its own.

Each car has its own environment on the same seed, so neither can block the other and
both see identical conditions. Every step, both players' (or, for a batch of duels, all
2N players') world-model steps run in one onnxruntime call, then the controllers, the
predicted risk and the strategy knobs (engine.policy.players). Knobs can change between steps.

Winner: the higher reward once both cars have ended; on a tie, less time off the road.
Same seed, same knobs and same weights -> the same race, bit for bit, on one machine (see
docs/determinism.md: across CPU instruction sets the model's floats differ in the
last bits and a race may take another line). With `driver="autopilot"` the scripted
centre-line drivers (engine.env.autopilot) steer instead of the models: no model float decides
anything, so such a race is the same on every CPU (the screen snapshots use it).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.env.autopilot import STYLES, Autopilot
from engine.env.racing_env import FPS  # steps per second of race time
from engine.env.vector_env import StepResult, VecRaceEnv
from engine.memory import release_free_memory
from engine.policy.controller import ControllerInfo
from engine.policy.knobs import Knobs, load_bounds
from engine.policy.players import Players, invariants_array, load_controllers, paces, steer_holds
from engine.policy.strategy import REGIMES
from engine.progress import listening, point
from engine.race.lanes import LANES, LanePair, LaneSpec
from engine.race.race_log import RaceLog, provenance
from engine.world_model.manifest import WEIGHTS_DIR

PLAYERS = ("A", "B")
SEED_RANGE = 2**31  # random seeds are drawn below this
DRIVERS = ("model", "autopilot")  # who steers: the learned controllers, or engine.env.autopilot's scripted pair


STEER_DEAD_BAND = 0.05  # |steer| at or below this is straight ahead: no side, so no reversal


@dataclass
class PlayerTelemetry:
    """What the duel reports about one car after a step."""

    step: int = 0  # steps taken this episode
    reward: float = 0.0  # episode return so far
    speed: float = 0.0  # m/s
    off_track_steps: int = 0  # steps with all four wheels off the road
    tiles_visited: int = 0
    track_tiles: int = 1
    action: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # steer, gas, brake given to the car
    risk: float = 0.0  # predicted risk in [0, 1]
    regimes: dict[str, float] = field(default_factory=dict)  # gate weight per regime
    done: bool = False  # finished: the lap, the time limit or off the playfield
    lap_finished: bool = False
    distance: float = 0.0  # m driven this episode (speed x time, summed over steps)
    steer_reversals: int = 0  # times the steering changed sign (beyond the dead band): the weave
    last_steer_sign: int = 0  # -1, 0 (none yet) or 1: the last steering beyond the dead band

    @property
    def off_track_seconds(self) -> float:
        return self.off_track_steps / FPS

    @property
    def tiles_fraction(self) -> float:
        return self.tiles_visited / max(self.track_tiles, 1)

    @property
    def mean_speed(self) -> float:
        """m/s over the episode so far."""
        return self.distance * FPS / self.step if self.step else 0.0

    @property
    def weave(self) -> float:
        """Steering reversals per second of race time: how much the car weaves."""
        return self.steer_reversals * FPS / self.step if self.step else 0.0

    def count_steer(self, steer: float) -> None:
        """Count a reversal when `steer` (beyond STEER_DEAD_BAND) has the other sign than the last one that was."""
        if abs(steer) > STEER_DEAD_BAND:
            sign = 1 if steer > 0 else -1
            self.steer_reversals += self.last_steer_sign == -sign
            self.last_steer_sign = sign

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["last_steer_sign"]
        d["off_track_seconds"] = self.off_track_seconds
        d["tiles_percent"] = 100.0 * self.tiles_fraction
        d["mean_speed"] = self.mean_speed
        d["weave"] = self.weave
        return d


def controller_paths(controllers: Sequence[Path | None] | None, weights_dir: Path = WEIGHTS_DIR) -> list[Path]:
    """The files players A and B drive with: those given, weights_dir's controllerA.npz / controllerB.npz for None."""
    given = list(controllers) if controllers is not None else [None] * len(PLAYERS)
    if len(given) != len(PLAYERS):
        raise ValueError(f"controllers: give {len(PLAYERS)} files (A, B), got {len(given)}")
    return [Path(g) if g is not None else Path(weights_dir) / f"controller{name}.npz"
            for g, name in zip(given, PLAYERS)]  # fmt: skip


class Duel:
    """`duels` duels of A against B at once: players 2d (A) and 2d + 1 (B) race track `seeds[d]`.

    Args:
        controllers: the two controller files (A, B); a None (or no list) is weights_dir's controllerA.npz or
            controllerB.npz (see `controller_paths`).
        controller_names: what to call them (default: each file's stem); see `controller_info`.
        knobs: the two players' Knobs (A, B) or 2 x duels of them; default all at their defaults.
        renderer, weather: as for `engine.make_env`, the same for every car; in rain a controller
            file's wet-track set drives where it has one (`engine.policy.controller`).
        device, precision, weights_dir, threads: as for `engine.world_model.runtime.WorldModel`.
        duels: duels raced together (a tournament batches them).
        workers: environment worker processes (0: in this process).
        max_episode_steps: the time limit (CarRacing-v3: 1000).
        driver: "model" (the controllers through the world model and knobs) or "autopilot"
            (engine.env.autopilot's styles A and B read the simulator and steer; knobs, risk and
            regimes play no part; in-process environments only).
        lanes: 1 (every car's decisions and environment in this process) or 2 (the second half
            of the cars, player B in a single duel, raced by a worker process at the same time:
            engine.race.lanes; the same race, bit for bit, on two cores; model driver, workers=0).
        human: "A" or "B": a person drives that car (a single duel, lanes=1): `step` takes their action
            and gives it to the car in place of the controller's. The controller still decides for that
            row of the batch (and its decision is dropped), so the other car's model runs exactly as in a
            duel of two controllers: the person's keys cannot change it. The record's header says who.
    """

    def __init__(self, controllers: Sequence[Path | None] | None = None, knobs: Sequence[Knobs] | None = None,
                 renderer: str = "exact", weather: str = "clear", device: str = "auto", precision: str = "auto",
                 weights_dir: Path = WEIGHTS_DIR, duels: int = 1, threads: int = 1, workers: int = 0,
                 max_episode_steps: int = 1000, driver: str = "model",
                 controller_names: Sequence[str | None] | None = None, lanes: int = 1,
                 human: str | None = None):  # fmt: skip
        if duels < 1:
            raise ValueError(f"duels must be at least 1, got {duels}")
        if driver not in DRIVERS:
            raise ValueError(f"driver {driver!r} is not one of {', '.join(DRIVERS)}")
        if driver == "autopilot" and workers:
            raise ValueError("driver 'autopilot' reads the simulator, so it needs workers=0 (in-process environments)")
        if lanes not in LANES:
            raise ValueError(f"lanes must be one of {', '.join(map(str, LANES))}, got {lanes}")
        if lanes == 2 and (driver != "model" or workers):
            raise ValueError("lanes=2 races the model driver with in-process environments (workers=0)")
        if human is not None and human not in PLAYERS:
            raise ValueError(f"human must be one of {', '.join(PLAYERS)}, got {human!r}")
        if human is not None and (duels != 1 or lanes != 1):
            raise ValueError("a person drives in a single duel with lanes=1")
        self.human = None if human is None else PLAYERS.index(human)  # the car a person drives, by index
        self.driver = driver
        n = 2 * duels
        self.duels, self.renderer, self.weather = duels, renderer, weather
        self.bounds = load_bounds()
        if knobs is None:
            knobs = [Knobs(self.bounds) for _ in range(n)]
        elif len(knobs) == 2:
            knobs = [knobs[p % 2] if duels == 1 else _copy(knobs[p % 2]) for p in range(n)]
        elif len(knobs) != n:
            raise ValueError(f"knobs: give 2 (A, B) or {n}, got {len(knobs)}")
        self.knobs = list(knobs)
        paths = controller_paths(controllers, weights_dir)
        self.controller_paths, self.weights_dir = list(paths), Path(weights_dir)
        self.max_episode_steps = max_episode_steps
        W, b, self.controller_meta = load_controllers(list(paths), weights_dir, weather)
        names = list(controller_names or [None] * len(PLAYERS))
        self.controller_info = [ControllerInfo.from_file(path, meta, name)
                                for path, meta, name in zip(paths, self.controller_meta, names)]  # fmt: skip
        self.wet = np.full(n, 1.0 if weather == "rain" else 0.0)
        hold = np.tile(steer_holds(self.controller_meta), duels)  # (2N,) the controllers' steering holds
        pace = np.tile(paces(self.controller_meta), (duels, 1))  # (2N, 2) and their paces
        knob_rows = np.stack([k.as_array() for k in self.knobs])  # (2N, 7)
        self.lanes: LanePair | None = None
        self.vec: VecRaceEnv | None = None
        self.players: Players | None = None
        if lanes == 2:
            self.lanes = LanePair(LaneSpec(np.tile(W, (duels, 1, 1)), np.tile(b, (duels, 1)), knob_rows,
                                           invariants_array(self.bounds), self.wet, renderer, weather, device,
                                           precision, Path(weights_dir), threads, max_episode_steps,
                                           hold, pace))  # fmt: skip
        else:
            self.vec = VecRaceEnv(n, workers=workers, renderer=renderer, weather=weather,
                                  max_episode_steps=max_episode_steps)  # fmt: skip
            try:
                self.players = Players(np.tile(W, (duels, 1, 1)), np.tile(b, (duels, 1)), knob_rows,
                                       invariants_array(self.bounds), device=device, precision=precision,
                                       weights_dir=weights_dir, threads=threads, steer_hold=hold,
                                       pace=pace)  # fmt: skip
            except BaseException:
                self.vec.close()
                raise
        self._decisions = self.lanes if self.lanes is not None else self.players  # risk, regime_weights
        self.autopilots = [Autopilot(STYLES[PLAYERS[p % 2]]) for p in range(n)] if driver == "autopilot" else []
        self.telemetry = [PlayerTelemetry() for _ in range(n)]
        self.seeds: list[int] = []
        self.running = False
        self._slip = np.zeros(n)
        self.last_actions = np.zeros((n, 3))  # what each car was given on the last step
        self.log: RaceLog | None = None  # the record of a single duel since its reset (engine.race.race_log)
        self._provenance: dict[str, Any] | None = None

    # -- control -------------------------------------------------------------------------
    def reset(self, seed: int | Sequence[int] | None = None) -> list[int]:
        """Every car to the start. seed: one per duel (an int for one duel); None draws
        random seeds. Returns the seeds raced."""
        if seed is None:
            seeds = [secrets.randbelow(SEED_RANGE) for _ in range(self.duels)]
        else:
            seeds = [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]
        if len(seeds) != self.duels:
            raise ValueError(f"reset: {len(seeds)} seeds for {self.duels} duels")
        self.seeds = seeds
        if self.lanes is not None:
            info = self.lanes.reset([s for s in seeds for _ in PLAYERS])
        else:
            _, info = self.vec.reset([s for s in seeds for _ in PLAYERS])
            self.players.reset()
        self._slip = info["slip"].copy()
        for p in range(2 * self.duels):
            self.telemetry[p] = PlayerTelemetry(speed=float(info["speed"][p]), track_tiles=int(info["track_tiles"][p]))
        self.running = False
        if self.duels == 1:
            self.log = RaceLog(self._record_header(seeds[0]), [dict(k.values) for k in self.knobs])
        return seeds

    def _record_header(self, seed: int) -> dict[str, Any]:
        if self._provenance is None:  # the files and versions do not change while the duel lives
            self._provenance = provenance(self.weights_dir, self.controller_paths)
        header = {"seed": int(seed), "weather": self.weather, "renderer": self.renderer, "driver": self.driver,
                  "max_episode_steps": self.max_episode_steps, "device": self.device,
                  "precision": self.precision, **self._provenance}  # fmt: skip
        if self.human is not None:  # only then: a duel of two controllers keeps the header (and checks) it had
            header["human"] = PLAYERS[self.human]
        return header

    @property
    def device(self) -> str:
        """Where the world model runs: cpu or cuda."""
        return self.lanes.device if self.lanes is not None else self.players.world.device

    @property
    def precision(self) -> str:
        """The world model's precision: fp32, int8 or fp16."""
        return self.lanes.precision if self.lanes is not None else self.players.world.precision

    def start(self) -> None:
        self.running = not self.finished

    def pause(self) -> None:
        self.running = False

    def set_knobs(self, player: int | str, changes: dict[str, Any], where: str = "knob update") -> None:
        """Change a player's knobs (index, or "A"/"B" in a single duel) from the next step on.
        All changes apply, or none and KnobError names the bad one."""
        p = PLAYERS.index(player) if isinstance(player, str) else int(player)
        self.knobs[p].update(changes, where=where)
        if self.lanes is not None:
            self.lanes.set_knobs(p, self.knobs[p].as_array())
        else:
            self.players.knobs[p] = self.knobs[p].as_array()
        if self.log is not None:
            self.log.knobs_changed(max(t.step for t in self.telemetry), p, self.knobs[p].values)

    # -- the race ------------------------------------------------------------------------
    def step(self, human_action: Sequence[float] | None = None) -> list[PlayerTelemetry]:
        """One step for every car still racing; returns the telemetry (one per player).
        human_action: (steer, gas, brake) of the car a person drives (`human`), clipped to the action space."""
        if self.human is not None and human_action is None:
            raise ValueError(f"player {PLAYERS[self.human]} is driven by a person: step needs their action")
        if not self.seeds:
            raise RuntimeError("Duel.step before Duel.reset")
        if self.finished:
            self.running = False
            return self.telemetry
        if self.lanes is not None:  # both lanes decide and step at once
            res = self.lanes.step(self._slip)
            actions = self.lanes.actions
        else:
            if self.driver == "autopilot":
                envs = self.vec.local_envs()
                actions = np.stack([pilot.act(env.unwrapped) for pilot, env in zip(self.autopilots, envs)])
            else:
                actions = self.players.act(self.vec.obs, self._slip, self.wet)
            if self.human is not None:
                actions = actions.copy()  # players.act hands back its own buffer
                actions[self.human] = human_controls(human_action)
            res = self.vec.step(actions)
        self.last_actions = actions
        if self.log is not None:
            self.log.add_step(actions)
        self._record(actions, res, range(2 * self.duels))
        if self.finished:
            self.running = False
        if listening():  # the per-step loop: the details only for a listener
            point("duel:step", step=max(t.step for t in self.telemetry))
        return self.telemetry

    def _record(self, actions: np.ndarray, res: StepResult, players: range) -> None:
        """Telemetry of `players` after a step; res holds their rows, in order."""
        self._slip[players.start : players.stop] = res.info["slip"]
        for k, p in enumerate(players):
            t = self.telemetry[p]
            if t.done:
                continue
            t.step += 1
            t.reward += float(res.reward[k])
            t.speed = float(res.info["speed"][k])
            t.distance += t.speed / FPS
            t.count_steer(float(actions[p][0]))
            t.off_track_steps += int(res.info["off_track"][k])
            t.tiles_visited = int(res.info["tiles_visited"][k])
            t.lap_finished = bool(res.info["lap_finished"][k])
            t.action = actions[p].tolist()
            t.risk = float(self._decisions.risk[p])
            t.regimes = dict(zip(REGIMES, self._decisions.regime_weights[p].tolist()))
            t.done = bool(res.done[k])

    def run(self, steps: int | None = None, on_step: Callable[[int], None] | None = None) -> int:
        """Race every car to the end, or `steps` steps (tournaments, benchmarks); on_step(k)
        after the k-th step of all cars. Returns the steps raced.

        With two or more environment workers the steps are pipelined: the workers are split
        into two halves, and while one half's environments step, the model decides for the
        other half's cars (each worker writes only its own rows of the observations). Every
        car sees exactly what it would in `step()`: players are independent rows of the
        batched model, so the race is the same, bit for bit, only faster."""
        if not self.seeds:
            raise RuntimeError("Duel.run before Duel.reset")
        limit = steps if steps is not None else float("inf")
        done_steps = 0
        if self.lanes is not None or self.vec.workers < 2 or self.driver != "model":
            while not self.finished and done_steps < limit:
                self.step()
                done_steps += 1
                if on_step is not None:
                    on_step(done_steps)
            return done_steps
        self.log = None  # the two halves step apart: no per-step record of a pipelined run
        actions = np.zeros((2 * self.duels, 3))
        count = [0, 0]  # steps each half has raced

        def decide(half: int, idx: np.ndarray) -> np.ndarray | None:
            if count[half] >= limit or all(self.telemetry[p].done for p in idx):
                return None
            actions[idx] = self.players.act(self.vec.obs[idx], self._slip[idx], self.wet[idx], idx)[idx]
            return actions

        def record(half: int, idx: np.ndarray, res: StepResult) -> None:
            nonlocal done_steps
            self._record(actions, res, range(idx[0], idx[-1] + 1))
            count[half] += 1
            if max(count) > done_steps:
                done_steps = max(count)
                point("duel:step", step=done_steps)
                if on_step is not None:
                    on_step(done_steps)

        self.vec.run_pipelined(decide, record)
        self.running = False
        return done_steps

    @property
    def frames(self) -> np.ndarray:
        """(2N, 96, 96, 3) uint8: what each car sees now (shared memory: copy to keep)."""
        return self.lanes.obs if self.lanes is not None else self.vec.obs

    @property
    def finished(self) -> bool:
        return all(t.done for t in self.telemetry)

    def leader(self, duel: int = 0) -> str | None:
        """"A" or "B", whoever is ahead now in duel `duel` (reward, then less off-track
        time), or None when level."""
        a, b = (self.telemetry[2 * duel + k] for k in range(2))
        key_a, key_b = (round(a.reward, 6), -a.off_track_steps), (round(b.reward, 6), -b.off_track_steps)
        return None if key_a == key_b else PLAYERS[0] if key_a > key_b else PLAYERS[1]

    def winner(self, duel: int = 0) -> str | None:
        """The winner of duel `duel` once both its cars have ended (None: a draw, or racing)."""
        if not all(self.telemetry[2 * duel + k].done for k in range(2)):
            return None
        return self.leader(duel)

    def result(self, duel: int = 0) -> dict[str, Any]:
        """Summary of duel `duel`: seed, winner (or "draw", or the leader so far), players."""
        done = all(self.telemetry[2 * duel + k].done for k in range(2))
        return {
            "seed": self.seeds[duel] if self.seeds else None,
            "finished": done,
            "winner": (self.winner(duel) or "draw") if done else None,
            "leader": self.leader(duel),
            "players": {
                name: {**self.telemetry[2 * duel + k].as_dict(), "knobs": self.knobs[2 * duel + k].nested()}
                for k, name in enumerate(PLAYERS)
            },
        }

    def close(self) -> None:
        if self.lanes is not None:
            self.lanes.close()
        else:
            self.vec.close()
        release_free_memory()  # engine.memory: what closed duels freed goes back to the system, not into RSS

    def __enter__(self) -> Duel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def human_controls(action: Sequence[float]) -> np.ndarray:
    """A person's (steer, gas, brake) as the car takes it: float64, steer in [-1, 1], gas and brake in [0, 1]."""
    a = np.asarray(action, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"a person's action must be finite, got {a.tolist()}")
    return np.clip(a, (-1.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def _copy(knobs: Knobs) -> Knobs:
    k = Knobs(knobs.bounds)
    k.values = dict(knobs.values)
    return k
