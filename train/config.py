"""Training configs (typed dataclasses, a docstring per field) and their command lines.

Kept free of torch so that `vmc-duel` can list and parse every training command
without importing it; the field docstrings are the `--help` text.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
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


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of dataclass `cls`."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One --option per field of `cls` (int, float, str, Path), its docstring as help."""
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        kind = {"int": int, "float": float, "str": str, "Path": Path}[str(f.type)]
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=kind, default=f.default,
            help=f"{docs.get(f.name, '')} (default {f.default})",
        )  # fmt: skip


def from_args(cls: type, args: argparse.Namespace):
    """Build `cls` from parsed options; refuses non-positive counts and rates."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    for name, v in values.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and name != "seed" and v <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {v}")
    return cls(**values)
