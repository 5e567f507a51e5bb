"""`vmc-duel train ship-controller`: see train.controller.ship."""

from __future__ import annotations

import argparse
from pathlib import Path

from train.controller import ship


def main(args: argparse.Namespace) -> int:
    run = args.run or Path("data/checkpoints/controllers") / args.name
    record = ship(args.name, run, args.weights, force=args.force)
    t = record["training"]
    print(f"{args.weights}/controller{args.name}.npz: generation {t['shipped_generation']}, evaluation "
          f"{t['eval_mean']:.1f} +- {t['eval_std']:.1f} on tracks {t['eval_tracks']}, sha256 {record['sha256'][:12]}")
    return 0
