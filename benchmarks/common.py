"""Shared helpers of the benchmark scripts: timing with warm-up and repeats, machine facts, real frames.

    from common import interleaved, machine_info, measure, real_frames, stats

Not a benchmark itself. Every measurement here is a *rate* (units per second): a timed
callable returns one, a warm-up call's value is thrown away, and `stats` reduces the
repeats to their median and spread (min-max). `interleaved` runs several callables in
rounds (a, b, c, a, b, c, ...) so that a noisy neighbour slows them all alike; ratios
between them are then the medians of the per-round ratios.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench_env import TRACK_SEED, bench_actions  # noqa: E402  (same track and drive as the env benchmark)

from engine.hardware import hardware_info, package_version  # noqa: E402

LIBRARIES = ("numpy", "onnxruntime", "onnxruntime-gpu", "numba", "gymnasium", "torch", "matplotlib")
NVIDIA_SMI_TIMEOUT = 10  # s


def stats(values: Iterable[float]) -> dict:
    """{"median", "min", "max", "n"} of the repeats' values."""
    values = list(values)
    if not values:
        raise ValueError("stats of no values")
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def spread(s: dict, fmt: str = "{:.0f}") -> str:
    """The spread of a `stats` dict as "min-max", each formatted with `fmt`."""
    return f"{fmt.format(s['min'])}-{fmt.format(s['max'])}"


def measure(fn: Callable[[], float], repeats: int, warmup: int = 1) -> dict:
    """`warmup` untimed calls of fn, then `repeats` calls; fn returns a rate. -> `stats` of the rates."""
    for _ in range(warmup):
        fn()
    return stats(fn() for _ in range(repeats))


def interleaved(fns: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> tuple[dict, list[dict]]:
    """Rounds of every fn in turn: `warmup` rounds thrown away, then `repeats` kept.

    Returns ({name: stats of its rates}, [{name: rate} per kept round])."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    rounds = [{name: fn() for name, fn in fns.items()} for _ in range(repeats)]
    return {name: stats(r[name] for r in rounds) for name in fns}, rounds


def median_ratio(rounds: list[dict], num: str, den: str) -> float:
    """Median over rounds of rounds[k][num] / rounds[k][den]: a ratio measured side by side."""
    return statistics.median(r[num] / r[den] for r in rounds)


def real_frames(steps: int, seed: int = TRACK_SEED) -> np.ndarray:
    """(steps, 96, 96, 3) uint8: what a car sees driving the benchmark drive on the fast renderer
    (road, grass, kerbs, the dashboard), so the models see real-looking frames, not noise."""
    from engine import make_env

    env = make_env("fast")
    try:
        obs, _ = env.reset(seed=seed)
        frames = [obs]
        for a in bench_actions(steps - 1):
            obs, _, terminated, truncated, _ = env.step(a)
            frames.append(obs)
            if terminated or truncated:
                obs, _ = env.reset(seed=seed)
    finally:
        env.close()
    return np.stack(frames)


def _gpus() -> list[str]:
    """GPU names from nvidia-smi, when it is installed and answers."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _versions() -> dict:
    """Installed versions (without importing the packages: torch takes seconds to import)."""
    installed = {name: package_version(name) for name in LIBRARIES}
    return {"python": platform.python_version(), **{k: v for k, v in installed.items() if v}}


def machine_info() -> dict:
    """CPU model and vector extensions (engine.hardware), cores, GPUs, onnxruntime providers,
    library versions, load and date."""
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        providers = []
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        **hardware_info(),  # cpu, arch, vector_isa, vector_extensions, onnxruntime
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_average": load,  # 1, 5, 15 min at the start: a busy machine reads low
        "gpus": _gpus(),
        "onnxruntime_providers": providers,
        "platform": platform.platform(),
        "versions": _versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def int_list(minimum: int = 1) -> Callable[[str], list[int]]:
    """An argparse type: "1,2,8" -> [1, 2, 8], each at least `minimum`."""

    def parse(text: str) -> list[int]:
        try:
            values = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"expected integers of at least {minimum}, got {text!r}")
        return values

    return parse


def check_device(parser, device: str) -> None:
    """parser.error (exit 2) when --device cuda is asked of an onnxruntime without CUDA."""
    if device != "cuda":
        return
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        parser.error("--device cuda: this onnxruntime has no CUDA provider "
                     "(pip uninstall -y onnxruntime && pip install onnxruntime-gpu)")  # fmt: skip


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `path` through a temp file, fsync and a rename: never a half-written result (engine.files)."""
    from engine.files import write_atomic as atomic

    atomic(path, data)


def add_output_options(p: argparse.ArgumentParser) -> None:
    """--out and --force, the same in every benchmark script."""
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def refuse_overwrite(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.out and args.out.exists() and not args.force:
        parser.error(f"{args.out} exists; pass --force to overwrite it")


def emit(result: dict, out: Path | None) -> dict:
    """Print the result as one JSON line (the scripts' last line) and write it to `out`."""
    line = json.dumps(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(line + "\n")
    print(line)
    return result


def run_main(parse_args: Callable, run: Callable, format_table: Callable, argv: list[str] | None) -> dict:
    """Parse, take the machine's description (before the run: its load average says how
    busy the machine was), run, print the table, emit the JSON."""
    args = parse_args(argv)
    machine = machine_info()
    result = {**run(args), "machine": machine}
    print(format_table(result))
    return emit(result, args.out)
