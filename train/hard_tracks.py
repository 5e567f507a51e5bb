"""Pick the tracks a controller does badly on, for CMA-ES to train on more often.

    vmc-duel tournament --tracks 800 --seed-start 2000000 --renderer fast --precision fp32 --out data/screen
    vmc-duel train hard-tracks data/screen/tournament.json --player A --below 850 --out data/hard_A.json
    vmc-duel train controller ... --hard-tracks data/hard_A.json --hard-fraction 0.5

A controller's mean over 16 tracks is dominated by the one or two it crashes on, and a fresh
draw of 16 tracks holds such a track only now and then: CMA-ES then mostly ranks candidates
by noise. A pool of tracks the current controller is known to crash on (screened from many
tracks that are neither evaluation nor held-out tracks) gives every generation some.

The pool file is JSON: {"seeds": [...], "player": "A", "below": 850.0, "weather": "clear",
"source": [...], "rewards": [...]}; training drives its tracks in its weather (a rain screen
makes a rain pool).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.files import write_atomic

PROTECTED = ((900_000, 999_999, "an evaluation"), (1_000_000, 1_000_099, "a held-out"))  # a screen of these: refused
KNOB_TRACKS = range(2_000_000, 2_000_004)  # benchmarks/knob_effects.py's tracks: never in a pool


def _read_list(path: Path, key: str, where: str, missing: str, wrong: str) -> list:
    """JSON file `path`'s list under `key`; ValueError starting with `where` otherwise."""
    try:
        value = json.loads(Path(path).read_text())[key]
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file ({missing})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ValueError(f"{where}: {wrong} (JSON with a '{key}' list)") from None
    if not isinstance(value, list):
        raise ValueError(f"{where}: {wrong} ('{key}' is not a list)")
    return value


def hard_tracks(tournaments: list[Path], player: str, below: float) -> dict:
    """The seeds of `tournaments` (tournament.json files) where `player` scored below `below`,
    worst first. Refuses tracks in the evaluation or held-out ranges (training on them would
    flatter every figure measured there), and leaves out the knob-effects tracks."""
    if player not in ("A", "B"):
        raise ValueError(f"player must be A or B, got {player!r}")
    found: dict[int, float] = {}
    weathers = set()
    for path in tournaments:
        results = _read_list(path, "results", f"{path}", "a tournament's --out holds tournament.json",
                             "not a tournament.json")  # fmt: skip
        weathers.add(json.loads(Path(path).read_text()).get("weather", "clear"))
        for k, r in enumerate(results):
            try:
                seed, reward = int(r["seed"]), float(r[f"{player}_reward"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{path}: result {k} has no seed and {player}_reward") from None
            for lo, hi, what in PROTECTED:
                if lo <= seed <= hi:
                    raise ValueError(f"{path}: track {seed} is {what} track ({lo}-{hi}): never train on those")
            if reward < below and seed not in KNOB_TRACKS:
                found[seed] = reward
    if len(weathers) > 1:
        raise ValueError(f"tournaments in {' and '.join(sorted(weathers))}: a pool holds tracks of one weather")
    order = sorted(found, key=found.get)
    return {"seeds": order, "rewards": [found[s] for s in order], "player": player, "below": below,
            "weather": weathers.pop(), "source": [str(p) for p in tournaments]}  # fmt: skip


def load_hard_tracks(path: Path) -> tuple[list[int], str]:
    """The seeds of a pool file written by `vmc-duel train hard-tracks`, and their weather."""
    seeds = _read_list(path, "seeds", f"hard_tracks {path}", "write it with `vmc-duel train hard-tracks`",
                       "not a pool file")  # fmt: skip
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"hard_tracks {path}: 'seeds' must be a non-empty list of integers")
    weather = json.loads(Path(path).read_text()).get("weather", "clear")
    if weather not in ("clear", "rain"):
        raise ValueError(f"hard_tracks {path}: weather {weather!r} is not clear or rain")
    return seeds, weather


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tournaments", nargs="+", type=Path, help="tournament.json files to screen")
    p.add_argument("--player", default="A", help="whose rewards to read: A (default) or B")
    p.add_argument("--below", type=float, default=850.0, help="keep tracks scored below this (default 850)")
    p.add_argument("--out", type=Path, required=True, help="the pool file to write (JSON)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")


def main(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.force:
        raise ValueError(f"{args.out} exists: pass --force to replace it")
    pool = hard_tracks(args.tournaments, args.player, args.below)
    if not pool["seeds"]:
        raise ValueError(f"no track below {args.below} for player {args.player}: nothing written")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(pool, indent=1) + "\n")
    worst = ", ".join(f"{s} ({r:.0f})" for s, r in list(zip(pool["seeds"], pool["rewards"]))[:5])
    print(f"{len(pool['seeds'])} tracks below {args.below} for {args.player} -> {args.out}; worst: {worst}")
    return 0
