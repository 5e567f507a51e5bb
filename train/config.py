"""Training configs (typed dataclasses, a docstring per field) and their command lines.

Kept free of torch so that `vmc-duel` can list and parse every training command
without importing it; the field docstrings are the `--help` text.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainVAEConfig:
    """VAE training run."""

    data: Path = Path("data/rollouts")
    """episode shards from `vmc-duel train collect`"""
    out: Path = Path("data/checkpoints/vae")
    """run directory: checkpoint.pt, vae.pth, history.json, PNGs"""
    epochs: int = 5
    """passes over the training frames, in all (a resumed run continues to this)"""
    batch_size: int = 100
    """frames per step (World Models: 100)"""
    lr: float = 1e-3
    """Adam learning rate"""
    kl_tolerance: float = 0.5
    """free bits: KL is held at no less than this many nats per dimension"""
    seed: int = 0
    """shuffling and sampling seed"""
    threads: int = 2
    """torch CPU threads"""


@dataclass
class TrainMDNRNNConfig:
    """MDN-RNN training run."""

    data: Path = Path("data/rollouts")
    """episode shards from `vmc-duel train collect`"""
    vae: Path = Path("data/checkpoints/vae/vae.pth")
    """trained VAE weights whose latents the MDN-RNN models"""
    out: Path = Path("data/checkpoints/mdnrnn")
    """run directory: checkpoint.pt, mdnrnn.pth, latents.npz, history.json, PNG"""
    epochs: int = 40
    """passes over the training episodes, in all (a resumed run continues to this)"""
    batch_size: int = 16
    """sequences per step"""
    seq_len: int = 200
    """steps per training sequence (windows cut from the episodes)"""
    lr: float = 1e-3
    """Adam learning rate"""
    reward_weight: float = 1.0
    """weight of the reward head's squared error in the loss"""
    off_track_weight: float = 1.0
    """weight of the off-track head's cross-entropy in the loss"""
    grad_clip: float = 1.0
    """gradient norm clip"""
    seed: int = 0
    """sampling seed (z is resampled from mu, sigma every epoch)"""
    threads: int = 2
    """torch CPU threads"""


@dataclass
class TrainControllerConfig:
    """CMA-ES training of one linear controller on [z, h] (World Models' C)."""

    name: str = "A"
    """controller name; the run lives in out/name"""
    out: Path = Path("data/checkpoints/controllers")
    """where runs live: es.pkl (CMA state), log.csv, fitness.png, best.npz, config.json"""
    generations: int = 100
    """CMA-ES generations, in all (a resumed run continues to this)"""
    population: int = 32
    """candidates per generation (World Models: 64)"""
    rollouts: int = 4
    """tracks each candidate drives per generation, the same tracks for every candidate (World Models: 16)"""
    sigma0: float = 0.1
    """initial CMA-ES step size (World Models: 0.1)"""
    init: str = ""
    """controller .npz whose W, b start the search ("": zeros, as in World Models)"""
    subspace: str = "full"
    """what CMA-ES searches: full (every weight and bias) or gains (9 numbers on top of `init`: per action,
    a gain on its z weights, a gain on its h weights and a shift of its bias; a fine-tune that sees the
    speed-safety trade-off with far fewer rollouts) or speed (those 9 and 2 more: how hard gas holds a speed
    and brake caps it, through a linear model of speed on [z, h] fitted to `init`'s laps first) or damping
    (those 9 and 1 more: how much of the last step's steering, read from h by a linear model fitted to
    `init`'s laps first, is blended into this step's: a low-pass or a lead on the steering) or throttle (the
    steering's 3 gains, and a gas and a brake rebuilt from two linear models fitted to `init`'s laps first, the
    speed and the bend ahead: 3 numbers each)"""
    speed_tracks: int = 6
    """subspace speed and throttle: tracks `init` drives (fast renderer, beside the shipped B) to fit its speed
    model (throttle: and as many for its model of the bend ahead)"""
    steer_tracks: int = 6
    """subspace damping: tracks `init` drives (beside the shipped B) to fit the model of its last steering from h"""
    renderer: str = "fast"
    """renderer of the training rollouts (fast, exact or stock)"""
    rain_fraction: float = 0.0
    """share of each candidate's rollouts driven in rain (of its fresh ones, with hard_tracks: those are driven
    in the weather they were screened in)"""
    off_track_penalty: float = 0.0
    """fitness = reward - this x seconds with all four wheels off the road"""
    weave_penalty: float = 0.0
    """and - this x the weave: steering reversals a second (sign changes beyond |steer| 0.05, as tournaments
    report it); a smoother driver at the same lap time scores higher"""
    tail_weight: float = 0.0
    """a candidate's fitness: (1 - this) x the mean of its rollouts + this x the mean of its worst quarter (0:
    the plain mean); a crash on one track in a hundred weighs as much as the laps it makes faster"""
    steer_hold: float = 0.0
    """every candidate's steering hold (engine.policy.controller.hold_steering): a steer to the other side than
    the last, no larger than this, is held straight; fixed for the run and written into its snapshots (0: none)"""
    pace_bend: float = 0.0
    """every candidate's pace (engine.policy.pace), m/s: brake before a bend the frame shows while faster than
    this; fixed for the run and written into its snapshots (0: no braking)"""
    pace_straight: float = 0.0
    """and full gas while the frame shows road straight to its top and the car is slower than this (0: none)"""
    off_track_patience: int = 100
    """end a rollout once the car has been off the road this many steps in a row (0: never)"""
    max_steps: int = 1000
    """steps per rollout (CarRacing-v3: 1000)"""
    track_seed: int = 10_000
    """generation g drives tracks track_seed + g * rollouts + r"""
    hard_tracks: str = ""
    """pool file of tracks the controller does badly on (`vmc-duel train hard-tracks`): a share of every
    generation's rollouts drive them, cycling through the pool"""
    hard_fraction: float = 0.0
    """share of each candidate's rollouts on hard_tracks (the rest on fresh tracks from track_seed)"""
    eval_every: int = 10
    """every this many generations, drive the best candidate on the evaluation tracks"""
    snapshot_every: int = 10
    """every this many generations, save the search's mean controller as gen_NNNN.npz in the run directory, a
    checkpoint that `vmc-duel league` and `--controller-a` read (0: never)"""
    eval_tracks: int = 16
    """evaluation tracks (seeds 900000 on: never trained on, never in the held-out tournament)"""
    workers: int = 2
    """environment worker processes"""
    threads: int = 2
    """onnxruntime threads for the batched world model"""
    seed: int = 0
    """CMA-ES sampling seed"""
    backend: str = "local"
    """local (this machine) or ray (the generation's cars shared over Ray actors, one per CPU of the cluster;
    the same fitnesses)"""
    address: str = ""
    """with backend ray: the cluster to join (auto or HOST:PORT; empty: a local Ray instance)"""


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of dataclass `cls`."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, only_given: bool = False) -> None:
    """One --option per field of `cls` (int, float, str, Path), its docstring as help.
    With `only_given`, options not typed are absent from the parsed namespace (so a
    config file can fill them)."""
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        kind = {"int": int, "float": float, "str": str, "Path": Path}[str(f.type)]
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=kind, default=argparse.SUPPRESS if only_given else f.default,
            help=f"{docs.get(f.name, '')} (default {f.default})",
        )  # fmt: skip


ZERO_OK = {"seed", "rain_fraction", "hard_fraction", "off_track_penalty", "weave_penalty", "tail_weight",
           "steer_hold", "pace_bend", "pace_straight", "off_track_patience", "workers", "track_seed"}  # 0: "none"
SEED_MAX = 2**32 - 1  # engine.limits.SEED_MAX (numpy, gymnasium and cma seeds)
CHOICES = {"renderer": ("exact", "fast", "stock"), "backend": ("local", "ray")}
AT_MOST = {"rain_fraction": 1.0, "hard_fraction": 1.0, "tail_weight": 1.0, "steer_hold": 1.0, "pace_bend": 200.0,
           "pace_straight": 200.0, "seed": SEED_MAX}  # fmt: skip


def from_args(cls: type, args: argparse.Namespace):
    """Build `cls` from parsed options; refuses non-positive counts and rates, NaN and infinity, seeds out of
    0..2**32-1 (a generation's track seeds included), unknown renderers and backends, a run name that is a path,
    and directories (data, out) that are files. ValueError names the option."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    for name, v in values.items():
        option = "--" + name.replace("_", "-")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{option} must be a finite number, got {v}")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (v < 0 or v == 0 and name not in ZERO_OK):
            raise ValueError(f"{option} must be {'positive' if v == 0 else 'non-negative'}, got {v}")
        if name in AT_MOST and v > AT_MOST[name]:
            raise ValueError(f"{option} must be at most {AT_MOST[name]}, got {v}")
        if name in CHOICES and v not in CHOICES[name]:
            raise ValueError(f"{option} {v!r} is not one of {', '.join(CHOICES[name])}")
        if name in ("data", "out") and Path(v).exists() and not Path(v).is_dir():
            raise ValueError(f"{option} {v}: a file, not a directory")
    if "name" in values and (not values["name"] or Path(values["name"]).name != values["name"]
                             or values["name"] in (".", "..")):  # fmt: skip
        raise ValueError(f"--name {values['name']!r} must be a plain name (it becomes a directory under --out)")
    if {"track_seed", "generations", "rollouts"} <= set(values):
        last = values["track_seed"] + values["generations"] * values["rollouts"] - 1
        if last > SEED_MAX:
            raise ValueError(f"--track-seed {values['track_seed']}: the last generation's tracks would run past "
                             f"seed {SEED_MAX} ({values['generations']} generations x {values['rollouts']} rollouts)")
    return cls(**values)


def from_yaml(cls: type, path: Path, args: argparse.Namespace, given: set[str]):
    """`cls` from a YAML mapping of field to value, with the options in `given` (set on
    the command line) taking precedence. Unknown keys and wrong types name the file."""
    from engine.policy.knobs import read_yaml  # missing, a directory, binary, not YAML: ValueError naming the file

    raw = read_yaml(Path(path), "config file") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of option to value")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in raw.items():
        if key not in fields:
            raise ValueError(f"{path}: unknown key {key!r} (keys: {', '.join(fields)})")
        if key in given:
            continue
        kind = {"int": int, "float": float, "str": str, "Path": Path}[str(fields[key].type)]
        ok = not isinstance(value, bool) and isinstance(value, (int, float, str))
        ok = ok and (kind is not int or isinstance(value, int)) and (kind not in (str, Path) or isinstance(value, str))
        ok = ok and (kind is not float or not isinstance(value, str))
        if not ok:
            raise ValueError(f"{path}: {key} must be of type {kind.__name__}, got {value!r}")
        setattr(args, key, kind(value))
    return from_args(cls, args)
