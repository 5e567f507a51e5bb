"""`vmc-duel train ship-controller`: see train.controller.ship."""

from __future__ import annotations

import argparse
from pathlib import Path

from train.controller import ship


def main(args: argparse.Namespace) -> int:
    run = args.run or Path("data/checkpoints/controllers") / args.name
    record = ship(args.name, run, args.weights, force=args.force, weather=args.weather, generations=args.generation,
                  steer_hold=args.steer_hold, pace=args.pace)
    t = record["training" if args.weather == "clear" else "rain_training"]
    what = "its weights" if args.weather == "clear" else "its wet-track set (W_rain, b_rain: driven in rain)"
    evaluation = (f", evaluation {t['eval_mean']:.1f} +- {t['eval_std']:.1f} on tracks {t['eval_tracks']}"
                  if "eval_mean" in t else "")  # fmt: skip
    which = (f"generations {t['averaged_generations']} averaged" if "averaged_generations" in t
             else f"generation {t['shipped_generation']}")  # fmt: skip
    hold = f", steering hold {t['steer_hold']}" if "steer_hold" in t else ""
    if "pace_bend" in t or "pace_straight" in t:
        hold += f", pace {t.get('pace_bend', 0.0):g} / {t.get('pace_straight', 0.0):g} m/s (bend / straight)"
    print(f"{args.weights}/controller{args.name}.npz: {what} from {run} {which}{hold}"
          f"{evaluation}, sha256 {record['sha256'][:12]}")
    return 0
