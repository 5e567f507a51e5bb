"""Two drivers on the same tracks, compared track by track: is the candidate better than the shipped one?

    python benchmarks/compare_tournaments.py OLD.json[:PLAYER] NEW.json[:PLAYER] [--player A] [--png FILE] [--json]

Each side is a tournament's JSON (`vmc-duel tournament --out DIR` writes DIR/tournament.json) and the
player whose episodes to take (`:A` or `:B` after the path; `--player` otherwise). Both must have raced
the same tracks (seeds), in the same weather, renderer and step limit: the comparison is paired, so a
track's difficulty cancels, and what is left is what the driver changed.

A mean over 100 tracks is decided by its one or two crashes; the paired view says whether the candidate
is faster almost everywhere and pays for it with a crash, or is just lucky:

- each side's mean +- std, worst episode, laps finished, weave (steering reversals a second) and mean
  speed;
- tracks better, worse and equal (within EQUAL_POINTS), the median paired difference and the mean
  difference with its 95% interval (normal approximation);
- the big changes (beyond BIG_POINTS either way), seed by seed: the crashes that decide means.

`--png` plots the paired differences sorted; `--json` prints the report as JSON. Needs matplotlib for
the plot only (the train extra).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.race.tournament import Z95  # noqa: E402  (the tournament's own 95% quantile)

EQUAL_POINTS = 0.05  # |difference| below this (points) counts as the same result
BIG_POINTS = 50.0  # |difference| above this (points) is listed seed by seed: a crash or a rescue
MATCH_KEYS = ("weather", "renderer", "max_steps")  # tournament settings both sides must share
PLAYERS = ("A", "B")


class CompareError(ValueError):
    """The two sides cannot be compared; the message names the file and what is wrong."""


def load_side(spec: str, player: str) -> dict[str, Any]:
    """`spec` PATH or PATH:PLAYER -> {"path", "player", "meta", "seeds" (N,) int64, "reward", "weave", "speed"
    (N,) float64, "laps" (N,) bool}, in the file's track order."""
    head, sep, tail = spec.rpartition(":")
    named = sep and tail and "/" not in tail and not Path(spec).exists()  # PATH:PLAYER, not a path with a colon
    path, who = (head, tail) if named else (spec, player)
    if who not in PLAYERS:
        raise CompareError(f"{spec}: player {who!r} is neither A nor B")
    p = Path(path)
    if not p.is_file():
        raise CompareError(f"{path}: no such file (a tournament's JSON: vmc-duel tournament --out DIR writes "
                           f"DIR/tournament.json)")  # fmt: skip
    try:
        t = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise CompareError(f"{path}: not JSON ({e})") from None
    results = t.get("results") if isinstance(t, dict) else None
    if not isinstance(results, list) or not results:
        raise CompareError(f"{path}: no per-track 'results' (is it a tournament's JSON?)")
    need = ("seed", f"{who}_reward", f"{who}_lap_finished")
    for k, r in enumerate(results):
        missing = [key for key in need if key not in r]
        if missing:
            raise CompareError(f"{path}: results[{k}] has no {missing[0]!r}")

    def column(key: str, dtype: type) -> np.ndarray:
        return np.array([r.get(key, np.nan) for r in results], dtype=dtype)

    return {"path": str(path), "player": who, "meta": {k: t.get(k) for k in MATCH_KEYS},
            "seeds": column("seed", np.int64), "reward": column(f"{who}_reward", np.float64),
            "weave": column(f"{who}_weave", np.float64), "speed": column(f"{who}_mean_speed", np.float64),
            "laps": column(f"{who}_lap_finished", bool)}  # fmt: skip


def summary(side: dict[str, Any]) -> dict[str, float | int]:
    """One side's figures: mean, std, worst, laps, weave, speed (NaN where the JSON predates a figure)."""
    r = side["reward"]
    return {"tracks": int(r.size), "mean": float(r.mean()), "std": float(r.std()), "worst": float(r.min()),
            "laps": int(side["laps"].sum()), "weave": float(np.mean(side["weave"])),
            "speed": float(np.mean(side["speed"]))}  # fmt: skip


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The paired report of `new` against `old` (see the module docstring); CompareError when they did not race
    the same tracks under the same settings."""
    for key in MATCH_KEYS:
        a, b = old["meta"][key], new["meta"][key]
        if a is not None and b is not None and a != b:
            raise CompareError(f"{old['path']} and {new['path']} differ in {key}: {a!r} against {b!r}")
    if sorted(old["seeds"].tolist()) != sorted(new["seeds"].tolist()):
        only = sorted(set(old["seeds"].tolist()) ^ set(new["seeds"].tolist()))
        raise CompareError(f"{old['path']} and {new['path']} raced different tracks ({len(only)} seeds in "
                           f"one only, first {only[:3]}): compare tournaments of the same --tracks and "
                           f"--seed-start")  # fmt: skip
    where = {int(s): k for k, s in enumerate(new["seeds"])}
    order = np.array([where[int(s)] for s in old["seeds"]])  # (N,) new's index of each of old's tracks
    d = new["reward"][order] - old["reward"]  # (N,) points, old's track order
    n = d.size
    half = Z95 * float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    big = [{"seed": int(s), "old": float(o), "new": float(o + x), "difference": float(x)}
           for s, o, x in zip(old["seeds"], old["reward"], d) if abs(x) > BIG_POINTS]  # fmt: skip
    return {"old": {"file": old["path"], "player": old["player"], **summary(old)},
            "new": {"file": new["path"], "player": new["player"], **summary(new)},
            "better": int((d > EQUAL_POINTS).sum()), "worse": int((d < -EQUAL_POINTS).sum()),
            "equal": int((abs(d) <= EQUAL_POINTS).sum()), "median_difference": float(np.median(d)),
            "mean_difference": float(d.mean()),
            "mean_difference_ci95": [float(d.mean() - half), float(d.mean() + half)],
            "big_changes": sorted(big, key=lambda b: b["difference"]), "differences": d.tolist(),
            "seeds": old["seeds"].tolist()}  # fmt: skip


def report(rep: dict[str, Any]) -> str:
    """The report as text: one line a side, the paired line, the big changes."""
    lines = [f"{'':4}{'mean':>8} {'std':>6} {'worst':>7} {'laps':>9} {'weave':>6} {'m/s':>5}  file"]
    for tag in ("old", "new"):
        s = rep[tag]
        lines.append(f"{tag:4}{s['mean']:8.1f} {s['std']:6.1f} {s['worst']:7.1f} {s['laps']:4d} of {s['tracks']:<3d}"
                     f"{s['weave']:6.2f} {s['speed']:5.1f}  {s['file']}:{s['player']}")  # fmt: skip
    lo, hi = rep["mean_difference_ci95"]
    lines.append(f"new against old: better on {rep['better']}, worse on {rep['worse']}, equal on {rep['equal']} "
                 f"tracks; median {rep['median_difference']:+.2f}, mean {rep['mean_difference']:+.2f} "
                 f"(95% {lo:+.2f} to {hi:+.2f})")  # fmt: skip
    if rep["big_changes"]:
        lines.append(
            f"changes beyond {BIG_POINTS:.0f} points: "
            + ", ".join(f"{b['seed']} {b['old']:.1f} -> {b['new']:.1f}" for b in rep["big_changes"])
        )
    return "\n".join(lines)


def plot(rep: dict[str, Any], path: Path) -> None:
    """PNG of the paired differences, sorted, with the median and zero marked."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--png needs matplotlib: pip install 'vmc-duel[train]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.sort(np.asarray(rep["differences"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(np.arange(d.size), d, width=1.0, color=np.where(d >= 0, "tab:green", "tab:red"))
    ax.axhline(0, color="black", lw=0.8)
    median = rep["median_difference"]
    ax.axhline(median, color="tab:blue", lw=1, ls="--", label=f"median {median:+.2f}")
    ax.set_xlabel("track (sorted by difference)")
    ax.set_ylabel("new - old (points)")
    ax.set_title(f"{Path(rep['new']['file']).parent.name}:{rep['new']['player']} against "
                 f"{Path(rep['old']['file']).parent.name}:{rep['old']['player']}: better on {rep['better']}, "
                 f"worse on {rep['worse']} of {d.size}")  # fmt: skip
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("old", help="the shipped driver's tournament JSON, PATH or PATH:PLAYER")
    p.add_argument("new", help="the candidate's tournament JSON, PATH or PATH:PLAYER")
    p.add_argument("--player", default="A", choices=PLAYERS, help="the player of a side that names none (default A)")
    p.add_argument("--png", type=Path, help="write a plot of the paired differences here")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    args = p.parse_args(argv)
    try:
        rep = compare(load_side(args.old, args.player), load_side(args.new, args.player))
    except CompareError as e:
        raise SystemExit(f"compare_tournaments: {e}") from None
    print(json.dumps(rep, indent=1) if args.json else report(rep))
    if args.png:
        plot(rep, args.png)
    return rep


if __name__ == "__main__":
    main()
