"""Batched duels, as a tournament runs them: player-steps/s by worker processes and onnxruntime threads.

    python benchmarks/bench_tournament.py [--device cpu|cuda] [--duels 32] [--steps 100] [--repeats 3]
                                          [--workers 0,1,2] [--threads 1,2] [--renderer exact|fast]
                                          [--quick] [--out FILE]

`engine.race.duel.Duel(duels=N, renderer, workers=w, threads=t, device)` (renderer: exact, the
default of `vmc-duel tournament`, unless --renderer says otherwise): 2N players, all
world-model steps in one onnxruntime call, the environments in w worker processes (0: in
this process), raced by `Duel.run` as `vmc-duel tournament` races them: with 2 or more
workers pipelined (one half of the cars steps while the model decides for the other).
Each configuration is timed over --steps steps from a reset on N tracks (not timed),
after one warm-up run, --repeats times; the table gives the median player-steps/s (cars still racing, counted each step)
with the spread (min-max). Default workers: 0, 1, 2, 4, 8, 16 up to the number of cores;
default threads: 1, 2, 4 up to the number of cores.

The ceiling is measured in the same run: the model alone (every player's decision,
`Players.act` at the tournament's batch on real frames, one thread) and the environments
alone (one process stepping the 2N environments, same renderer, through the actions the players
took on those tracks over those steps: the same frames to draw) give the cost of a player-step in
core-seconds, 1/model + 1/env; the machine's cores can do at most cores / (1/model + 1/env)
player-steps/s. `ceiling_fraction` is the best configuration's throughput over that, measured side
by side: rounds of (best configuration, model alone, environments alone), the median of the
rounds' fractions.
The last line printed is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo: engine, train
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this directory: common, bench_env
os.environ.setdefault("VMC_DUEL_EXACT_KERNEL", "inline")  # time the exact renderer's kernel from the start

import numpy as np  # noqa: E402
from bench_duel import precision_for  # noqa: E402
from common import (  # noqa: E402
    TRACK_SEED,
    add_output_options,
    check_device,
    int_list,
    interleaved,
    measure,
    median_ratio,
    real_frames,
    refuse_overwrite,
    run_main,
    spread,
    stats,
)

WORKERS = (0, 1, 2, 4, 8, 16)  # environment processes tried, up to os.cpu_count() (0, 1, 2 always)
THREADS = (1, 2, 4)  # onnxruntime threads tried, up to os.cpu_count() (1 always)
QUICK = {"duels": 2, "steps": 5, "repeats": 1, "workers": (0, 1), "threads": (1,)}


def timed(duel, steps: int, seeds: list[int]) -> float:
    """Player-steps per second (cars still racing, counted each step) over `steps` steps from a
    reset on `seeds`, raced as a tournament races them (`Duel.run`: pipelined over 2+ workers)."""
    duel.reset(seeds)
    start = time.perf_counter()
    duel.run(steps=steps)
    elapsed = time.perf_counter() - start
    return sum(t.step for t in duel.telemetry) / elapsed


def _race_share(seeds: list[int], steps: int, device: str, barrier, renderer: str) -> tuple[int, float, float]:
    """One process's share of a data-parallel tournament: (player-steps, start, end) of `steps`
    steps, timed from a barrier that all processes pass together (their setup is not timed)."""
    from engine.race.duel import Duel

    with Duel(duels=len(seeds), renderer=renderer, workers=0, threads=1, device=device,
              precision=precision_for(device)) as duel:  # fmt: skip
        duel.reset(seeds)
        duel.run(steps=5)  # warm-up: numba, onnxruntime's first runs
        duel.reset(seeds)
        barrier.wait()
        start = time.time()
        duel.run(steps=steps)
        return sum(t.step for t in duel.telemetry), start, time.time()


def timed_processes(processes: int, steps: int, seeds: list[int], device: str, renderer: str) -> float:
    """Player-steps/s of `processes` processes, each racing its share of `seeds` in-process with
    one onnxruntime thread (run_tournament(processes=...)), timed from a common start."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    shares = [seeds[k::processes] for k in range(processes)]
    with ctx.Manager() as manager, ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        barrier = manager.Barrier(processes)
        futures = [pool.submit(_race_share, share, steps, device, barrier, renderer) for share in shares]
        done = [f.result() for f in futures]
    return sum(d[0] for d in done) / (max(d[2] for d in done) - min(d[1] for d in done))


def model_only(players: int, steps: int, device: str) -> float:
    """Player-steps/s of the decision alone (world model, risk, knobs) at batch `players`, one thread."""
    import numpy as np

    from engine.policy.knobs import Knobs, load_bounds
    from engine.policy.players import Players, invariants_array, load_controllers, paces, steer_holds
    from engine.world_model.manifest import WEIGHTS_DIR

    frames = real_frames(players)  # (P, 96, 96, 3): one real frame per player
    bounds = load_bounds()
    W, b, meta = load_controllers([WEIGHTS_DIR / "controllerA.npz", WEIGHTS_DIR / "controllerB.npz"])
    knobs = np.tile(Knobs(bounds).as_array(), (players, 1))  # a tournament's default knobs
    p = Players(np.tile(W, (players // 2, 1, 1)), np.tile(b, (players // 2, 1)), knobs, invariants_array(bounds),
                device=device, threads=1, precision=precision_for(device),
                steer_hold=np.tile(steer_holds(meta), players // 2),
                pace=np.tile(paces(meta), (players // 2, 1)))  # fmt: skip
    slip, wet = np.zeros(players), np.zeros(players)
    p.act(frames, slip, wet)
    start = time.perf_counter()
    for _ in range(steps):
        p.act(frames, slip, wet)
    return players * steps / (time.perf_counter() - start)


def duel_actions(seeds: list[int], steps: int, device: str, renderer: str) -> np.ndarray:
    """(steps, 2 * len(seeds), 3) float64: the actions the players take over the first `steps` steps of
    the duels on `seeds` (one process, untimed), which `env_only` replays: the same drive and frames."""
    from engine.race.duel import Duel

    with Duel(duels=len(seeds), renderer=renderer, workers=0, threads=1, device=device,
              precision=precision_for(device)) as duel:  # fmt: skip
        duel.reset(seeds)
        taken = []
        for _ in range(steps):
            duel.step()
            taken.append(duel.last_actions.copy())
    return np.stack(taken)


def env_only(seeds: list[int], actions: np.ndarray, renderer: str) -> float:
    """Env steps/s of one process stepping the duels' environments (two per seed) through `actions`
    (steps, players, 3): the drive the tournament's players chose, so the frames drawn are theirs."""
    from engine.env.vector_env import VecRaceEnv

    steps, players = actions.shape[:2]
    with VecRaceEnv(players, workers=0, renderer=renderer) as vec:
        vec.reset([s for s in seeds for _ in range(2)])
        start = time.perf_counter()
        for t in range(steps):
            vec.step(actions[t])
        return players * steps / (time.perf_counter() - start)


def config_rate(row: dict, seeds: list[int], steps: int, device: str, renderer: str) -> float:
    """Player-steps/s of the configuration `row` (a row of the table), timed once, from a fresh start."""
    from engine.race.duel import Duel

    if row["processes"] > 1:
        return timed_processes(row["processes"], steps, seeds, device, renderer)
    with Duel(duels=len(seeds), renderer=renderer, workers=row["workers"], threads=row["threads"], device=device,
              precision=precision_for(device)) as duel:  # fmt: skip
        timed(duel, steps, seeds)  # warm-up
        return timed(duel, steps, seeds)


def ceiling(best: dict, seeds: list[int], steps: int, repeats: int, device: str, renderer: str) -> dict:
    """The ceiling and the best configuration's share of it, side by side: `repeats` rounds of (the best
    configuration, the model alone, the environments alone), after a warm-up round; the fraction is the
    median of the rounds' fractions (a machine that slows down for a while slows all three)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    players = 2 * len(seeds)
    actions = duel_actions(seeds, steps, device, renderer)
    rates, rounds = interleaved({"best": lambda: config_rate(best, seeds, steps, device, renderer),
                                 "model": lambda: model_only(players, steps, device),
                                 "env": lambda: env_only(seeds, actions, renderer)}, repeats)  # fmt: skip
    for r in rounds:
        r["ceiling"] = cores / (1.0 / r["model"] + 1.0 / r["env"])  # core-seconds per player-step, over the cores
    return {"cores": cores, "model_player_steps_per_s_1thread": rates["model"],
            "env_steps_per_s_1process": rates["env"], "best_player_steps_per_s": rates["best"],
            "player_steps_per_s": stats(r["ceiling"] for r in rounds),
            "fraction": median_ratio(rounds, "best", "ceiling")}  # fmt: skip


def run(args: argparse.Namespace) -> dict:
    from engine.race.duel import Duel

    seeds = [TRACK_SEED + d for d in range(args.duels)]
    rows = []
    for workers in args.workers:
        for threads in args.threads:
            with Duel(duels=args.duels, renderer=args.renderer, workers=workers, threads=threads, device=args.device,
                      precision=precision_for(args.device)) as duel:  # fmt: skip
                rate = measure(lambda duel=duel: timed(duel, args.steps, seeds), args.repeats, warmup=1)
            rows.append({"processes": 1, "workers": workers, "threads": threads, "player_steps_per_s": rate})
    for processes in args.processes:
        rate = measure(lambda p=processes: timed_processes(p, args.steps, seeds, args.device, args.renderer),
                       args.repeats, warmup=0)  # fmt: skip
        rows.append({"processes": processes, "workers": 0, "threads": 1, "player_steps_per_s": rate})
    best = max(rows, key=lambda r: r["player_steps_per_s"]["median"])
    top = ceiling(best, seeds, args.steps, args.repeats, args.device, args.renderer)
    return {
        "benchmark": "tournament",
        "device": args.device,
        "quick": args.quick,
        "duels": args.duels,
        "players": 2 * args.duels,
        "renderer": args.renderer,
        "steps": args.steps,
        "repeats": args.repeats,
        "rows": rows,
        "ceiling": top,
        "best": {k: best[k] for k in ("processes", "workers", "threads")},
        "ceiling_fraction": top["fraction"],
    }


def format_table(result: dict) -> str:
    lines = [f"Tournament: {result['duels']} duels ({result['players']} players, {result['renderer']} renderer) on "
             f"{result['device']}: player-steps/s, {result['steps']} steps x {result['repeats']} repeats",
             f"{'processes':>10}{'workers':>8}{'threads':>9}{'player-steps/s':>16}{'min-max':>18}"]  # fmt: skip
    for r in result["rows"]:
        s = r["player_steps_per_s"]
        lines.append(f"{r.get('processes', 1):>10}{r['workers']:>8}{r['threads']:>9}{s['median']:>16.0f}"
                     f"{spread(s):>18}")  # fmt: skip
    c = result["ceiling"]
    lines.append(f"ceiling on {c['cores']} cores: {c['player_steps_per_s']['median']:.0f} player-steps/s (model "
                 f"alone {c['model_player_steps_per_s_1thread']['median']:.0f}/s on 1 thread, environments alone "
                 f"{c['env_steps_per_s_1process']['median']:.0f}/s in 1 process); the best configuration "
                 f"({c['best_player_steps_per_s']['median']:.0f}/s in the same rounds) at "
                 f"{100 * result['ceiling_fraction']:.0f}% of it")  # fmt: skip
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="onnxruntime device (default cpu)")
    p.add_argument("--duels", type=int, default=32, help="duels raced together (default 32: 64 players)")
    p.add_argument("--steps", type=int, default=100, help="batched steps per timed run (default 100)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up run (default 3)")
    p.add_argument(
        "--workers",
        type=int_list(0),
        help="environment worker processes, comma-separated (default 0,1,2,4,8,16 up to the cores)",
    )
    p.add_argument(
        "--threads", type=int_list(1), help="onnxruntime threads, comma-separated (default 1,2,4 up to the cores)"
    )
    p.add_argument("--processes", type=int_list(2), help="data-parallel processes, comma-separated: the tracks "
                   "shared out, each process with in-process environments and 1 thread, as `vmc-duel tournament "
                   "--processes N` (default: the number of cores, if 2 or more)")  # fmt: skip
    p.add_argument("--renderer", choices=("exact", "fast"), default="exact",
                   help="the duels' renderer (default exact, as vmc-duel tournament)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="2 duels, a few steps, 1 repeat: a smoke test only")
    add_output_options(p)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    refuse_overwrite(parser, args)
    check_device(parser, args.device)
    cores = os.cpu_count() or 1
    if args.quick:
        args.duels, args.steps, args.repeats = QUICK["duels"], QUICK["steps"], QUICK["repeats"]
        args.workers = args.workers or list(QUICK["workers"])
        args.threads = args.threads or list(QUICK["threads"])
    args.workers = args.workers or [w for w in WORKERS if w <= max(2, cores)]
    args.threads = args.threads or [t for t in THREADS if t <= max(1, cores)]
    if args.processes is None:
        args.processes = [] if args.quick or cores < 2 else [cores]
    if args.duels < 1 or args.steps < 1 or args.repeats < 1:
        parser.error("--duels, --steps and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    return run_main(parse_args, run, format_table, argv)


if __name__ == "__main__":
    main()
