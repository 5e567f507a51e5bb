"""Train a controller (World Models' C) with CMA-ES: every candidate's rollouts at once.

    vmc-duel train controller --config configs/controller_A.yaml [--generations 200] [--force]

Each generation, CMA-ES proposes `population` candidates of the 3 x (z + hidden) + 3
controller parameters; every candidate drives the same `rollouts` tracks. All
population x rollouts cars step together: the environments across worker processes,
every car's world-model step in one batched onnxruntime call, the controllers and
strategy invariants (minimum throttle; knobs at their defaults) in numba, exactly as in
a duel. A rollout ends early once the car has been off the road `off_track_patience`
steps in a row (the GA anchor did this: a lost car only costs time).

Fitness is the episode reward, minus `off_track_penalty` per second off the road and `weave_penalty` per steering
reversal a second (the weave tournaments report); a candidate's is the mean over its rollouts, or with
`tail_weight` that mean blended with the mean of its worst quarter (`candidate_fitness`). With
`hard_tracks` (a pool from `vmc-duel train hard-tracks`), `hard_fraction` of each candidate's
rollouts drive tracks the controller is known to do badly on, so that every generation's
ranking sees some of the crashes that decide a controller's mean.
Every `eval_every` generations the distribution's mean is driven on `eval_tracks`
evaluation tracks; the best of those evaluations is kept as best.npz. Every
`snapshot_every` generations the mean is also saved as gen_NNNN.npz (W, b and metadata, read
with allow_pickle=False, unlike es.pkl): the checkpoints a league of training stages races
(`vmc-duel league run/gen_*.npz`). The run directory holds the CMA state after every generation
(resume by running the command again), a CSV log, config.json and fitness.png.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import pickle
import platform
import shutil
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import cma
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from engine.env.vector_env import VecRaceEnv  # noqa: E402
from engine.files import atomic_path, save_figure, write_atomic  # noqa: E402
from engine.policy.controller import PACE_KEYS, PACE_MAX, STEER_HOLD_MAX, load_controller  # noqa: E402
from engine.policy.knobs import Knobs, load_bounds  # noqa: E402
from engine.policy.players import Players, invariants_array  # noqa: E402
from engine.progress import listening, point  # noqa: E402
from engine.race.duel import FPS, STEER_DEAD_BAND  # noqa: E402
from engine.world_model.manifest import file_sha256, load_manifest  # noqa: E402
from train.config import TrainControllerConfig, from_args, from_yaml  # noqa: E402
from train.corner_model import CornerModel, fit_corner_model  # noqa: E402
from train.hard_tracks import load_hard_tracks  # noqa: E402
from train.speed_model import fit_speed_model  # noqa: E402
from train.steer_model import SteerModel, fit_steer_model  # noqa: E402

EVAL_SEED_START = 900_000  # evaluation tracks: never trained on, below the tournament's held-out seeds
RAIN_EVAL_SEED_START = 900_100  # evaluation tracks of a wet-track set, driven in rain
LOG_FIELDS = ["generation", "fitness_mean", "fitness_max", "fitness_min", "reward_mean", "off_track_s_mean",
              "steps_mean", "sigma", "eval_mean", "eval_std", "seconds", "weave_mean"]  # fmt: skip
# a resume must agree on these
RESUME_KEYS = ("name", "population", "rollouts", "sigma0", "init", "seed", "subspace", "steer_hold", "pace_bend",
               "pace_straight")  # fmt: skip
# every weight, 9 gains around a controller, those + 2 speed holds, those 9 + a steering blend, or the
# steering's 3 gains + a gas and a brake rebuilt from the speed and the bend ahead (Search)
SUBSPACES = ("full", "gains", "speed", "damping", "throttle")
V_GAS_REF = 50.0  # m/s: the speed subspace's gas term is k_gas (V_GAS_REF - speed); the gas bias moves the target
V_BRAKE_REF = 60.0  # m/s: its brake term is k_brake (speed - V_BRAKE_REF); the brake bias moves the threshold
V_THROTTLE_REF = 48.0  # m/s: the throttle subspace's reference speed (its start holds about this, as A does)
TAIL_SHARE = 0.25  # with tail_weight: the share of a candidate's rollouts, its worst, that the tail's mean takes
C_THROTTLE_REF = 0.15  # the throttle subspace's reference bend ahead (|mean steering|; A's laps average 0.14)
# The throttle subspace's start: A's steering; gas g0 + gv (V - v) + gc (C - c) at g0 -1.6 (just under the
# invariant's 0.05 floor, tanh(-1.6) = -0.92), gv 0.3 (full gas below about 40 m/s), no bend term; brake off
# (-3.0). On the 32 evaluation tracks (fast, fp32) this rebuilt gas drove the shipped A's steering to 905.4 +-
# 25.8 (the shipped A: 904.5 +- 27.9), with every number away from saturation, where CMA-ES can see its steps.
THROTTLE_X0 = (1.0, 1.0, 0.0, -1.6, 0.3, 0.0, -3.0, 0.0, 0.0)
# Per-coordinate scale of the first step (cma's CMA_stds, times sigma0): the bend ahead spans about 0.5, the
# speed about 30 m/s, so a step of 0.1 x these moves each term's pre-activation by a few tenths.
THROTTLE_STDS = (1.0, 1.0, 1.0, 1.0, 0.3, 10.0, 3.0, 0.3, 10.0)


def to_wb(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat parameters (3 * dims + 3,) -> W (3, dims), b (3,)."""
    return x[: 3 * dims].reshape(3, dims), x[3 * dims :]


class Search:
    """What CMA-ES searches and how a point of it becomes a controller.

    full: x (3 * dims + 3,) is W and b themselves (World Models).
    gains: x (9,) = [z gains (3), h gains (3), bias shifts (3)] on a base controller W0 (3, dims),
    b0 (3,): W[i, :z] = W0[i, :z] * x[i], W[i, z:] = W0[i, z:] * x[3 + i], b = b0 + x[6:]. The base
    (1, 1, 1, 1, 1, 1, 0, 0, 0) is the base controller itself.
    speed: x (11,) = the 9 gains, then k_gas, k_brake: with a linear speed model v = w . [z, h] + w0
    (train/speed_model.py), gas += k_gas (V_GAS_REF - v) and brake += k_brake (v - V_BRAKE_REF), both
    linear in [z, h], so the result is again a W, b. k = 0 is the gains subspace.
    damping: x (10,) = the 9 gains, then k_blend: with a linear model of the last step's steering
    pre-activation from h (train/steer_model.py), the steering becomes (1 - k) s + k s_prev, a
    low-pass (k > 0) or a lead (k < 0), again a W, b. k = 0 is the gains subspace.
    throttle: x (9,) = the steering's z gain, h gain and bias shift, then gas g0, gv, gc and brake r0,
    rv, rc, with linear models of the speed v (train/speed_model.py) and of the bend ahead c
    (train/corner_model.py): gas = g0 + gv (V_THROTTLE_REF - v) + gc (C_THROTTLE_REF - c) and brake =
    r0 + rv (v - V_THROTTLE_REF) + rc (c - C_THROTTLE_REF), pre-activations that replace the base's
    gas and brake rows (a saturated switch in A) and are again a W, b. It starts at THROTTLE_X0."""

    def __init__(self, kind: str, z: int, W0: np.ndarray, b0: np.ndarray,
                 speed: tuple[np.ndarray, float] | None = None, steer: SteerModel | None = None,
                 corner: CornerModel | None = None):  # fmt: skip
        if kind not in SUBSPACES:
            raise ValueError(f"subspace {kind!r} is not one of {', '.join(SUBSPACES)}")
        if (kind in ("speed", "throttle")) != (speed is not None):
            raise ValueError("a speed model (w, w0) goes with the speed and throttle subspaces, and only with them")
        if (kind == "damping") != (steer is not None):
            raise ValueError("a steering model goes with the damping subspace, and only with it")
        if (kind == "throttle") != (corner is not None):
            raise ValueError("a corner model goes with the throttle subspace, and only with it")
        self.kind, self.z, self.W0, self.b0, self.speed, self.steer = kind, z, W0, b0, speed, steer
        self.corner = corner
        self.dims = W0.shape[1]

    @property
    def x0(self) -> np.ndarray:
        if self.kind == "full":
            return np.concatenate([self.W0.ravel(), self.b0])
        if self.kind == "throttle":
            return np.array(THROTTLE_X0)
        return np.array([1.0] * 6 + [0.0] * {"gains": 3, "speed": 5, "damping": 4}[self.kind])

    @property
    def stds(self) -> np.ndarray:
        """(len(x0),) the scale of CMA-ES's first steps per coordinate (times sigma0)."""
        return np.array(THROTTLE_STDS) if self.kind == "throttle" else np.ones(len(self.x0))

    def to_wb(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A point x -> W (3, dims), b (3,)."""
        if self.kind == "full":
            return to_wb(np.asarray(x), self.dims)
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "throttle":
            return self._throttle_wb(x)
        W = self.W0.copy()
        W[:, : self.z] *= x[0:3, None]
        W[:, self.z :] *= x[3:6, None]
        b = self.b0 + x[6:9]
        if self.kind == "speed":
            w, w0 = self.speed
            W[1] -= x[9] * w  # gas: + k_gas (V_GAS_REF - v)
            b[1] += x[9] * (V_GAS_REF - w0)
            W[2] += x[10] * w  # brake: + k_brake (v - V_BRAKE_REF)
            b[2] += x[10] * (w0 - V_BRAKE_REF)
        if self.kind == "damping":  # steering: (1 - k) s + k s_prev, s_prev ~ gz (pz . h + pz0) + gh (ph . h + ph0) + b
            m, k = self.steer, x[9]
            W[0] *= 1.0 - k
            W[0, self.z :] += k * (x[0] * m.pz + x[3] * m.ph)
            b[0] += k * (x[0] * m.pz0 + x[3] * m.ph0)
        return W, b

    def _throttle_wb(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (wv, v0), m = self.speed, self.corner
        W, b = self.W0.copy(), self.b0.copy()
        W[0, : self.z] *= x[0]
        W[0, self.z :] *= x[1]
        b[0] += x[2]
        g0, gv, gc, r0, rv, rc = x[3:9]
        W[1] = -gv * wv - gc * m.w  # gas: g0 + gv (V - v) + gc (C - c)
        b[1] = g0 + gv * (V_THROTTLE_REF - v0) + gc * (C_THROTTLE_REF - m.w0)
        W[2] = rv * wv + rc * m.w  # brake: r0 + rv (v - V) + rc (c - C)
        b[2] = r0 + rv * (v0 - V_THROTTLE_REF) + rc * (m.w0 - C_THROTTLE_REF)
        return W, b


def candidate_fitness(fitness: np.ndarray, tail_weight: float = 0.0) -> np.ndarray:
    """fitness (population, rollouts) float64, each rollout's -> (population,): each candidate's mean, blended
    with weight `tail_weight` with the mean of its worst TAIL_SHARE of rollouts (at least one). A candidate faster
    on 31 tracks by a point and crashed on the 32nd by 400 gains 31 and loses 400 in its sum either way; the tail
    makes the crash count where CMA-ES ranks noise, since only some candidates meet such a track."""
    mean = fitness.mean(axis=1)
    if tail_weight == 0.0:
        return mean
    k = max(1, int(round(TAIL_SHARE * fitness.shape[1])))
    tail = np.sort(fitness, axis=1)[:, :k].mean(axis=1)  # (population,) the worst k rollouts' mean
    return (1.0 - tail_weight) * mean + tail_weight * tail


def track_seed(cfg: TrainControllerConfig, pool: list[int], n_hard: int, g: int, r: int) -> int:
    """The track of rollout r in generation g: the last n_hard rollouts cycle through the pool of hard
    tracks (away from the first ones, which rain takes), the others are fresh tracks from cfg.track_seed."""
    first_hard = cfg.rollouts - n_hard
    if r >= first_hard:
        return pool[(g * n_hard + r - first_hard) % len(pool)]
    return cfg.track_seed + g * cfg.rollouts + r


def rollout(players: Players, vec: VecRaceEnv, seeds: list[int], indices: np.ndarray, wet: np.ndarray,
            cfg: TrainControllerConfig) -> dict[str, np.ndarray]:  # fmt: skip
    """Drive environments `indices` on `seeds` to the end (or the early cut), every car at once.

    With two or more env workers, pipelined (VecRaceEnv.run_pipelined): one half of the cars
    steps while the model decides for the other; the same numbers as in lockstep.
    Returns per environment (N,) arrays: reward, off_track_seconds, steps, weave (steering reversals a second,
    counted as `engine.race.duel.PlayerTelemetry` does); the other environments stay ended and score 0."""
    n = vec.num_envs
    players.reset()
    obs, info = vec.reset(seeds, indices=indices)
    active = np.zeros(n, dtype=bool)
    active[indices] = True
    reward, off_steps, streak, steps = np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    slip = info["slip"].copy()
    reversals, last_sign = np.zeros(n, np.int64), np.zeros(n)  # the weave: steering sign changes

    def decide(half: int, envs: np.ndarray) -> np.ndarray | None:
        idx = envs[active[envs]]
        if not len(idx):
            return None
        players.act(obs[idx], slip[idx], wet[idx], idx)
        return players.actions

    def record(half: int, envs: np.ndarray, res) -> None:
        live = active[envs]
        steer = players.actions[envs, 0]  # what these cars just drove with (the other half's rows are its own)
        beyond = live & (np.abs(steer) > STEER_DEAD_BAND)
        reversals[envs] += beyond & (last_sign[envs] == -np.sign(steer))
        last_sign[envs] = np.where(beyond, np.sign(steer), last_sign[envs])
        reward[envs] += res.reward
        off = res.info["off_track"] & live
        streak[envs] = np.where(off, streak[envs] + 1, 0)
        off_steps[envs] += off
        steps[envs] += live
        cut = live & ~res.done & (streak[envs] >= cfg.off_track_patience)
        if not cfg.off_track_patience:  # 0: never cut
            cut[:] = False
        if cut.any():
            vec.end(envs[cut])
        active[envs] = live & ~res.done & ~cut
        slip[envs] = res.info["slip"]
        if listening():  # every step of every car: the details only for a listener
            point("cma:step", step=int(steps.max()))

    if vec.workers >= 2:
        vec.run_pipelined(decide, record)
    else:
        everyone = np.arange(n)
        while decide(0, everyone) is not None:
            record(0, everyone, vec.step(players.actions))
    return {"reward": reward, "off_track_seconds": off_steps / FPS, "steps": steps,
            "weave": reversals * FPS / np.maximum(steps, 1)}


def make_players(cfg: TrainControllerConfig, n: int, dims: int) -> Players:
    """n cars' decisions at the default knobs (the controller as trained), fp32."""
    bounds = load_bounds()
    knobs = np.tile(Knobs(bounds).as_array(), (n, 1))
    return Players(np.zeros((n, 3, dims)), np.zeros((n, 3)), knobs, invariants_array(bounds), device="cpu",
                   precision="fp32", threads=cfg.threads, steer_hold=np.full(n, cfg.steer_hold),
                   pace=np.tile([cfg.pace_bend, cfg.pace_straight], (n, 1)))  # fmt: skip


class LocalFleet:
    """Every car of a generation on this machine: one batched Players, one VecRaceEnv (pipelined
    over 2+ env workers)."""

    def __init__(self, cfg: TrainControllerConfig, weathers: list[str], dims: int):
        self.cfg, self.wet = cfg, np.array([w == "rain" for w in weathers], dtype=np.float64)
        self.players = make_players(cfg, len(weathers), dims)
        self.vec = VecRaceEnv(len(weathers), workers=cfg.workers, renderer=cfg.renderer, weather=weathers,
                              max_episode_steps=cfg.max_steps)  # fmt: skip

    def rollout(self, W: np.ndarray, b: np.ndarray, seeds: list[int], indices: np.ndarray) -> dict[str, np.ndarray]:
        """Cars `indices` drive `seeds` with controllers W (n, 3, dims), b (n, 3); see `rollout`."""
        self.players.set_controllers(W, b)
        return rollout(self.players, self.vec, seeds, np.asarray(indices), self.wet, self.cfg)

    def close(self) -> None:
        self.vec.close()


class RayFleet:
    """The cars of a generation shared over Ray actors, one per CPU of the cluster, each a
    LocalFleet of its slice (in-process environments, one thread). Cars are independent rows
    of the batched model, so the fitnesses are the local ones."""

    def __init__(self, cfg: TrainControllerConfig, weathers: list[str], dims: int, console: Console):
        from engine.race.cluster import MAX_RETRIES, connect, status_line

        self.ray = connect(cfg.address or None)
        console.print(status_line(self.ray))
        n = len(weathers)
        shards = max(1, min(int(self.ray.cluster_resources().get("CPU", 1)), n))
        cuts = np.linspace(0, n, shards + 1).round().astype(int)
        actor = self.ray.remote(num_cpus=1, max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)(LocalFleet)
        local = replace(cfg, workers=0, threads=1)
        self.shards = [(int(lo), int(hi), actor.remote(local, weathers[lo:hi], dims)) for lo, hi in zip(cuts, cuts[1:])]

    def rollout(self, W: np.ndarray, b: np.ndarray, seeds: list[int], indices: np.ndarray) -> dict[str, np.ndarray]:
        seed_of = dict(zip((int(i) for i in indices), seeds))
        refs = []
        for lo, hi, shard in self.shards:
            mine = [i for i in range(lo, hi) if i in seed_of]
            refs.append(shard.rollout.remote(W[lo:hi], b[lo:hi], [seed_of[i] for i in mine],
                                             np.array(mine, dtype=np.int64) - lo))  # fmt: skip
        parts = self.ray.get(refs)
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def close(self) -> None:
        for _, _, shard in self.shards:
            self.ray.kill(shard)


def plot(rows: list[dict], path: Path, name: str) -> None:
    g = [r["generation"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.fill_between(g, [r["fitness_min"] for r in rows], [r["fitness_max"] for r in rows], alpha=0.2,
                    label="population min-max")  # fmt: skip
    ax.plot(g, [r["fitness_mean"] for r in rows], label="population mean fitness")
    ev = [r for r in rows if r["eval_mean"] != ""]
    if ev:
        ax.errorbar([r["generation"] for r in ev], [float(r["eval_mean"]) for r in ev],
                    yerr=[float(r["eval_std"]) for r in ev], fmt="o", color="C3",
                    label="mean controller, evaluation tracks (reward +- std)")  # fmt: skip
    ax.axhline(900, color="grey", ls="--", lw=0.8, label="900: CarRacing solved")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness / reward")
    ax.set_title(f"controller {name}: CMA-ES")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def save_controller(path: Path, W: np.ndarray, b: np.ndarray, meta: dict) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, W=W, b=b, **{k: np.asarray(v) for k, v in meta.items()})


def hold_meta(cfg: TrainControllerConfig) -> dict:
    """A run's controllers' steering hold and pace, as their files carry them (nothing when they have none)."""
    return {k: getattr(cfg, k) for k in ("steer_hold", *PACE_KEYS) if getattr(cfg, k)}


def gains_meta(search: Search, x: np.ndarray) -> dict:
    """A gains-subspace controller's metadata: the point it is (readable next to W and b)."""
    if search.kind == "full":
        return {}
    return {"subspace": search.kind, "gains": " ".join(f"{v:.6f}" for v in np.asarray(x))}


def log_text(rows: list[dict]) -> str:
    """log.csv's text: the header and one row per generation."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def save_generation(run: Path, es, state: dict, rows: list[dict]) -> None:
    """The checkpoint after a generation, every file atomic (engine.files: temp file, fsync, rename):
    es.next.pkl, log.csv (whole), state.json (the commit point: its generation is the run's), then es.pkl.
    A kill at any point leaves a run that resumes at state.json's generation (`load_generation`), losing at
    most the generation in progress; WriteError names a file that cannot be written, the old one intact."""
    with atomic_path(run / "es.next.pkl") as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(es, f)
    write_atomic(run / "log.csv", log_text(rows))
    write_atomic(run / "state.json", json.dumps(state, indent=1) + "\n")
    point("write:ready", path=str(run / "es.pkl"))  # committed; es.next.pkl not yet renamed
    os.replace(run / "es.next.pkl", run / "es.pkl")


def load_generation(run: Path, settle: bool = True) -> tuple[object, dict, list[dict]]:
    """(es, state, log rows) as of state.json's generation, whatever point a kill interrupted
    `save_generation` at: es.next.pkl when it holds that generation (killed just before its rename),
    else es.pkl; log rows past that generation dropped. With `settle` (a resume), the files are put
    in order: es.next.pkl renamed to es.pkl or, holding an uncommitted generation, removed; without
    it nothing on disk changes (a reader while the trainer may still be writing)."""
    state = json.loads((run / "state.json").read_text())
    es, source = None, None
    candidates = [run / "es.next.pkl", run / "es.pkl"]
    for path in candidates:
        if path.exists():
            with open(path, "rb") as f:  # our own checkpoint, written by save_generation
                candidate = pickle.load(f)
            if candidate.countiter == state["generation"]:
                es, source = candidate, path
                break
    if es is None:
        raise ValueError(f"{run}: no CMA state for generation {state['generation']} (es.pkl of generation "
                         "another); --force starts over")  # fmt: skip
    if settle and source.name == "es.next.pkl":  # killed between the commit point and the rename: finish it
        os.replace(source, run / "es.pkl")
    elif settle:  # an es.next.pkl left over is of a generation that was never committed
        (run / "es.next.pkl").unlink(missing_ok=True)
    rows = []
    for r in csv.DictReader((run / "log.csv").open()):
        try:
            row = {k: float(v) if v not in ("", None) else "" for k, v in r.items()}
            row["generation"] = int(row["generation"])
        except (TypeError, ValueError):  # a torn last row
            break
        if row["generation"] <= state["generation"]:
            rows.append(row)
    return es, state, rows


def train_controller(cfg: TrainControllerConfig, force: bool = False) -> Path:
    """Run (or resume) CMA-ES for `cfg`; returns the run directory."""
    for key in ("rain_fraction", "hard_fraction"):
        if not 0 <= getattr(cfg, key) <= 1:
            raise ValueError(f"{key} must be in [0, 1], got {getattr(cfg, key)}")
    if cfg.hard_fraction and not cfg.hard_tracks:
        raise ValueError("hard_fraction needs hard_tracks (a pool file from `vmc-duel train hard-tracks`)")
    if cfg.subspace not in SUBSPACES:
        raise ValueError(f"subspace {cfg.subspace!r} is not one of {', '.join(SUBSPACES)}")
    if cfg.subspace != "full" and not cfg.init:
        raise ValueError(f"subspace {cfg.subspace} searches around a controller: give it --init")
    console = Console()
    run = cfg.out / cfg.name
    if force and run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    sizes = load_manifest()["sizes"]
    dims = sizes["z"] + sizes["hidden"]
    state_path, log_path, base_path = run / "state.json", run / "log.csv", run / "base.npz"

    # -- the search: resumed, or started from zeros or `init` -------------------------------
    if state_path.exists():  # the commit point of save_generation
        saved = json.loads((run / "config.json").read_text())
        defaults = {f.name: f.default for f in fields(TrainControllerConfig)}  # runs from before a key existed
        clash = [k for k in RESUME_KEYS if str(saved.get(k, defaults[k])) != str(getattr(cfg, k))]
        if clash:
            raise ValueError(f"{run}: resuming a run started with other {', '.join(clash)}; --force starts over")
        es, state, rows = load_generation(run)
        if state["generation"] >= cfg.generations:
            raise ValueError(f"{run} already has {state['generation']} generations: raise --generations to continue")
        console.print(f"resuming {run} after generation {state['generation']}")
        if cfg.subspace == "full":
            search = Search("full", sizes["z"], np.zeros((3, dims)), np.zeros(3))
        else:  # the base as it was when the run started (the init file may have been replaced since)
            W0, b0, _ = load_controller(base_path, sizes["z"], sizes["hidden"])
            speed, steer, corner = None, None, None
            with np.load(base_path, allow_pickle=False) as f:
                if cfg.subspace in ("speed", "throttle"):
                    speed = (f["speed_w"].astype(np.float64), float(f["speed_w0"]))
                if cfg.subspace == "damping":
                    steer = SteerModel(f["steer_pz"].astype(np.float64), float(f["steer_pz0"]),
                                       f["steer_ph"].astype(np.float64), float(f["steer_ph0"]), float(f["steer_r2"]))
                if cfg.subspace == "throttle":
                    corner = CornerModel(f["corner_w"].astype(np.float64), float(f["corner_w0"]),
                                         float(f["corner_r2"]))  # fmt: skip
            search = Search(cfg.subspace, sizes["z"], W0, b0, speed, steer, corner)
    else:
        W0, b0 = np.zeros((3, dims)), np.zeros(3)
        if cfg.init:
            W0, b0, _ = load_controller(Path(cfg.init), sizes["z"], sizes["hidden"])
        speed, model_meta = None, {}
        if cfg.subspace in ("speed", "throttle"):  # the init controller's speed model, kept in base.npz for resumes
            w, w0, r2 = fit_speed_model(Path(cfg.init), cfg.speed_tracks, renderer=cfg.renderer,
                                        max_steps=cfg.max_steps)  # fmt: skip
            console.print(f"speed model of {cfg.init}: R^2 {r2:.3f} over {cfg.speed_tracks} tracks")
            speed, model_meta = (w, w0), {"speed_w": w, "speed_w0": w0, "speed_r2": r2}
        steer = None
        if cfg.subspace == "damping":  # the init controller's steering model, kept in base.npz for resumes
            steer = fit_steer_model(Path(cfg.init), cfg.steer_tracks, renderer=cfg.renderer, max_steps=cfg.max_steps)
            console.print(f"steering model of {cfg.init}: R^2 {steer.r2:.3f} over {cfg.steer_tracks} tracks")
            model_meta = {"steer_pz": steer.pz, "steer_pz0": steer.pz0, "steer_ph": steer.ph, "steer_ph0": steer.ph0,
                          "steer_r2": steer.r2}  # fmt: skip
        corner = None
        if cfg.subspace == "throttle":  # and its model of the bend ahead
            corner = fit_corner_model(Path(cfg.init), cfg.speed_tracks, renderer=cfg.renderer, max_steps=cfg.max_steps)
            console.print(f"corner model of {cfg.init}: R^2 {corner.r2:.3f} over {cfg.speed_tracks} tracks")
            model_meta.update({"corner_w": corner.w, "corner_w0": corner.w0, "corner_r2": corner.r2})
        search = Search(cfg.subspace, sizes["z"], W0, b0, speed, steer, corner)
        if cfg.subspace != "full":
            save_controller(base_path, W0, b0, {"init": cfg.init, "init_sha256": file_sha256(Path(cfg.init)),
                                                **model_meta})  # fmt: skip
        options = {"popsize": cfg.population, "seed": cfg.seed + 1, "verbose": -9}
        if cfg.subspace == "throttle":  # its coordinates have their own scales (the other runs' options as they were)
            options["CMA_stds"] = search.stds.tolist()
        es = cma.CMAEvolutionStrategy(search.x0, cfg.sigma0, options)
        state = {"generation": 0, "best_eval": None, "best_generation": None, "seconds": 0.0}
        rows = []
        # The start's sha256 too: --init is often the shipped controller, which a later ship replaces.
        start = {"init_sha256": file_sha256(Path(cfg.init))} if cfg.init else {}
        write_atomic(run / "config.json", json.dumps({**asdict(cfg), **start}, indent=1, default=str) + "\n")
        write_atomic(log_path, log_text([]))

    # -- every car of the generation at once ---------------------------------------------
    if cfg.backend not in ("local", "ray"):
        raise ValueError(f"backend {cfg.backend!r} is not one of local, ray")
    n = cfg.population * cfg.rollouts
    pool, pool_weather = load_hard_tracks(Path(cfg.hard_tracks)) if cfg.hard_tracks else ([], "clear")
    n_hard = int(round(cfg.hard_fraction * cfg.rollouts)) if pool else 0
    n_rain = int(round(cfg.rain_fraction * (cfg.rollouts - n_hard)))  # of the fresh tracks
    # Rollouts 0 .. n_rain-1 fresh tracks in rain, then fresh tracks in clear weather, then the
    # n_hard pool tracks in the weather they were screened in.
    weathers = [pool_weather if r >= cfg.rollouts - n_hard else "rain" if r < n_rain else "clear"
                for _ in range(cfg.population) for r in range(cfg.rollouts)]  # fmt: skip
    wet = np.array([w == "rain" for w in weathers], dtype=np.float64)
    # The mean drives the evaluation tracks in clear weather on cars that train in it; a run all in rain has
    # none, and is evaluated in rain on the wet-track sets' evaluation tracks (as ship --weather rain does).
    clear = np.flatnonzero(wet == 0)
    eval_idx = (clear if len(clear) else np.flatnonzero(wet == 1))[: cfg.eval_tracks]
    eval_seeds = [(EVAL_SEED_START if len(clear) else RAIN_EVAL_SEED_START) + k for k in range(len(eval_idx))]
    console.print(f"controller {cfg.name}: {cfg.population} candidates x {cfg.rollouts} tracks = {n} cars per "
                  f"generation ({n_rain} of each candidate's fresh tracks in rain, {n_hard} from a pool of {len(pool)} "
                  f"hard tracks in {pool_weather}), {len(search.x0)} parameters ({cfg.subspace}), "
                  f"{cfg.workers} env workers, renderer {cfg.renderer}")  # fmt: skip

    fleet = RayFleet(cfg, weathers, dims, console) if cfg.backend == "ray" else LocalFleet(cfg, weathers, dims)
    with contextlib.closing(fleet), Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"), console=console,
    ) as progress:  # fmt: skip
        task = progress.add_task(f"CMA-ES {cfg.name}", total=cfg.generations, completed=state["generation"], status="")
        while state["generation"] < cfg.generations:
            start = time.perf_counter()
            g = state["generation"]
            X = np.array(es.ask())  # (population, params)
            Wb = [search.to_wb(x) for x in X]
            W = np.stack([w for w, _ in Wb]).repeat(cfg.rollouts, axis=0)  # (n, 3, dims)
            b = np.stack([b for _, b in Wb]).repeat(cfg.rollouts, axis=0)  # (n, 3)
            seeds = [track_seed(cfg, pool, n_hard, g, r) for _ in range(cfg.population) for r in range(cfg.rollouts)]
            res = fleet.rollout(W, b, seeds, np.arange(n))
            fitness = (res["reward"] - cfg.off_track_penalty * res["off_track_seconds"]
                       - cfg.weave_penalty * res["weave"])
            per_candidate = candidate_fitness(fitness.reshape(cfg.population, cfg.rollouts), cfg.tail_weight)
            es.tell(list(X), (-per_candidate).tolist())  # cma minimises
            row = {"generation": g + 1, "fitness_mean": per_candidate.mean(), "fitness_max": per_candidate.max(),
                   "fitness_min": per_candidate.min(), "reward_mean": res["reward"].mean(),
                   "off_track_s_mean": res["off_track_seconds"].mean(), "steps_mean": res["steps"].mean(),
                   "weave_mean": res["weave"].mean(),
                   "sigma": es.sigma, "eval_mean": "", "eval_std": ""}  # fmt: skip

            if (g + 1) % cfg.eval_every == 0 or g + 1 == cfg.generations:
                Wm, bm = search.to_wb(es.mean)
                ev = fleet.rollout(np.broadcast_to(Wm, (n, 3, dims)), np.broadcast_to(bm, (n, 3)), eval_seeds,
                                   eval_idx)["reward"][eval_idx]  # fmt: skip
                row["eval_mean"], row["eval_std"] = ev.mean(), ev.std()
                if state["best_eval"] is None or ev.mean() > state["best_eval"]:
                    state["best_eval"], state["best_generation"] = float(ev.mean()), g + 1
                    save_controller(run / "best.npz", Wm, bm, {
                        "name": cfg.name, "generation": g + 1, "eval_mean": ev.mean(), "eval_std": ev.std(),
                        "eval_tracks": f"{eval_seeds[0]}-{eval_seeds[-1]}", "placeholder": False,
                        "method": "CMA-ES (train/controller.py)", **gains_meta(search, es.mean),
                        **hold_meta(cfg),
                    })  # fmt: skip

            if cfg.snapshot_every and (g + 1) % cfg.snapshot_every == 0:
                evaluated = {k: row[k] for k in ("eval_mean", "eval_std") if row[k] != ""}
                save_controller(run / f"gen_{g + 1:04d}.npz", *search.to_wb(es.mean), {
                    "name": cfg.name, "generation": g + 1, "placeholder": False,
                    "method": "CMA-ES (train/controller.py)", "checkpoint": "the search's mean after this generation",
                    **evaluated, **gains_meta(search, es.mean), **hold_meta(cfg),
                })  # fmt: skip

            row["seconds"] = time.perf_counter() - start
            state["generation"], state["seconds"] = g + 1, state["seconds"] + row["seconds"]
            rows.append(row)
            save_generation(run, es, state, rows)
            point("cma:generation", generation=g + 1)
            plot(rows, run / "fitness.png", cfg.name)
            ev_text = f", eval {row['eval_mean']:.1f} +- {row['eval_std']:.1f}" if row["eval_mean"] != "" else ""
            status = (f"gen {g + 1}: fitness mean {row['fitness_mean']:.1f} max {row['fitness_max']:.1f}{ev_text}, "
                      f"{row['seconds']:.0f} s")  # fmt: skip
            progress.update(task, completed=g + 1, status=status)
            console.print(status)
    console.print(f"done: {run} (best evaluation {state['best_eval']} at generation {state['best_generation']})")
    return run


STYLES = {  # what each shipped controller is trained for (configs/controller_*.yaml)
    "A": "races for reward (fitness = episode reward)",
    "B": ("careful: from run B (fitness = reward - 5 per second off the road, a quarter of its training tracks in "
          "rain), then any fine-tune its training record names"),
}


# A controller file's wet-track set (`ship --weather rain`; engine.policy.controller drives it in rain).
RAIN_KEYS = ("W_rain", "b_rain", "rain_name", "rain_generation", "rain_method", "rain_averaged_generations",
             "rain_steer_hold", "rain_pace_bend", "rain_pace_straight")


def evaluate_shipped(path: Path, cfg: dict, weather: str, weights: Path) -> dict:
    """Drive the controller file `path` in `weather` on the run's number of evaluation tracks
    (clear: from EVAL_SEED_START, as training does; rain: from RAIN_EVAL_SEED_START), fp32, the
    run's renderer and time limit: the evaluation of weights no generation evaluated (an average
    of snapshots, a wet-track set)."""
    from engine.race.tournament import run_tournament

    start = RAIN_EVAL_SEED_START if weather == "rain" else EVAL_SEED_START
    tracks = int(cfg.get("eval_tracks", 16))
    s = run_tournament(tracks=tracks, seed_start=start, renderer=cfg["renderer"], weather=weather,
                       controllers=(path, path), device="cpu", precision="fp32", workers=0, threads=1,
                       weights_dir=weights, max_steps=int(cfg.get("max_steps", 1000)))  # fmt: skip
    rewards = np.array([r["A_reward"] for r in s["results"]])
    return {"eval_mean": float(rewards.mean()), "eval_std": float(rewards.std()),
            "eval_tracks": f"{start}-{start + tracks - 1}", "eval_weather": weather}  # fmt: skip


def training_record(run: Path, meta: dict) -> dict:
    """The manifest's record of a shipped set of weights: how its run trained and where it was taken."""
    cfg = json.loads((run / "config.json").read_text())
    state = json.loads((run / "state.json").read_text())
    rows = list(csv.DictReader((run / "log.csv").open()))
    record = {
        "run": str(run), "generations_run": state["generation"], "population": cfg["population"],
        "rollouts": cfg["rollouts"], "sigma0": cfg["sigma0"], "init": cfg["init"],
        "subspace": cfg.get("subspace", "full"),
        "init_sha256": cfg.get("init_sha256", ""), "renderer": cfg["renderer"],
        "rain_fraction": cfg["rain_fraction"], "off_track_penalty": cfg["off_track_penalty"],
        "weave_penalty": cfg.get("weave_penalty", 0.0), "tail_weight": cfg.get("tail_weight", 0.0),
        "off_track_patience": cfg["off_track_patience"], "hard_tracks": cfg.get("hard_tracks", ""),
        "hard_fraction": cfg.get("hard_fraction", 0.0), "wall_seconds": state["seconds"],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({platform.processor() or platform.system()})",
        "final_fitness_mean": float(rows[-1]["fitness_mean"]), "final_fitness_max": float(rows[-1]["fitness_max"]),
        "shipped_generation": int(meta["generation"]),
    }  # fmt: skip
    if "averaged_generations" in meta:
        record["averaged_generations"] = meta["averaged_generations"]
    if meta.get("steer_hold"):
        record["steer_hold"] = float(meta["steer_hold"])
    for key in PACE_KEYS:
        if meta.get(key):
            record[key] = float(meta[key])
    if "eval_mean" in meta:  # the run's own evaluation (clear evaluation tracks) of what is shipped
        tracks = f"{EVAL_SEED_START}-{EVAL_SEED_START + cfg['eval_tracks'] - 1}"
        record.update(eval_mean=float(meta["eval_mean"]), eval_std=float(meta["eval_std"]),
                      eval_tracks=str(meta.get("eval_tracks", tracks)),
                      eval_weather=str(meta.get("eval_weather", "clear")))  # fmt: skip
    return record


def load_snapshots(run: Path, generations: list[int] | None) -> tuple[np.ndarray, np.ndarray, dict]:
    """W (3, dims), b (3,), metadata of run/best.npz (no generations), of the snapshot gen_NNNN.npz,
    or the average of several snapshots' W and b (the search's mean averaged over those
    generations: on noisy fitness it steadies the mean's walk; the metadata names them)."""
    paths = [run / "best.npz"] if not generations else [run / f"gen_{g:04d}.npz" for g in generations]
    for path in paths:
        if not path.exists():
            snapshots = ", ".join(sorted(p.name for p in run.glob("gen_*.npz"))) or "none"
            what = ("no evaluated controller yet (it is written at every evaluation)" if not generations
                    else f"no snapshot of that generation (snapshots: {snapshots})")  # fmt: skip
            raise ValueError(f"{path}: {what}")
    Ws, bs, gains = [], [], []
    for path in paths:
        with np.load(path, allow_pickle=False) as f:
            Ws.append(f["W"])
            bs.append(f["b"])
            meta = {k: f[k].item() for k in f.files if f[k].ndim == 0}
            gains.append(meta.get("gains"))
    if len(paths) == 1:
        return Ws[0], bs[0], meta
    listed = ", ".join(map(str, generations))
    meta = {k: v for k, v in meta.items() if k not in ("eval_mean", "eval_std", "eval_tracks", "checkpoint", "gains")}
    if None not in gains:  # W and b are affine in the gains: the average's gains are the gains' average
        mean = np.mean([[float(v) for v in g.split()] for g in gains], axis=0)
        meta["gains"] = " ".join(f"{v:.6f}" for v in mean)
    meta.update(generation=max(generations), averaged_generations=listed,
                method=f"{meta.get('method', 'CMA-ES')}, the search's mean averaged over generations {listed}")
    return np.mean(Ws, axis=0), np.mean(bs, axis=0), meta


def ship(name: str, run: Path, weights: Path = Path("weights"), force: bool = False, weather: str = "clear",
         generations: list[int] | None = None, steer_hold: float | None = None,
         pace: tuple[float, float] | None = None) -> dict:  # fmt: skip
    """Ship a controller run's weights as weights/controller{name}.npz and record the training in
    manifest.json: run/best.npz (the best of the run's evaluations) or, with `generations`, the
    snapshot run/gen_NNNN.npz (several: their average, see `load_snapshots`).

    weather "clear" replaces the file's driving weights (W, b; a wet-track set the file has is
    kept) and copies the run's curve and log beside it. weather "rain" adds the weights as the
    file's wet-track set (W_rain, b_rain: what a duel in rain drives with), the rest of the file
    as shipped. Replacing a shipped set takes `force`.

    The set keeps its run's steering hold (`steer_hold` in its snapshots); `steer_hold` replaces it
    (0: none), and the shipped set is then evaluated as it ships. So does its pace (`pace_bend`,
    `pace_straight` in m/s, engine.policy.pace): `pace` (bend, straight) replaces it ((0, 0): none)."""
    if weather not in ("clear", "rain"):
        raise ValueError(f"weather {weather!r} is not one of clear, rain")
    target = weights / f"controller{name}.npz"
    W, b, meta = load_snapshots(run, generations)
    held = steer_hold is not None and steer_hold != meta.get("steer_hold", 0.0)  # a hold its run did not drive with
    if steer_hold is not None:
        if not 0.0 <= steer_hold <= STEER_HOLD_MAX:
            raise ValueError(f"steer hold {steer_hold} is outside [0, {STEER_HOLD_MAX}]")
        meta.pop("steer_hold", None)
        if steer_hold:
            meta["steer_hold"] = float(steer_hold)
    if pace is not None:
        if len(pace) != 2 or not all(0.0 <= v <= PACE_MAX for v in pace):
            raise ValueError(f"pace {tuple(pace)} is not two speeds (bend, straight) in [0, {PACE_MAX}] m/s")
        held = held or any(float(v) != meta.get(k, 0.0) for k, v in zip(PACE_KEYS, pace))
        for key, value in zip(PACE_KEYS, pace):
            meta.pop(key, None)
            if value:
                meta[key] = float(value)
    shipped: dict[str, np.ndarray] = {}
    if target.exists():
        with np.load(target, allow_pickle=False) as f:
            shipped = {k: f[k] for k in f.files}
    if weather == "rain":
        if not shipped:
            raise ValueError(f"{target}: no shipped controller to add a wet-track set to "
                             "(ship its clear weights first)")  # fmt: skip
        if "W_rain" in shipped and not force:
            raise ValueError(f"{target} has a wet-track set already: pass --force to replace it")
        arrays = {k: v for k, v in shipped.items() if k not in RAIN_KEYS}
        arrays.update(W_rain=W, b_rain=b, rain_name=np.asarray(meta.get("name", run.name)),
                      rain_generation=np.asarray(meta["generation"]),
                      rain_method=np.asarray(meta.get("method", "CMA-ES")))  # fmt: skip
        if "averaged_generations" in meta:
            arrays["rain_averaged_generations"] = np.asarray(meta["averaged_generations"])
        if meta.get("steer_hold"):
            arrays["rain_steer_hold"] = np.asarray(meta["steer_hold"])
        for key in PACE_KEYS:
            if meta.get(key):
                arrays[f"rain_{key}"] = np.asarray(meta[key])
    else:
        if shipped and not force:
            raise ValueError(f"{target} exists: pass --force to replace it")
        arrays = {"W": W, "b": b, **{k: np.asarray(v) for k, v in meta.items()}}
        arrays.update({k: v for k, v in shipped.items() if k in RAIN_KEYS})  # its wet-track set stays
    if weather == "rain" or "averaged_generations" in meta or held:  # weights no generation evaluated as they ship
        candidate = run / f"shipping_{weather}.npz"  # the weights alone, as their own file
        try:
            with atomic_path(candidate, suffix=".npz") as tmp:
                np.savez(tmp, W=W, b=b, **{k: np.asarray(v) for k, v in meta.items()})
            meta.update(evaluate_shipped(candidate, json.loads((run / "config.json").read_text()), weather, weights))
        finally:
            candidate.unlink(missing_ok=True)
        if weather == "clear":
            arrays.update({k: np.asarray(meta[k]) for k in ("eval_mean", "eval_std", "eval_tracks")})
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    if weather == "clear":
        shutil.copyfile(run / "fitness.png", weights / f"controller{name}_fitness.png")
        shutil.copyfile(run / "log.csv", weights / f"controller{name}_log.csv")
    manifest_path = weights / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["files"].get(target.name, {}) if weather == "rain" else {}
    entry.update({"sha256": file_sha256(target), "placeholder": False})
    if weather == "clear":
        entry.update({"method": meta.get("method", "CMA-ES"), "style": STYLES.get(name, name),
                      "training": training_record(run, meta)})  # fmt: skip
        old = manifest["files"].get(target.name, {})
        if "rain_training" in old and "W_rain" in arrays:
            entry["rain_training"] = old["rain_training"]
    else:
        entry["rain_training"] = training_record(run, meta)
    entry["shape"] = {"W": list(arrays["W"].shape), "b": list(arrays["b"].shape)}
    if "W_rain" in arrays:
        entry["shape"].update(W_rain=list(arrays["W_rain"].shape), b_rain=list(arrays["b_rain"].shape))
    manifest["files"][target.name] = entry
    write_atomic(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return entry


def main(args: argparse.Namespace) -> int:
    given = {f.name for f in fields(TrainControllerConfig) if hasattr(args, f.name)}  # typed on the command line
    for f in fields(TrainControllerConfig):
        if f.name not in given:
            setattr(args, f.name, f.default)
    cfg = from_yaml(TrainControllerConfig, args.config, args, given) if args.config else from_args(
        TrainControllerConfig, args)  # fmt: skip
    train_controller(cfg, force=args.force)
    return 0
