"""Tournaments: A against B on many tracks, every duel batched, with statistics.

Each track is one duel (both cars on the same seed, identical conditions); all duels of a
batch step together (2N players in one onnxruntime call, environments across worker
processes). Reported per controller: reward and off-track time, mean +- std over tracks;
and A's win rate (a draw counts half) with a 95% Wilson score interval.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.env.racing_env import MAX_EPISODE_STEPS
from engine.files import save_figure, write_atomic, write_error
from engine.hardware import hardware_info
from engine.policy.knobs import Knobs
from engine.progress import point
from engine.race.duel import PLAYERS, Duel
from engine.world_model.manifest import WEIGHTS_DIR

BACKENDS = ("local", "ray")  # where the batches run: this machine, or a Ray cluster
HELD_OUT_SEED_START = 1_000_000  # tournament tracks: never used by collection, training or evaluation
Z95 = 1.959964  # two-sided 95% normal quantile


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (successes may be fractional: draws count half)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def processes_for(value: str, tracks: int) -> int:
    """--processes N|auto -> N. auto: one per core when there are at least 8 tracks per core, else 1."""
    cores = os.cpu_count() or 1
    if value == "auto":
        return cores if cores > 1 and tracks >= 8 * cores else 1
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise ValueError(f"--processes {value!r}: give a whole number of at least 1, or auto")


def race_tracks(seeds: list[int], controllers: tuple[Path, Path] | None = None,
                knobs: tuple[Knobs, Knobs] | None = None, renderer: str = "exact", weather: str = "clear",
                device: str = "auto", precision: str = "auto", workers: int = 2, threads: int = 2,
                on_step: Callable[[int], None] | None = None, weights_dir: Path = WEIGHTS_DIR,
                max_steps: int = MAX_EPISODE_STEPS,
                controller_names: tuple[str, str] | None = None) -> tuple[list[dict], list[dict], str]:  # fmt: skip
    """One batch of duels, one per track of `seeds`, raced together to the end (pipelined over
    2+ env workers) or to `max_steps`. Returns (per-track results, each controller's
    ControllerInfo.as_dict(), precision used)."""
    with Duel(controllers=controllers, knobs=list(knobs) if knobs else None, renderer=renderer, weather=weather,
              device=device, precision=precision, duels=len(seeds), workers=workers, threads=threads,
              weights_dir=weights_dir, max_episode_steps=max_steps,
              controller_names=controller_names) as duel:  # fmt: skip
        duel.reset(seeds)
        duel.run(on_step=on_step)
        info = [i.as_dict() for i in duel.controller_info]
        return [duel.result(d) for d in range(len(seeds))], info, duel.players.world.precision


JOURNAL = "tournament.journal.jsonl"  # in --out while a tournament runs; removed once its results are written


class Journal:
    """The finished tracks of a tournament, on disk as they finish: a header line with the settings that decide
    the results (tracks, seeds, renderer, weather, knobs, controller and manifest sha256, device, precision,
    steps), then one JSON line per finished track, appended and fsynced after each batch. A rerun of the same
    tournament continues from it (its results are the same: every track's race is independent of its batch);
    a journal of other settings is refused (ValueError: --force starts over). A line cut short by a kill is
    dropped and that track raced again."""

    def __init__(self, path: Path, settings: dict[str, Any], force: bool = False):
        self.path, self.settings = Path(path), json.loads(json.dumps(settings))  # as it reads back
        self.done: dict[int, dict] = {}
        self.meta: list[dict] | None = None
        self.precision: str | None = None
        if force and self.path.exists():
            self.path.unlink()
        if not self.path.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise write_error(self.path.parent, e) from None
            write_atomic(self.path, json.dumps({"settings": self.settings}) + "\n")
            return
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # the last line, cut short by a kill
                break
        if not records or records[0].get("settings") != self.settings:
            raise ValueError(f"{self.path}: the journal of a tournament with other settings (tracks, seeds, knobs, "
                             "controllers, renderer, ...): pass --force to start over")  # fmt: skip
        for r in records[1:]:
            self.done[r["result"]["seed"]] = r["result"]
            self.meta, self.precision = r["meta"], r["precision"]
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in records))  # without a torn last line

    def record(self, results: list[dict], meta: list[dict], precision: str) -> None:
        """Append finished tracks (each a `Duel.result`), flushed to the disk before returning."""
        lines = "".join(json.dumps({"result": r, "meta": meta, "precision": precision}) + "\n" for r in results)
        try:
            with open(self.path, "a") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise write_error(self.path, e) from None
        for r in results:
            self.done[r["seed"]] = r
        self.meta, self.precision = meta, precision


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"unreadable {path}"  # the duel names the problem when it loads the file


def journal_settings(seeds: list[int], renderer: str, weather: str, knobs: tuple[Knobs, Knobs] | None,
                     controllers: tuple[Path, Path] | None, device: str, precision: str, weights_dir: Path,
                     max_steps: int) -> dict[str, Any]:  # fmt: skip
    """What decides a tournament's per-track results: a journal only continues a tournament with these."""
    paths = controllers or tuple(Path(weights_dir) / f"controller{name}.npz" for name in PLAYERS)
    return {"seeds": [seeds[0], seeds[-1]], "renderer": renderer, "weather": weather,
            "knobs": [k.nested() for k in knobs] if knobs else None,
            "controllers": [_sha256(p) for p in paths], "manifest": _sha256(Path(weights_dir) / "manifest.json"),
            "device": device, "precision": precision, "max_steps": max_steps}  # fmt: skip


def run_tournament(
    tracks: int = 100,
    seed_start: int = HELD_OUT_SEED_START,
    renderer: str = "exact",
    weather: str = "clear",
    knobs: tuple[Knobs, Knobs] | None = None,
    controllers: tuple[Path, Path] | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch: int = 50,
    workers: int = 2,
    threads: int = 2,
    processes: int = 1,
    on_step: Callable[[int, int], None] | None = None,
    weights_dir: Path = WEIGHTS_DIR,
    backend: str = "local",
    max_steps: int = MAX_EPISODE_STEPS,
    controller_names: tuple[str, str] | None = None,
    journal: Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Race A against B on tracks seed_start .. seed_start + tracks - 1, `batch` duels at a
    time. With `processes` > 1 the tracks are shared out over that many processes, each
    racing its batches with in-process environments and one onnxruntime thread (each car's
    race is the same whatever batch or process it is in). on_step(done_steps, total_steps)
    reports progress. backend "ray": the batches are Ray tasks on the cluster joined with
    engine.race.cluster.connect (see there). controllers: files for A and B (default weights_dir's),
    called `controller_names` in the summary (default: the files' stems); max_steps: each race's time
    limit (CarRacing-v3: 1000; shorter for tests). journal: a `Journal` file recording each finished
    track; a rerun continues where it stopped (force: start over). Returns the summary with per-track results."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if tracks < 1 or batch < 1 or processes < 1:
        raise ValueError(f"tracks, batch and processes must be at least 1, got {tracks}, {batch} and {processes}")
    seeds = list(range(seed_start, seed_start + tracks))
    common = dict(controllers=controllers, knobs=knobs, renderer=renderer, weather=weather, device=device,
                  precision=precision, weights_dir=weights_dir, max_steps=max_steps,
                  controller_names=controller_names)  # fmt: skip
    book = None
    if journal is not None:
        book = Journal(journal, journal_settings(seeds, renderer, weather, knobs, controllers, device, precision,
                                                 weights_dir, max_steps), force=force)  # fmt: skip
    finished: dict[int, dict] = dict(book.done) if book else {}
    meta, precision_used = (book.meta, book.precision) if book and book.meta else (None, precision)
    todo = [s for s in seeds if s not in finished]

    def keep(res: list[dict], m: list[dict], p: str) -> None:
        nonlocal meta, precision_used
        if book is not None:
            book.record(res, m, p)
        finished.update((r["seed"], r) for r in res)
        meta, precision_used = m, p
        point("tournament:tracks", done=len(finished))

    total, done = tracks * max_steps, max_steps * len(finished)
    if on_step is not None and done:
        on_step(done, total)
    start = time.perf_counter()
    if not todo:
        pass
    elif backend == "ray":
        from engine.race.cluster import race_on_ray

        keep(*race_on_ray(todo, batch, race_tracks, common,
                          on_batch=None if on_step is None else (lambda n: on_step(done + max_steps * n, total))),
             )  # fmt: skip
    elif processes == 1:
        for lo in range(0, len(todo), batch):
            chunk = todo[lo : lo + batch]

            def progress(k: int, base: int = done, size: int = len(chunk)) -> None:
                if on_step is not None:
                    on_step(base + k * size, total)

            keep(*race_tracks(chunk, **common, workers=workers, threads=threads, on_step=progress))
            done += max_steps * len(chunk)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        size = min(batch, math.ceil(len(todo) / processes))
        chunks = [todo[lo : lo + size] for lo in range(0, len(todo), size)]
        with ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn"), initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:  # fmt: skip
            futures = {pool.submit(race_tracks, chunk, **common, workers=0, threads=1): k
                       for k, chunk in enumerate(chunks)}  # fmt: skip
            for future in as_completed(futures):
                keep(*future.result())
                done += max_steps * len(chunks[futures[future]])
                if on_step is not None:
                    on_step(done, total)
    results = [finished[s] for s in seeds]
    wall = time.perf_counter() - start
    summary = summarise(results, meta, renderer, weather, wall)
    summary["precision"] = precision_used
    summary["processes"] = processes
    summary["backend"] = backend
    summary["max_steps"] = max_steps
    summary["resumed_tracks"] = tracks - len(todo)  # finished in an earlier, interrupted run (from the journal)
    summary["hardware"] = hardware_info()  # races transfer across CPUs only as means (docs/determinism.md)
    return summary


PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies


def die_with_parent(parent: int) -> None:
    """A pool worker's initializer: end when the tournament's process does. A parent killed by a
    signal (SIGTERM, SIGKILL) skips the pool's shutdown, and its workers would drive their batch
    to the end for no one. Linux only (prctl); elsewhere a worker ends when it next hears from
    the pool."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took hold
        os._exit(1)


def summarise(results: list[dict], meta: list[dict], renderer: str, weather: str, wall: float) -> dict[str, Any]:
    n = len(results)
    players = {}
    for k, name in enumerate(PLAYERS):
        reward = np.array([r["players"][name]["reward"] for r in results])
        off = np.array([r["players"][name]["off_track_seconds"] for r in results])
        # a journal from before these figures existed (a resumed tournament) has none: NaN, not a crash
        weave = np.array([r["players"][name].get("weave", np.nan) for r in results])
        speed = np.array([r["players"][name].get("mean_speed", np.nan) for r in results])
        players[name] = {
            "reward_mean": float(reward.mean()), "reward_std": float(reward.std()),
            "off_track_seconds_mean": float(off.mean()), "off_track_seconds_std": float(off.std()),
            "weave_mean": float(weave.mean()), "weave_std": float(weave.std()),
            "mean_speed_mean": float(speed.mean()), "mean_speed_std": float(speed.std()),
            "laps_finished": int(sum(r["players"][name]["lap_finished"] for r in results)),
            "controller": "PLACEHOLDER" if meta[k].get("placeholder") else str(meta[k].get("method", "trained")),
            "controller_file": meta[k],
        }  # fmt: skip
    wins = sum(r["winner"] == "A" for r in results)
    losses = sum(r["winner"] == "B" for r in results)
    draws = n - wins - losses
    lo, hi = wilson_interval(wins + 0.5 * draws, n)
    return {
        "tracks": n, "seeds": [results[0]["seed"], results[-1]["seed"]], "renderer": renderer, "weather": weather,
        "players": players, "a_wins": wins, "b_wins": losses, "draws": draws,
        "a_win_rate": (wins + 0.5 * draws) / n, "a_win_rate_ci95": [lo, hi], "wall_seconds": wall,
        "results": [{"seed": r["seed"], "winner": r["winner"],
                     **{f"{p}_{key}": r["players"][p][key] for p in PLAYERS
                        for key in ("reward", "off_track_seconds", "tiles_percent", "lap_finished", "step", "weave",
                                    "mean_speed") if key in r["players"][p]}}
                    for r in results],
    }  # fmt: skip


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"Tournament: {s['tracks']} tracks (seeds {s['seeds'][0]}-{s['seeds'][1]}), renderer {s['renderer']}, "
             f"{s['weather']}, {s.get('precision', 'fp32')}, {s['wall_seconds']:.0f} s",
             f"{'':12s}{'reward':>18s}{'off track (s)':>18s}{'weave (/s)':>16s}{'speed (m/s)':>12s}{'laps':>7s}"
             "  controller"]  # fmt: skip
    for name in PLAYERS:
        p = s["players"][name]
        lines.append(f"{name:12s}{p['reward_mean']:9.1f} +- {p['reward_std']:5.1f}"
                     f"{p['off_track_seconds_mean']:9.2f} +- {p['off_track_seconds_std']:5.2f}"
                     f"{p.get('weave_mean', float('nan')):8.2f} +- {p.get('weave_std', float('nan')):4.2f}"
                     f"{p.get('mean_speed_mean', float('nan')):12.1f}"
                     f"{p['laps_finished']:7d}  {p['controller_file']['label']}")  # fmt: skip
    lo, hi = s["a_win_rate_ci95"]
    lines.append(f"A wins {s['a_wins']}, B wins {s['b_wins']}, draws {s['draws']}: A's win rate "
                 f"{100 * s['a_win_rate']:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}%)")  # fmt: skip
    return "\n".join(lines)


def write_outputs(s: dict[str, Any], out: Path, force: bool = False) -> list[Path]:
    """tournament.json and, with matplotlib installed, tournament.png (reward histograms) in `out`."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(out, e) from None
    paths = [out / "tournament.json", out / "tournament.png"]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise ValueError(f"{', '.join(map(str, existing))} already exist: pass --force to replace them")
    write_atomic(paths[0], json.dumps(s, indent=1) + "\n")
    try:
        import matplotlib
    except ModuleNotFoundError:
        print("no PNG: matplotlib is not installed (pip install matplotlib)")
        return paths[:1]
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(min(-100, min(r[f"{p}_reward"] for r in s["results"] for p in PLAYERS)), 1000, 28)
    for k, name in enumerate(PLAYERS):
        p = s["players"][name]
        ax.hist([r[f"{name}_reward"] for r in s["results"]], bins=bins, alpha=0.55, color=f"C{k}",
                label=f"{name}: {p['reward_mean']:.0f} +- {p['reward_std']:.0f}")  # fmt: skip
    ax.axvline(900, color="grey", ls="--", lw=0.8)
    lo, hi = s["a_win_rate_ci95"]
    ax.set_title(f"{s['tracks']} tracks, {s['renderer']} renderer, {s['weather']}: "
                 f"A wins {100 * s['a_win_rate']:.0f}% ({100 * lo:.0f}-{100 * hi:.0f}%)")  # fmt: skip
    ax.set_xlabel("episode reward")
    ax.set_ylabel("tracks")
    ax.legend()
    fig.tight_layout()
    try:
        save_figure(fig, paths[1], dpi=100)
    finally:
        plt.close(fig)
    return paths
