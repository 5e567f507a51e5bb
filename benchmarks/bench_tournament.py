"""Batched duels, as a tournament runs them: player-steps/s by worker processes and onnxruntime threads.

    python benchmarks/bench_tournament.py [--device cpu|cuda] [--duels 32] [--steps 100] [--repeats 3]
                                          [--workers 0,1,2] [--threads 1,2] [--quick] [--out FILE]

`engine.race.duel.Duel(duels=N, renderer="fast", workers=w, threads=t, device)`: 2N players, all
world-model steps in one onnxruntime call, the environments in w worker processes (0: in
this process). Each configuration is timed over --steps batched steps from a reset on N
tracks (not timed; again when every duel has ended), after one warm-up run, --repeats
times; the table gives the median player-steps/s (cars still racing, counted each step)
with the spread (min-max). Default workers: 0, 1, 2, 4, 8, 16 up to the number of cores;
default threads: 1, 2, 4 up to the number of cores.
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

from common import (  # noqa: E402
    TRACK_SEED,
    add_output_options,
    check_device,
    int_list,
    measure,
    refuse_overwrite,
    run_main,
    spread,
)

WORKERS = (0, 1, 2, 4, 8, 16)  # environment processes tried, up to os.cpu_count() (0, 1, 2 always)
THREADS = (1, 2, 4)  # onnxruntime threads tried, up to os.cpu_count() (1 always)
QUICK = {"duels": 2, "steps": 5, "repeats": 1, "workers": (0, 1), "threads": (1,)}


def timed(duel, steps: int, seeds: list[int]) -> float:
    """Player-steps per second (cars still racing) over `steps` batched steps from a reset on `seeds`."""
    duel.reset(seeds)
    player_steps = 0
    start = time.perf_counter()
    for _ in range(steps):
        if duel.finished:
            duel.reset(seeds)
        player_steps += sum(not t.done for t in duel.telemetry)
        duel.step()
    return player_steps / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> dict:
    from engine.race.duel import Duel

    seeds = [TRACK_SEED + d for d in range(args.duels)]
    rows = []
    for workers in args.workers:
        for threads in args.threads:
            with Duel(duels=args.duels, renderer="fast", workers=workers, threads=threads, device=args.device) as duel:
                rate = measure(lambda duel=duel: timed(duel, args.steps, seeds), args.repeats, warmup=1)
            rows.append({"workers": workers, "threads": threads, "player_steps_per_s": rate})
    return {
        "benchmark": "tournament",
        "device": args.device,
        "quick": args.quick,
        "duels": args.duels,
        "players": 2 * args.duels,
        "renderer": "fast",
        "steps": args.steps,
        "repeats": args.repeats,
        "rows": rows,
    }


def format_table(result: dict) -> str:
    lines = [f"Tournament: {result['duels']} duels ({result['players']} players, fast renderer) on "
             f"{result['device']}: player-steps/s, {result['steps']} steps x {result['repeats']} repeats",
             f"{'workers':>8}{'threads':>9}{'player-steps/s':>16}{'min-max':>18}"]  # fmt: skip
    for r in result["rows"]:
        s = r["player_steps_per_s"]
        lines.append(f"{r['workers']:>8}{r['threads']:>9}{s['median']:>16.0f}{spread(s):>18}")
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
    if args.duels < 1 or args.steps < 1 or args.repeats < 1:
        parser.error("--duels, --steps and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    return run_main(parse_args, run, format_table, argv)


if __name__ == "__main__":
    main()
