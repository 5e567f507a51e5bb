"""Racing environment throughput: stock vs exact vs fast renderer, and vectorised envs.

    python benchmarks/bench_env.py [--steps 300] [--repeats 5] [--quick] [--out FILE | --save]

Each renderer drives the same track with the same actions. Repetitions interleave the
renderers (stock, exact, fast, stock, ...) after one warm-up round, so a noisy
neighbour slows all three alike; the table reports the median steps/s and the spread
(min-max), and the ratios are medians of the per-round ratios, all from this one run.
Then `VecRaceEnv` throughput (environment steps per second, fast renderer) with 1 and 2
worker processes. The last line printed is the whole result as JSON, with the machine it
ran on (CPU model, LLVM's name for it, vector ISA, cores, load); --save writes it to
benchmarks/results/<machine>/env.json, the machine's own directory
(benchmarks/machines.py tabulates every machine's results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("VMC_DUEL_EXACT_KERNEL", "inline")  # time the exact renderer's kernel from the start

from engine import make_env  # noqa: E402
from engine.env.vector_env import VecRaceEnv  # noqa: E402
from engine.hardware import hardware_info  # noqa: E402

RENDERERS = ("stock", "exact", "fast")
TRACK_SEED = 7  # the benchmark track
RESULTS_DIR = Path(__file__).resolve().parent / "results"  # one directory per machine below it


def bench_actions(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) steering sweeps with gas and brake pulses: a drive that visits tiles, leaves
    the road now and then and keeps the camera moving."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    steer = 0.7 * np.sin(t / 15.0 + rng.uniform(0, 6.28))
    gas = ((t % 30) < 22).astype(float)
    brake = np.where((t % 60) >= 56, 0.6, 0.0)
    return np.stack([steer, gas, brake], axis=1)


def time_steps(env, actions: np.ndarray) -> float:
    """Steps per second of `env.step` over `actions`, from a fresh reset (not timed)."""
    env.reset(seed=TRACK_SEED)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset(seed=TRACK_SEED)
    return len(actions) / (time.perf_counter() - start)


def bench_renderers(steps: int, repeats: int) -> dict:
    envs = {name: make_env(name) for name in RENDERERS}
    actions = bench_actions(steps)
    for name in RENDERERS:  # warm-up: numba compile/cache load, fonts, allocations
        time_steps(envs[name], actions[: min(steps, 60)])
    rounds = []
    for _ in range(repeats):
        rounds.append({name: time_steps(envs[name], actions) for name in RENDERERS})
    out = {}
    for name in RENDERERS:
        values = [r[name] for r in rounds]
        out[name] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    for name in ("exact", "fast"):
        out[f"{name}_vs_stock"] = statistics.median(r[name] / r["stock"] for r in rounds)
    return out


def bench_vector(num_envs: int, steps: int, repeats: int, workers_list: list[int]) -> dict:
    out = {}
    actions = bench_actions(steps)
    for workers in workers_list:
        with VecRaceEnv(num_envs, workers=workers, renderer="fast") as vec:
            rates = []
            for rep in range(repeats + 1):  # the first round warms up
                vec.reset([TRACK_SEED + k for k in range(num_envs)])
                start = time.perf_counter()
                for a in actions:
                    vec.step(np.tile(a, (num_envs, 1)))
                if rep:
                    rates.append(num_envs * steps / (time.perf_counter() - start))
        out[f"workers_{workers}"] = {
            "median": statistics.median(rates),
            "min": min(rates),
            "max": max(rates),
        }
    return out


def llvm_cpu() -> str:
    """LLVM's name for this CPU ("znver5", "sapphirerapids", "haswell"): what numba compiles for,
    and a finer name than /proc/cpuinfo's model on some virtual machines ("AMD EPYC")."""
    try:
        from llvmlite import binding as llvm

        return llvm.get_host_cpu_name()
    except Exception:
        return "unknown"


def machine() -> dict:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {**hardware_info(), "llvm_cpu": llvm_cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": load}  # fmt: skip


def machine_slug(info: dict | None = None) -> str:
    """The name of a machine's results directory: CPU model, LLVM's CPU name, cores
    ("amd-epyc-znver5-2core")."""
    info = info or machine()
    name = f"{info['cpu']}-{info.get('llvm_cpu', 'unknown')}-{info['cores']}core"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="env steps per timed run (default 300)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after warm-up (default 5)")
    parser.add_argument("--vec-envs", type=int, default=16, help="environments in the vectorised runs")
    parser.add_argument(
        "--quick", action="store_true", help="a few steps only: a smoke test, not a measurement"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument("--save", action="store_true",
                        help="write the JSON result to benchmarks/results/<machine>/env.json")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)
    if args.save:
        if args.out:
            parser.error("--out and --save: give one")
        args.out = RESULTS_DIR / machine_slug() / "env.json"
    if args.out and args.out.exists() and not args.force:
        parser.error(f"{args.out} exists; pass --force to overwrite it")
    if args.quick:
        args.steps, args.repeats, args.vec_envs = 20, 1, 2
    if args.steps < 1 or args.repeats < 1 or args.vec_envs < 1:
        parser.error("--steps, --repeats and --vec-envs must be at least 1")

    result = {
        "benchmark": "env",
        "machine": machine(),
        "steps": args.steps,
        "repeats": args.repeats,
        "quick": args.quick,
        "renderers": bench_renderers(args.steps, args.repeats),
        "vector": {
            "num_envs": args.vec_envs,
            **bench_vector(args.vec_envs, args.steps, args.repeats, [1, 2]),
        },
    }
    r = result["renderers"]
    m = result["machine"]
    print(f"{m['cpu']} ({m['llvm_cpu']}), {m['cores']} cores, {m['vector_isa']}; load average {m['load_average']}")
    print(f"{'renderer':<10}{'steps/s (median)':>18}{'min-max':>20}{'vs stock':>10}")
    for name in RENDERERS:
        ratio = 1.0 if name == "stock" else r[f"{name}_vs_stock"]
        spread = f"{r[name]['min']:.0f}-{r[name]['max']:.0f}"
        print(f"{name:<10}{r[name]['median']:>18.0f}{spread:>20}{ratio:>9.2f}x")
    v = result["vector"]
    print(f"\nVecRaceEnv, {v['num_envs']} fast envs: env steps/s")
    for workers in (1, 2):
        w = v[f"workers_{workers}"]
        label = f"{workers} worker{'s' if workers > 1 else ' '}"
        print(f"  {label}  {w['median']:>8.0f}  ({w['min']:.0f}-{w['max']:.0f})")
    line = json.dumps(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")
    print(line)
    return result


if __name__ == "__main__":
    main()
