"""Leagues: a round robin of any number of controllers on the same tracks, with Bradley-Terry ratings.

Every pair of controllers races a tournament (engine.race.tournament.run_tournament: one duel per
track, the duels of a batch stepped together) on the same tracks, seed_start .. seed_start + tracks - 1,
so every controller meets every other under identical conditions. A duel's winner is the tournament's:
the higher episode reward once both cars have ended, on a tie less time off the road, else a draw
(engine.race.duel.Duel.winner); a draw counts half a win to each side. Which car is "A" or "B" makes no
difference: each car has its own environment on the same seed and neither can touch the other.

Ratings: the Bradley-Terry model, P(i beats j) = p_i / (p_i + p_j), fitted by Hunter's (2004)
minorise-maximise iteration

    p_i <- W_i / sum_{j != i} n_ij / (p_i + p_j),   then rescaled so that the p have geometric mean 1,

where W_i is i's wins (draws half) and n_ij the duels of i against j. Every pair is credited one
virtual duel, drawn (PRIOR_DRAWS): without it a controller that wins every duel has no finite
maximum-likelihood strength; with it the ratings are the posterior mode under a weak prior, and are
pulled together by at most one duel's worth per pair. Ratings are printed on the Elo scale,
400 log10(p_i), so a 100-point gap means the stronger wins 64% of duels. The 95% intervals come from
a bootstrap over tracks (BOOTSTRAP resamples of the tracks with replacement, every pair keeping its
duels on the drawn tracks, a fixed generator seed: the same numbers every run).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.env.racing_env import MAX_EPISODE_STEPS
from engine.hardware import hardware_info
from engine.race.tournament import HELD_OUT_SEED_START, run_tournament
from engine.world_model.manifest import WEIGHTS_DIR

PRIOR_DRAWS = 1.0  # virtual drawn duels credited to every pair (half a win each way)
BOOTSTRAP = 1000  # resamples of the tracks for the rating intervals
BOOTSTRAP_SEED = 0  # the resampling generator's seed: the same intervals on every run
ELO_SCALE = 400 / math.log(10)  # Elo points per natural-log unit of strength
MM_TOL = 1e-10  # stop when no log-strength moves more than this
MM_MAX_ITER = 10_000


def parse_entries(specs: list[str]) -> list[tuple[str, Path]]:
    """'NAME=FILE' or 'FILE' (named by its stem, or parent/stem when stems repeat) -> [(name, path)].
    ValueError for fewer than two entries or a name given twice."""
    pairs = []
    for spec in specs:
        name, sep, file = spec.partition("=")
        pairs.append((name, Path(file)) if sep and name else (None, Path(spec)))
    stems = [p.stem for n, p in pairs if n is None]
    named = []
    for name, path in pairs:
        if name is None:
            name = path.stem if stems.count(path.stem) == 1 else f"{path.parent.name}/{path.stem}"
        named.append((name, path))
    names = [n for n, _ in named]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"controller name {repeated[0]!r} given twice: name them NAME=FILE")
    if len(named) < 2:
        raise ValueError(f"a league needs at least 2 controllers, got {len(named)}")
    return named


def bradley_terry(wins: np.ndarray, prior_draws: float = PRIOR_DRAWS) -> np.ndarray:
    """wins (..., K, K) float64, wins[..., i, j] = duels i won against j (draws half each) -> log-strengths
    (..., K), mean 0 over K.

    Hunter's MM iteration for the Bradley-Terry model (see the module's docstring), with `prior_draws`
    virtual drawn duels added to every pair; leading axes are independent leagues (the bootstrap)."""
    k = wins.shape[-1]
    w = wins + prior_draws / 2 * (1 - np.eye(k))
    n = w + np.swapaxes(w, -1, -2)  # duels per pair
    total = w.sum(axis=-1)  # (..., K) wins of each
    log_p = np.zeros(total.shape)
    for _ in range(MM_MAX_ITER):
        p = np.exp(log_p)
        denom = (n / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = np.log(total / denom)
        new -= new.mean(axis=-1, keepdims=True)  # geometric mean 1: the model only fixes ratios
        if np.abs(new - log_p).max() < MM_TOL:
            return new
        log_p = new
    return log_p


def win_tensor(pairs: dict[tuple[int, int], list[str]], k: int, tracks: int) -> np.ndarray:
    """Per-track scores (T, K, K): [t, i, j] = 1 when i beat j on track t, 0.5 a draw, 0 a loss (0 on the diagonal).

    pairs[(i, j)]: the winner of each track ("A": i, "B": j, "draw") of i (as A) against j (as B)."""
    s = np.zeros((tracks, k, k))
    for (i, j), winners in pairs.items():
        score = np.array([1.0 if w == "A" else 0.0 if w == "B" else 0.5 for w in winners])
        s[:, i, j], s[:, j, i] = score, 1.0 - score
    return s


def ratings(scores: np.ndarray, boot: int = BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> dict[str, np.ndarray]:
    """scores (T, K, K) from `win_tensor` -> Elo-scale ratings (K,) and their 95% bootstrap interval (K, 2)."""
    t = len(scores)
    elo = ELO_SCALE * bradley_terry(scores.sum(axis=0))
    rng = np.random.default_rng(seed)
    resampled = scores[rng.integers(0, t, (boot, t))].sum(axis=1)  # (boot, K, K)
    draws = ELO_SCALE * bradley_terry(resampled)
    return {"elo": elo, "ci95": np.percentile(draws, [2.5, 97.5], axis=0).T}


def run_league(
    entries: list[tuple[str, Path]],
    tracks: int = 16,
    seed_start: int = HELD_OUT_SEED_START,
    renderer: str = "exact",
    weather: str = "clear",
    device: str = "auto",
    precision: str = "auto",
    batch: int = 50,
    workers: int = 2,
    threads: int = 2,
    processes: int = 1,
    max_steps: int = MAX_EPISODE_STEPS,
    weights_dir: Path = WEIGHTS_DIR,
    on_step: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Every pair of `entries` ((name, controller file), checked before any race) races
    run_tournament on the same tracks; returns the league summary (ratings, win-rate matrix,
    per-pair results). on_step(done, total) reports progress in player-pair steps."""
    from engine.policy.players import load_controllers

    load_controllers([p for _, p in entries], weights_dir)  # a bad file fails now, named, not after hours
    k = len(entries)
    pairs = list(itertools.combinations(range(k), 2))
    total = len(pairs) * tracks * max_steps
    winners: dict[tuple[int, int], list[str]] = {}
    matches, info, precision_used, wall = [], [None] * k, precision, 0.0
    for m, (i, j) in enumerate(pairs):

        def progress(done: int, _total: int, base: int = m * tracks * max_steps) -> None:
            if on_step is not None:
                on_step(base + done, total)

        s = run_tournament(tracks=tracks, seed_start=seed_start, renderer=renderer, weather=weather,
                           controllers=(entries[i][1], entries[j][1]), controller_names=(entries[i][0], entries[j][0]),
                           device=device, precision=precision, batch=batch, workers=workers, threads=threads,
                           processes=processes, max_steps=max_steps, weights_dir=weights_dir,
                           on_step=progress)  # fmt: skip
        winners[(i, j)] = [r["winner"] for r in s["results"]]
        info[i], info[j] = s["players"]["A"]["controller_file"], s["players"]["B"]["controller_file"]
        precision_used, wall = s["precision"], wall + s["wall_seconds"]
        matches.append({"a": entries[i][0], "b": entries[j][0], "a_wins": s["a_wins"], "b_wins": s["b_wins"],
                        "draws": s["draws"], "a_win_rate": s["a_win_rate"], "a_win_rate_ci95": s["a_win_rate_ci95"],
                        "a_reward_mean": s["players"]["A"]["reward_mean"],
                        "b_reward_mean": s["players"]["B"]["reward_mean"], "results": s["results"]})  # fmt: skip
    return summarise(entries, info, winners, matches, tracks, seed_start, renderer, weather, precision_used,
                     max_steps, wall)  # fmt: skip


def summarise(entries: list[tuple[str, Path]], info: list[dict], winners: dict[tuple[int, int], list[str]],
              matches: list[dict], tracks: int, seed_start: int, renderer: str, weather: str, precision: str,
              max_steps: int, wall: float) -> dict[str, Any]:  # fmt: skip
    k = len(entries)
    scores = win_tensor(winners, k, tracks)
    rate = scores.mean(axis=0)  # (K, K) row's win rate against column (draws half)
    np.fill_diagonal(rate, np.nan)
    fit = ratings(scores)
    rewards = {name: [] for name, _ in entries}
    for mt in matches:
        for r in mt["results"]:
            rewards[mt["a"]].append(r["A_reward"])
            rewards[mt["b"]].append(r["B_reward"])
    table = [{"name": name, "elo": float(fit["elo"][i]), "elo_ci95": fit["ci95"][i].tolist(),
              "win_rate": float(np.nanmean(rate[i])), "reward_mean": float(np.mean(rewards[name])),
              "controller": info[i]}
             for i, (name, _) in enumerate(entries)]  # fmt: skip
    table.sort(key=lambda row: -row["elo"])
    return {
        "controllers": [name for name, _ in entries], "tracks": tracks, "seeds": [seed_start, seed_start + tracks - 1],
        "renderer": renderer, "weather": weather, "precision": precision, "max_steps": max_steps,
        "winner_rule": "higher episode reward once both cars have ended; on a tie less time off the road; "
        "else a draw (half a win each)",
        "rating_model": f"Bradley-Terry (MM, {PRIOR_DRAWS:g} virtual draw per pair), Elo scale 400 log10(p), "
        f"mean 0; 95% interval: {BOOTSTRAP} bootstrap resamples of the tracks (seed {BOOTSTRAP_SEED})",
        "ratings": table,
        "win_rate": [[None if math.isnan(v) else float(v) for v in row] for row in rate],
        "matches": matches, "wall_seconds": wall, "hardware": hardware_info(),
    }  # fmt: skip


def format_league(s: dict[str, Any]) -> str:
    lines = [f"League: {len(s['controllers'])} controllers, every pair on {s['tracks']} tracks (seeds "
             f"{s['seeds'][0]}-{s['seeds'][1]}), renderer {s['renderer']}, {s['weather']}, {s['precision']}, "
             f"{s['wall_seconds']:.0f} s",
             f"{'#':>2s}  {'controller':22s}{'Elo':>6s}  {'95% interval':>14s}{'win rate':>10s}{'reward':>9s}  origin"]
    for k, r in enumerate(s["ratings"], 1):
        lo, hi = r["elo_ci95"]
        lines.append(f"{k:2d}  {r['name'][:22]:22s}{r['elo']:6.0f}  {lo:6.0f} .. {hi:4.0f}{100 * r['win_rate']:9.0f}%"
                     f"{r['reward_mean']:9.1f}  {r['controller']['origin']}")  # fmt: skip
    names = s["controllers"]
    width, col = max(len(n) for n in names), min(max(len(n) for n in names), 14) + 2
    lines.append("win rate of the row against the column (draws half):")
    lines.append(" " * width + "".join(f"{n[: col - 2]:>{col}s}" for n in names))
    for name, row in zip(names, s["win_rate"]):
        lines.append(f"{name:{width}s}" + "".join(f"{'-':>{col}s}" if v is None else f"{100 * v:{col - 1}.0f}%"
                                                  for v in row))  # fmt: skip
    return "\n".join(lines)


def write_outputs(s: dict[str, Any], out: Path, force: bool = False) -> list[Path]:
    """league.json and, with matplotlib installed, league.png (the win-rate matrix beside the ratings) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "league.json", out / "league.png"]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise ValueError(f"{', '.join(map(str, existing))} already exist: pass --force to replace them")
    paths[0].write_text(json.dumps(s, indent=1) + "\n")
    try:
        import matplotlib
    except ModuleNotFoundError:
        print("no PNG: matplotlib is not installed (pip install matplotlib)")
        return paths[:1]
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [s["controllers"].index(r["name"]) for r in s["ratings"]]  # strongest first
    names = [s["controllers"][i] for i in order]
    rate = np.array([[np.nan if s["win_rate"][i][j] is None else s["win_rate"][i][j] for j in order] for i in order])
    k = len(names)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(6 + 1.1 * k, 1.2 + 0.75 * k), width_ratios=[1.2, 1])
    im = ax.imshow(rate, cmap="RdYlGn", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if i != j:
                ax.text(j, i, f"{100 * rate[i, j]:.0f}%", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(k), names, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_title("win rate of row against column", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    elo = np.array([r["elo"] for r in s["ratings"]])
    ci = np.array([r["elo_ci95"] for r in s["ratings"]])
    y = np.arange(k)
    bx.errorbar(elo, y, xerr=[elo - ci[:, 0], ci[:, 1] - elo], fmt="o", color="C0", capsize=3)
    bx.set_yticks(y, names, fontsize=8)
    bx.invert_yaxis()
    bx.axvline(0, color="grey", lw=0.8, ls="--")
    bx.set_xlabel("Bradley-Terry rating, Elo scale (95% bootstrap interval)", fontsize=8)
    bx.set_title("ratings", fontsize=9)
    fig.suptitle(f"League: every pair on {s['tracks']} tracks ({s['seeds'][0]}-{s['seeds'][1]}), "
                 f"{s['renderer']} renderer, {s['weather']}, {s['precision']}", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    return paths
