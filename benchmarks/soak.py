"""Soak: many duels back to back, watching the process for leaks.

    python benchmarks/soak.py [--duels 10000] [--steps 100] [--batch 10] [--workers 2] [--sample-every 500]
                              [--baseline 1000] [--fresh-every 1000] [--out-dir benchmarks/results/soak] [--force]

Races `duels` duels of the shipped controllers (fast renderer, `batch` duels stepped together over `workers`
environment worker processes, each duel cut at `steps` steps unless both cars end before), every duel on a new
track; every 100 steps each player's knobs jump to random values within configs/bounds.yaml. Every
`fresh-every` duels the Duel (its workers and shared memory) is closed and a new one built, so creation and
teardown are soaked too.

Every `sample-every` duels it samples: this process's RSS, the RSS of all its child processes, open file
descriptors, shared-memory segments mapped (by it and its workers), threads (native, from /proc) and child
processes. It fails (exit status 1) when, from the sample at `baseline` duels to the last, RSS grows more than
5% (this process, or with its children) or any count grows. Writes soak.json (every sample) and soak.png (the
curves) to --out-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from engine.hardware import hardware_info  # noqa: E402

RSS_GROWTH_LIMIT = 0.05  # RSS may grow at most 5% from the baseline sample to the last
KNOB_EVERY = 100  # steps between random knob changes
SEED_START = 2_000_000  # soak tracks: never trained on, above the tournament's held-out seeds
PAGE = os.sysconf("SC_PAGE_SIZE")  # bytes


def _rss(pid: int | str) -> int:
    """Resident set size of process `pid` in bytes (0 if it has gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError):
        return 0


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except FileNotFoundError:
                continue
            found += kids
            todo += kids
    return found


def _shm_mapped(pid: int) -> set[str]:
    """The /dev/shm segments process `pid` has mapped (this soak's own, not the machine's)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return {line.split(maxsplit=5)[-1].strip() for line in f if "/dev/shm/" in line}
    except FileNotFoundError:
        return set()


def sample(duels: int, started: float) -> dict:
    """One sample of this process's resources (and its children's RSS)."""
    me = os.getpid()
    kids = _children(me)
    with open(f"/proc/{me}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    rss, rss_children = _rss(me) / 2**20, sum(_rss(k) for k in kids) / 2**20
    return {
        "duels": duels, "seconds": time.perf_counter() - started,
        "rss_mb": rss, "rss_children_mb": rss_children, "rss_total_mb": rss + rss_children,
        "fds": len(os.listdir(f"/proc/{me}/fd")), "threads": threads, "children": len(kids),
        "shm_segments": len(set().union(*(_shm_mapped(p) for p in [me, *kids]))),
    }  # fmt: skip


def leaks(samples: list[dict], baseline: int) -> list[str]:
    """What grew from the first sample at >= `baseline` duels to the last (empty: nothing)."""
    base = next((s for s in samples if s["duels"] >= baseline), None)
    last = samples[-1]
    if base is None or base is last:
        return [f"no sample after the baseline of {baseline} duels to compare with"]
    found = []
    for key, label in (("rss_mb", "RSS"), ("rss_total_mb", "RSS with children")):
        a, b = base[key], last[key]
        if b > a * (1 + RSS_GROWTH_LIMIT):
            found.append(f"{label} grew {100 * (b / a - 1):.1f}% ({a:.0f} -> {b:.0f} MB) from duel "
                         f"{base['duels']} to {last['duels']} (limit {100 * RSS_GROWTH_LIMIT:.0f}%)")  # fmt: skip
    for key in ("fds", "threads", "children", "shm_segments"):
        if last[key] > base[key]:
            found.append(f"{key} grew from {base[key]} to {last[key]} (duel {base['duels']} to {last['duels']})")
    return found


def random_knobs(bounds, rng: np.random.Generator) -> dict[str, float | int]:
    """Every knob at a uniform random value within its bounds."""
    out = {}
    for name, spec in bounds.knobs.items():
        if spec.type is int:
            out[name] = int(rng.integers(int(spec.min), int(spec.max) + 1))
        else:
            out[name] = float(rng.uniform(spec.min, spec.max))
    return out


def soak(duels: int, steps: int, batch: int, workers: int, sample_every: int, fresh_every: int,
         seed: int = 0, progress: bool = True, on_sample=None) -> list[dict]:  # fmt: skip
    """Race `duels` duels as described in the module docstring; returns the samples (each also given to
    on_sample(samples) as it is taken)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.race.duel import Duel

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    samples = [sample(0, started)]
    done, duel = 0, None
    columns = (TextColumn("soak"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())  # fmt: skip
    try:
        with Progress(*columns, disable=not progress, transient=True) as bar:
            task = bar.add_task("", total=duels, info="")
            while done < duels:
                if duel is None:
                    duel = Duel(renderer="fast", duels=batch, workers=workers, threads=1, device="cpu",
                                max_episode_steps=steps)  # fmt: skip
                n = min(batch, duels - done)
                duel.reset([SEED_START + done + d for d in range(batch)])
                raced = 0
                while not duel.finished and raced < steps:
                    for p in range(2 * batch):
                        duel.set_knobs(p, random_knobs(duel.bounds, rng), where="soak")
                    raced += duel.run(steps=min(KNOB_EVERY, steps - raced))
                before, done = done, done + n
                if done // sample_every > before // sample_every or done == duels:  # always with a Duel open
                    samples.append(sample(done, started))
                    s = samples[-1]
                    if on_sample is not None:
                        on_sample(samples)
                    bar.console.print(f"{done:6d} duels {s['seconds']:6.0f} s  RSS {s['rss_mb']:6.1f} MB "
                                      f"(with workers {s['rss_total_mb']:6.1f} MB)  fds {s['fds']}  threads "
                                      f"{s['threads']}  children {s['children']}  shm {s['shm_segments']}")  # fmt: skip
                if done // fresh_every > before // fresh_every:
                    duel.close()
                    duel = None
                bar.update(task, completed=done, info=f"RSS {samples[-1]['rss_mb']:.0f} MB")
    finally:
        if duel is not None:
            duel.close()
    return samples


def plot(samples: list[dict], path: Path, baseline: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["duels"] for s in samples]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    ax.plot(x, [s["rss_mb"] for s in samples], "o-", label="this process")
    ax.plot(x, [s["rss_total_mb"] for s in samples], "s-", label="with its env workers")
    ax.axvline(baseline, color="grey", ls="--", lw=0.8, label=f"baseline ({baseline} duels)")
    base = next((s for s in samples if s["duels"] >= baseline), samples[-1])
    ax.axhline(base["rss_mb"] * (1 + RSS_GROWTH_LIMIT), color="C0", ls=":", lw=0.8, label="+5% limit")
    ax.set_xlabel("duels raced")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    for key in ("fds", "threads", "children", "shm_segments"):
        ax2.plot(x, [s[key] for s in samples], "o-", label=key)
    ax2.set_xlabel("duels raced")
    ax2.set_ylabel("count")
    ax2.legend(fontsize=8)
    ax2.set_title("open files, threads, worker processes, /dev/shm segments", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " See the module docstring for the checks.")
    p.add_argument("--duels", type=int, default=10_000, help="duels to race (default 10000)")
    p.add_argument("--steps", type=int, default=100, help="steps per duel at most (default 100)")
    p.add_argument("--batch", type=int, default=10, help="duels raced together (default 10)")
    p.add_argument("--workers", type=int, default=2, help="environment worker processes (default 2)")
    p.add_argument("--sample-every", type=int, default=500, help="duels between samples (default 500)")
    p.add_argument("--baseline", type=int, default=1000,
                   help="growth is measured from the sample at this many duels (default 1000)")  # fmt: skip
    p.add_argument("--fresh-every", type=int, default=1000,
                   help="duels between closing the Duel and building a new one (default 1000)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the random knob values (default 0)")
    p.add_argument("--out-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "soak",
                   help="where soak.json and soak.png go (default benchmarks/results/soak)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace soak.json and soak.png in --out-dir")
    args = p.parse_args(argv)
    for name in ("duels", "steps", "batch", "sample_every", "fresh_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.workers < 0:
        p.error(f"--workers must be 0 or more, got {args.workers}")
    if not 0 <= args.baseline < args.duels:
        p.error(f"--baseline must be in 0..{args.duels - 1} (below --duels), got {args.baseline}")
    if not 0 <= args.seed < 2**32:
        p.error(f"--seed must be in 0..{2**32 - 1}, got {args.seed}")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        p.error(f"--out-dir {args.out_dir} is a file, not a directory")
    existing = [args.out_dir / n for n in ("soak.json", "soak.png") if (args.out_dir / n).exists()]
    if existing and not args.force:
        p.error(f"{', '.join(map(str, existing))} already exist: pass --force to replace them")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from engine.files import write_atomic

    args.out_dir.mkdir(parents=True, exist_ok=True)
    partial = args.out_dir / "soak.partial.json"  # the samples so far, should the run be cut short

    def keep(samples: list[dict]) -> None:
        write_atomic(partial, json.dumps({"samples": samples}) + "\n")

    samples = soak(args.duels, args.steps, args.batch, args.workers, args.sample_every, args.fresh_every, args.seed,
                   on_sample=keep)  # fmt: skip
    partial.unlink(missing_ok=True)
    problems = leaks(samples, args.baseline)
    base = next((s for s in samples if s["duels"] >= args.baseline), samples[-1])
    result = {
        "duels": args.duels, "steps_per_duel": args.steps, "batch": args.batch, "workers": args.workers,
        "renderer": "fast", "knob_change_every_steps": KNOB_EVERY, "fresh_duel_every": args.fresh_every,
        "baseline_duels": args.baseline, "wall_seconds": samples[-1]["seconds"],
        "rss_growth_percent": 100 * (samples[-1]["rss_mb"] / base["rss_mb"] - 1),
        "rss_total_growth_percent": 100 * (samples[-1]["rss_total_mb"] / base["rss_total_mb"] - 1),
        "leaks": problems, "ok": not problems, "samples": samples, "hardware": hardware_info(),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
    }  # fmt: skip
    write_atomic(args.out_dir / "soak.json", json.dumps(result, indent=1) + "\n")
    plot(samples, args.out_dir / "soak.png", args.baseline,
         f"{args.duels} duels of <= {args.steps} steps, fast renderer, {args.batch} at once, "
         f"{args.workers} workers, knobs random every {KNOB_EVERY} steps")  # fmt: skip
    print(f"{args.duels} duels in {result['wall_seconds']:.0f} s; RSS {base['rss_mb']:.1f} MB at {base['duels']} "
          f"duels -> {samples[-1]['rss_mb']:.1f} MB ({result['rss_growth_percent']:+.1f}%), with workers "
          f"{result['rss_total_growth_percent']:+.1f}%; wrote {args.out_dir / 'soak.json'}, soak.png")  # fmt: skip
    for line in problems:
        print(f"soak: leak: {line}", file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
