"""Tournaments on Ray against the local backend, side by side: player-steps/s and the cost of a task.

    python benchmarks/bench_cluster.py [--tracks 32] [--repeats 3] [--address auto|HOST:PORT] [--out FILE]

Each round races the same --tracks fast-renderer tournament (fp32) three ways: locally in one
process (2 pipelined env workers), locally over one process per core (`--processes`), and
as Ray tasks (`--backend ray`: without --address a local Ray instance on this machine's
cores, i.e. a 1-node cluster). Player-steps/s = 2 x tracks x steps raced / wall time,
setup included (sessions, environments, processes, tasks), as a user waits for it. The
cost of a task: the same one-track race as a Ray task and as a plain call, medians of
--repeats, the difference. The last line printed is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo: engine
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this directory: common

from common import add_output_options, machine_info, refuse_overwrite, stats  # noqa: E402

SEED_START = 2_300_000


def tournament(tracks: int, **kw) -> float:
    from engine.race.tournament import run_tournament

    start = time.perf_counter()
    s = run_tournament(tracks=tracks, seed_start=SEED_START, renderer="fast", device="cpu", precision="fp32", **kw)
    steps = sum(r[f"{p}_step"] for r in s["results"] for p in ("A", "B"))  # player-steps raced
    return steps / (time.perf_counter() - start)


def task_cost(ray, repeats: int) -> dict:
    from engine.race.tournament import race_tracks

    remote = ray.remote(num_cpus=1)(race_tracks)
    plain, on_ray = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        race_tracks([SEED_START], renderer="fast", device="cpu", precision="fp32", workers=0, threads=1)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        ray.get(remote.remote([SEED_START], renderer="fast", device="cpu", precision="fp32", workers=0, threads=1))
        on_ray.append(time.perf_counter() - t)
    return {"plain_s": stats(plain), "ray_s": stats(on_ray),
            "overhead_s": stats([r - p for r, p in zip(on_ray, plain)])}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--tracks", type=int, default=32, help="tracks per tournament (default 32)")
    p.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: a local one on this machine)")
    add_output_options(p)
    args = p.parse_args(argv)
    refuse_overwrite(p, args)
    from engine.race.cluster import connect, status_line

    machine = machine_info()
    ray = connect(args.address, num_cpus=None if args.address else os.cpu_count())
    cores = os.cpu_count() or 1
    ways = {"local, 1 process, 2 pipelined env workers": dict(workers=2, threads=1),
            f"local, {cores} processes": dict(processes=cores),
            "ray": dict(backend="ray")}  # fmt: skip
    rates = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, kw in ways.items():
            rates[name].append(tournament(args.tracks, **kw))
    result = {"benchmark": "cluster", "tracks": args.tracks, "repeats": args.repeats, "cluster": status_line(ray),
              "player_steps_per_s": {k: stats(v) for k, v in rates.items()}, "task": task_cost(ray, args.repeats),
              "machine": machine}  # fmt: skip
    print(f"{args.tracks}-track tournament, fast renderer, fp32; {result['cluster']}")
    for name, s in result["player_steps_per_s"].items():
        print(f"  {name:<44}{s['median']:>8.0f} player-steps/s ({s['min']:.0f}-{s['max']:.0f})")
    t = result["task"]
    print(f"  a one-track race: {t['plain_s']['median']:.2f} s as a call, {t['ray_s']['median']:.2f} s as a Ray task: "
          f"{t['overhead_s']['median']:.2f} s of overhead per task")
    from common import emit

    return emit(result, args.out)


if __name__ == "__main__":
    main()
