"""What each strategy knob does to real races: the shipped controllers on many tracks, every
knob setting against the defaults, all duels batched.

    python benchmarks/knob_effects.py [--tracks 10] [--seed-start 2000000] [--renderer fast] [--out FILE]

For each setting, both controllers drive the same tracks as at the defaults. Reported per
setting and controller (means over tracks): reward, mean speed (m/s), off-track seconds,
action jitter (mean |a_t - a_{t-1}| summed over steer, gas and brake), mean predicted risk,
mean regime weights, and the steps the emergency brake held. Also: how well the lookahead
risk predicts leaving the road (ROC AUC of risk at t for "off the road within the next 25
steps", over on-road steps at the defaults with each horizon computed but unused).
The last printed line is the JSON result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.hardware import hardware_info  # noqa: E402
from engine.policy.knobs import Knobs, load_bounds  # noqa: E402
from engine.policy.strategy import REGIMES  # noqa: E402
from engine.race.duel import PLAYERS, Duel  # noqa: E402

SETTINGS = {  # name -> knob changes from the defaults
    "defaults": {},
    "alpha_action_smoothing 0.8": {"alpha_action_smoothing": 0.8},
    "risk_aversion 1, lookahead 0 (spread)": {"risk_aversion": 1.0},
    "risk_aversion 1, lookahead 10": {"risk_aversion": 1.0, "lookahead_horizon": 10},
    "risk_aversion 1, lookahead 25": {"risk_aversion": 1.0, "lookahead_horizon": 25},
    "emergency_brake_threshold 0.5, lookahead 10": {"emergency_brake_threshold": 0.5, "lookahead_horizon": 10},
    "gating_bias.straight +1.5": {"gating_bias": {"straight": 1.5}},
    "gating_bias.straight -1.5": {"gating_bias": {"straight": -1.5}},
    "gating_bias.drift +1.5": {"gating_bias": {"drift": 1.5}},
    "gating_bias.drift -1.5": {"gating_bias": {"drift": -1.5}},
    "gating_bias.rain +1.5": {"gating_bias": {"rain": 1.5}},
    "gating_bias.rain -1.5": {"gating_bias": {"rain": -1.5}},
}
AUC_HORIZONS = (1, 5, 10, 25)
AUC_WINDOW = 25  # steps: "leaves the road within this many steps"
STEPS = 1000


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels.sum()
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * (len(labels) - pos)))


def racing_mean(x: np.ndarray, alive: np.ndarray) -> float:
    """Mean over the steps each car was racing (T, N), then over cars."""
    return float(((x * alive).sum(0) / np.maximum(alive.sum(0), 1)).mean())


def race(settings: list[dict], seeds: list[int], renderer: str, weather: str,
         controllers: list[Path] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Every (setting, seed) as one duel of A and B; per-step records (T, P, ...)."""
    bounds = load_bounds()
    knobs = []
    for changes in settings:
        for _ in seeds:
            for _ in PLAYERS:
                k = Knobs(bounds)
                k.update(changes)
                knobs.append(k)
    with Duel(controllers=controllers, knobs=knobs, renderer=renderer, weather=weather, device="cpu",
              duels=len(knobs) // 2, threads=2, workers=2) as duel:  # fmt: skip
        duel.reset([s for _ in settings for s in seeds])
        rec = {k: [] for k in ("speed", "action", "risk", "weights", "off", "hold", "done")}
        for _ in range(STEPS):
            tel = duel.step()
            rec["speed"].append([t.speed for t in tel])
            rec["action"].append(duel.players.actions.copy())
            rec["risk"].append(duel.players.risk.copy())
            rec["weights"].append(duel.players.regime_weights.copy())
            rec["off"].append([t.off_track_steps for t in tel])
            rec["hold"].append(duel.players.hold.copy())
            rec["done"].append([t.done for t in tel])
            if duel.finished:
                break
        out = {k: np.array(v) for k, v in rec.items()}
        out["reward"] = np.array([t.reward for t in duel.telemetry])
        out["off_seconds"] = np.array([t.off_track_seconds for t in duel.telemetry])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tracks", type=int, default=10, help="tracks per setting (default 10)")
    p.add_argument("--seed-start", type=int, default=2_000_000, help="first track (default 2000000: held out)")
    p.add_argument("--renderer", default="fast", help="renderer (default fast)")
    p.add_argument("--weather", default="clear", help="weather (default clear)")
    p.add_argument("--controllers", type=Path, nargs=2, metavar=("A", "B"),
                   help="controller files (default: the shipped weights/controllerA.npz, controllerB.npz)")  # fmt: skip
    p.add_argument("--out", type=Path, help="also write the JSON result here")
    p.add_argument("--force", action="store_true", help="replace --out")
    args = p.parse_args()
    if args.out and args.out.exists() and not args.force:
        p.error(f"{args.out} exists; pass --force to overwrite it")
    seeds = list(range(args.seed_start, args.seed_start + args.tracks))
    names = list(SETTINGS)
    rec = race([SETTINGS[n] for n in names], seeds, args.renderer, args.weather, args.controllers)
    alive = ~rec["done"]  # (T, P): steps the car was still racing
    n_players = len(seeds) * 2
    table = {}
    for i, name in enumerate(names):
        for k, player in enumerate(PLAYERS):
            idx = [i * n_players + 2 * s + k for s in range(len(seeds))]
            a, m = rec["action"][:, idx], alive[:, idx]
            jitter = (np.abs(np.diff(a, axis=0)).sum(-1) * m[1:]).sum(0) / np.maximum(m[1:].sum(0), 1)
            table[f"{name} | {player}"] = {
                "reward": float(rec["reward"][idx].mean()), "speed": racing_mean(rec["speed"][:, idx], m),
                "off_track_s": float(rec["off_seconds"][idx].mean()), "jitter": float(jitter.mean()),
                "risk": racing_mean(rec["risk"][:, idx], m),
                **{f"w_{r}": racing_mean(rec["weights"][:, idx, j], m) for j, r in enumerate(REGIMES)},
                "ebrake_steps": float(((rec["hold"][:, idx] > 0) & m).sum(0).mean()),
            }  # fmt: skip
    # risk as a forecast: defaults, each horizon computed (it changes nothing without the knobs that read it)
    forecast = race([{"lookahead_horizon": h} for h in AUC_HORIZONS], seeds, args.renderer, args.weather,
                    args.controllers)  # fmt: skip
    aucs = {}
    for i, h in enumerate(AUC_HORIZONS):
        scores, labels = [], []
        for q in range(i * n_players, (i + 1) * n_players):
            off_now = np.diff(np.concatenate([[0], forecast["off"][:, q]])) > 0
            for t in range(len(off_now) - AUC_WINDOW):
                if not off_now[t] and not forecast["done"][t, q]:
                    scores.append(forecast["risk"][t, q])
                    labels.append(off_now[t + 1 : t + 1 + AUC_WINDOW].any())
        labels = np.array(labels)
        aucs[h] = {"auc": auc(np.array(scores), labels) if 0 < labels.sum() < len(labels) else None,
                   "positives": float(labels.mean())}  # fmt: skip
    cols = ["reward", "speed", "off_track_s", "jitter", "risk", "w_straight", "w_drift", "w_rain", "ebrake_steps"]
    print(f"{args.tracks} tracks (seeds {seeds[0]}-{seeds[-1]}), {args.renderer} renderer, {args.weather}")
    print("| setting | player | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for key, row in table.items():
        name, player = key.split(" | ")
        print(f"| {name} | {player} | " + " | ".join(f"{row[c]:.2f}" for c in cols) + " |")
    print("risk as a forecast of leaving the road within 25 steps (ROC AUC, on-road steps):",
          ", ".join(f"H={h}: {v['auc']:.3f}" if v["auc"] is not None else f"H={h}: n/a" for h, v in aucs.items()))
    result = {"tracks": args.tracks, "seeds": [seeds[0], seeds[-1]], "renderer": args.renderer,
              "weather": args.weather, "table": table, "risk_auc": aucs, "hardware": hardware_info()}  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
