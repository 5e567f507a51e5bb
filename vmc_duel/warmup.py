"""`vmc-duel warmup`: compile and check everything a race needs once, for an image build.

A fresh install compiles its numba kernels on the first race (a few seconds here, longer
on an edge board) and writes them to numba's cache (`__pycache__` beside the modules, in
site-packages for a wheel; NUMBA_CACHE_DIR elsewhere). Run on the target device while an
image is built, this does that once, so the image's first race starts warm:

- the shipped weights against their manifest (sha256);
- the race kernels of both renderers (exact and fast), with and without the lookahead (a
  player who looks ahead runs a second compiled signature), by racing a few steps of each;
- one onnxruntime session of every world-model precision the device may choose (CPU: fp32
  and int8; CUDA: fp32 and fp16), the lookahead graph where it runs as ONNX, and the decoder
  of the model view, each run once.

It prints each part and how long it took, and ends with the kernels compiled this time
(0 on a warm install) and where numba keeps them.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from engine.world_model.runtime import DEVICES

KERNEL_MODULES = ("engine.env.raster_exact", "engine.env.render_fast", "engine.world_model.frames",
                  "engine.policy.controller", "engine.policy.risk", "engine.policy.strategy",
                  "engine.policy.imagine", "engine.policy.players")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    """Add `vmc-duel warmup` to the command line."""
    p = sub.add_parser(
        "warmup",
        help="compile the numba kernels and open every ONNX session once (for an image build on the target device)",
        description="Check the shipped weights, race a few steps with each renderer (with and without the lookahead) "
        "so numba compiles and caches every kernel a race runs, and open and run one onnxruntime session of each "
        "world-model precision the device may choose, the lookahead and the decoder. Prints what it did and how "
        "long it took. Run it once where the image is built, on the target device: the first race then starts warm.",
    )
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA when available, default), cpu, cuda")
    p.add_argument("--weights", type=Path, metavar="DIR", default=None,
                   help="weights directory (default: $VMC_DUEL_WEIGHTS, else the shipped weights)")  # fmt: skip
    p.set_defaults(handler=run)


def _timed(label: str, work: Callable[[], str]) -> float:
    start = time.perf_counter()
    detail = work()
    took = time.perf_counter() - start
    print(f"{label:<34}{took:6.2f} s  {detail}", flush=True)
    return took


def _kernels() -> list:
    """Every numba dispatcher of the engine's kernel modules."""
    import importlib

    from numba.core.dispatcher import Dispatcher

    found = []
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        found += [v for v in vars(module).values() if isinstance(v, Dispatcher) and v.__module__ == name]
    return found


def run(args: argparse.Namespace) -> int:
    """Warm this install up; 0 when every part ran (a broken part raises and ends in one line)."""
    import numpy as np

    from engine.race.duel import Duel
    from engine.world_model.manifest import WEIGHTS_DIR, WEIGHTS_SOURCE, load_manifest
    from engine.world_model.runtime import Decoder, WorldModel, make_session, providers_for

    # The exact renderer compiles its kernel here, not in a background process after we exit.
    os.environ["VMC_DUEL_EXACT_KERNEL"] = "inline"
    weights = args.weights or WEIGHTS_DIR
    source = "--weights" if args.weights else WEIGHTS_SOURCE
    start = time.perf_counter()
    manifest: dict = {}

    def check_weights() -> str:
        manifest.update(load_manifest(weights))
        present = [n for n in manifest["files"] if (Path(weights) / n).exists()]
        return f"{len(present)} files match {Path(weights).resolve()}/manifest.json (from {source})"

    _timed("weights (sha256)", check_weights)
    on_cuda = providers_for(args.device)[0] != "CPUExecutionProvider"
    device = "cuda" if on_cuda else "cpu"
    kernels = _kernels()

    def race(renderer: str) -> Callable[[], str]:
        def work() -> str:
            with Duel(renderer=renderer, device=device, weights_dir=weights, max_episode_steps=50) as duel:
                duel.reset(seed=0)
                for _ in range(3):
                    duel.step()
                for player in range(2):  # the signature with the imagined rollout
                    duel.set_knobs(player, {"lookahead_horizon": 2}, where="warmup")
                for _ in range(2):
                    duel.step()
            return f"{renderer} renderer, 5 steps, lookahead 0 and 2"
        return work

    for renderer in ("exact", "fast"):
        _timed(f"race kernels ({renderer})", race(renderer))

    frame = np.zeros((1, 96, 96, 3), np.uint8)
    for precision in ("fp32", "fp16") if on_cuda else ("fp32", "int8"):
        name = "world_model.onnx" if precision == "fp32" else f"world_model.{precision}.onnx"
        if name not in manifest["files"]:
            print(f"{'world model ' + precision:<34}     -  {name} is not in the manifest: skipped", flush=True)
            continue

        def session(precision: str = precision) -> str:
            wm = WorldModel(1, device=device, precision=precision, weights_dir=weights)
            wm.step(frame)
            return f"session on {wm.session.get_providers()[0]}, one step"

        _timed(f"world model {precision}", session)

    def lookahead() -> str:
        return f"session on {make_session(Path(weights) / 'lookahead.onnx', device).get_providers()[0]}"

    def decoder() -> str:
        image = Decoder(device, weights)(np.zeros((1, manifest["sizes"]["z"]), np.float32))
        return f"one frame {'x'.join(map(str, image.shape[1:]))}"

    if on_cuda:  # on the CPU the lookahead is the numba kernel raced above
        _timed("lookahead.onnx", lookahead)
    _timed("decoder (model view)", decoder)

    compiled = sum(sum(k.stats.cache_misses.values()) for k in kernels)
    loaded = sum(sum(k.stats.cache_hits.values()) for k in kernels)
    paths = [k.stats.cache_path for k in kernels if k.stats.cache_path]
    where = os.path.commonpath(paths) if paths else "nowhere: caching is off"
    print(f"numba: {compiled} kernel signatures compiled now, {loaded} loaded from the cache (kept under {where})")
    print(f"warm in {time.perf_counter() - start:.1f} s", flush=True)
    return 0
