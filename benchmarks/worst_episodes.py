"""A controller's worst episodes of a tournament, looked at: what went wrong, in frames.

    python benchmarks/worst_episodes.py [--tournament benchmarks/results/tournament_exact_100/tournament.json]
                                        [--player A] [--worst 5] [--out-dir benchmarks/results/worst_A]

Takes the per-track results of a tournament (its JSON), re-races the `--worst` lowest
episodes of `--player` (same seed, renderer, fp32 world model, default knobs: the same
race), and for each writes a PNG: six frames around the moment the race went wrong (the
start of the longest spell off the road, or, without one, the longest spell without a
new tile), the speed, steering, gas and off-road trace of the whole episode, and a label:

- "spin-out": left the road with the wheel near full lock (|steer| > 0.8) at speed;
- "too fast into a corner": left the road at more than 60 m/s;
- "off-road recovery": long on the grass (> 2 s) after leaving the road;
- "stalled": no new tile for > 3 s while on the road (slow, lost, or stuck);
- "slow": none of these, the lap just takes too long (the 1000 steps run out before it
  closes): the moment shown is the slowest point after the start, and the summary gives the
  mean speed, how often the gas sits at the invariant's floor and the steering reversals per
  second (a weaving car scrubs speed).

A summary JSON lists every episode with its numbers, each with its weave (steering reversals a
second, as the tournament reports it) and mean speed. Needs matplotlib (the train extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.policy.knobs import load_bounds  # noqa: E402
from engine.race.duel import FPS, PLAYERS, STEER_DEAD_BAND, Duel  # noqa: E402

OFFSETS = (-60, -30, -10, 0, 15, 40)  # frames shown around the moment, in steps
GAS_FLOOR = load_bounds().invariants["min_throttle"] + 0.01  # gas at or below this: the invariant's floor


def race(seed: int, renderer: str, weather: str, player: int) -> dict[str, np.ndarray]:
    """Re-race track `seed` (both cars, as the tournament did) and record `player`'s episode."""
    rec = {"frames": [], "speed": [], "steer": [], "gas": [], "off": [], "tiles": [], "reward": []}
    with Duel(renderer=renderer, weather=weather, device="cpu", precision="fp32") as duel:
        duel.reset(seed)
        while not duel.finished:
            duel.step()
            t = duel.telemetry[player]
            if t.done and len(rec["speed"]) >= t.step:
                continue
            rec["frames"].append(duel.frames[player].copy())
            rec["speed"].append(t.speed)
            rec["steer"].append(t.action[0])
            rec["gas"].append(t.action[1])
            rec["off"].append(t.off_track_steps)
            rec["tiles"].append(t.tiles_visited)
            rec["reward"].append(t.reward)
    out = {k: np.asarray(v) for k, v in rec.items()}
    out["off_now"] = np.diff(np.concatenate([[0], out["off"]])) > 0  # (T,) off the road at this step
    return out


def longest_run(mask: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of True in `mask` (length 0 if none)."""
    best, start, k = (0, 0), None, 0
    for k, m in enumerate(np.append(mask, False)):
        if m and start is None:
            start = k
        elif not m and start is not None:
            if k - start > best[1]:
                best = (start, k - start)
            start = None
    return best


def weave(steer: np.ndarray) -> float:
    """Steering reversals a second over `steer` (T,): sign changes beyond the dead band, as the duel counts them
    (engine.race.duel.PlayerTelemetry.weave, the tournament's figure)."""
    beyond = steer[np.abs(steer) > STEER_DEAD_BAND]
    return np.count_nonzero(np.diff(np.sign(beyond)) != 0) / (len(steer) / FPS) if len(steer) else 0.0


def diagnose(rec: dict[str, np.ndarray]) -> dict:
    """The moment it went wrong and a label (see the module docstring)."""
    off_start, off_len = longest_run(rec["off_now"])
    new_tile = np.diff(np.concatenate([[0], rec["tiles"]])) > 0
    stall_start, stall_len = longest_run(~new_tile & ~rec["off_now"])
    if off_len >= 10:
        t = off_start
        before = slice(max(0, t - 10), t + 1)
        speed, steer = float(rec["speed"][before].max()), float(np.abs(rec["steer"][before]).max())
        if steer > 0.8 and speed > 30:
            label = "spin-out"
        elif speed > 60:
            label = "too fast into a corner"
        else:
            label = "left the road"
        if off_len > 2 * FPS:
            label += ", then off-road recovery"
        return {"moment": int(t), "label": label, "off_road_s": off_len / FPS, "speed_before": speed,
                "max_steer_before": steer}  # fmt: skip
    if stall_len > 3 * FPS:
        during = rec["speed"][stall_start : stall_start + stall_len]
        return {"moment": int(stall_start), "label": "stalled", "stall_s": stall_len / FPS,
                "speed_during": float(during.mean())}  # fmt: skip
    start = min(2 * FPS, len(rec["speed"]) - 1)  # past the standing start
    moment = start + int(np.argmin(rec["speed"][start:]))
    return {"moment": moment, "label": "slow", "speed_mean": float(rec["speed"].mean()),
            "slowest_speed": float(rec["speed"][moment]), "gas_mean": float(rec["gas"].mean()),
            "gas_at_floor": float(np.mean(rec["gas"] <= GAS_FLOOR)),
            "steer_reversals_per_s": weave(rec["steer"])}  # fmt: skip


def plot(rec: dict[str, np.ndarray], info: dict, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 5.2))
    t0, n = info["moment"], len(rec["frames"])
    for k, dt in enumerate(OFFSETS):
        t = min(max(t0 + dt, 0), n - 1)
        ax = fig.add_subplot(2, len(OFFSETS), k + 1)
        ax.imshow(rec["frames"][t])
        ax.set_title(f"t={t} ({dt:+d})\n{rec['speed'][t]:.0f} m/s, steer {rec['steer'][t]:+.2f}", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(2, 1, 2)
    steps = np.arange(n)
    ax.plot(steps, rec["speed"], label="speed (m/s)", lw=1)
    ax.plot(steps, 50 * rec["steer"], label="steer x 50", lw=0.8, alpha=0.7)
    ax.plot(steps, 50 * rec["gas"], label="gas x 50", lw=0.8, alpha=0.7)
    ax.fill_between(steps, 0, 100 * rec["off_now"], color="C3", alpha=0.25, label="off the road")
    ax.axvline(t0, color="k", ls="--", lw=0.8)
    ax.set_xlabel("step")
    ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--tournament", type=Path, default=Path("benchmarks/results/tournament_exact_100/tournament.json"))
    p.add_argument("--player", choices=PLAYERS, default="A")
    p.add_argument("--worst", type=int, default=5, help="episodes to look at (default 5)")
    p.add_argument("--out-dir", type=Path, help="default benchmarks/results/worst_PLAYER")
    p.add_argument("--force", action="store_true", help="replace what --out-dir holds")
    args = p.parse_args(argv)
    out = args.out_dir or Path(f"benchmarks/results/worst_{args.player}")
    if (out / "worst.json").exists() and not args.force:
        p.error(f"{out / 'worst.json'} exists; pass --force to replace it")
    summary = json.loads(args.tournament.read_text())
    worst = sorted(summary["results"], key=lambda r: r[f"{args.player}_reward"])[: args.worst]
    out.mkdir(parents=True, exist_ok=True)
    episodes = []
    for r in worst:
        rec = race(r["seed"], summary["renderer"], summary["weather"], PLAYERS.index(args.player))
        info = diagnose(rec)
        reward = float(rec["reward"][-1])
        title = (f"{args.player} on track {r['seed']}: {reward:.1f} (tournament: {r[f'{args.player}_reward']:.1f}); "
                 f"{info['label']}")
        png = out / f"track_{r['seed']}.png"
        plot(rec, info, title, png)
        how = {"weave": weave(rec["steer"]), "mean_speed": float(rec["speed"].mean())}  # every episode, any label
        episodes.append({"seed": r["seed"], "reward": reward, "tournament_reward": r[f"{args.player}_reward"],
                         "steps": len(rec["frames"]), **how, **info, "png": str(png)})  # fmt: skip
        print(f"track {r['seed']}: {reward:7.1f}  {info['label']} at step {info['moment']}, weave "
              f"{how['weave']:.1f}/s, mean speed {how['mean_speed']:.1f} m/s  ({png})", flush=True)
    result = {"player": args.player, "tournament": str(args.tournament), "renderer": summary["renderer"],
              "weather": summary["weather"], "episodes": episodes}  # fmt: skip
    (out / "worst.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
