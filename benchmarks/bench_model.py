"""World-model step throughput and latency by batch size, precision and IOBinding, against the FLOP limit.

    python benchmarks/bench_model.py [--device cpu|cuda] [--batches 1,2,8,64,256,1024] [--precisions fp32,int8]
                                     [--threads 1,N] [--repeats 5] [--peak-flops 96e9] [--quick] [--out FILE]

`engine.world_model.runtime.WorldModel(B, device, precision, threads, io_binding)` steps B players at
once on real-looking frames (a drive on the fast renderer, tiled over the batch; every
step sees the next frame). For each precision, thread count and batch size, the runs with
and without IOBinding interleave (no-binding, binding, no-binding, ...) after a warm-up
round; the table gives the median player-steps/s with its spread (min-max), the latency
of one batched step, and the binding's gain as the median of the per-round ratios.

FLOP limit: the FLOP of one player-step are counted from the layer shapes (preprocessing
MatMuls, the VAE encoder's four convolutions and its mean layer, one LSTM cell step, the
heads; element-wise work not counted) and set against --peak-flops per core. The default,
96e9, is one 512-bit FMA per cycle (16 float32 lanes x 2 FLOP) at 3.0 GHz: an AVX-512 core
with one FMA unit (two FMA units or a higher clock: pass your own). The best fp32 row's
achieved GFLOP/s per core (GFLOP/s / threads) and its fraction of the limit are printed.
int8 rows count the same operations (not floating point: the fraction is only indicative).
The last line printed is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo: engine, train
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this directory: common, bench_env

from common import (  # noqa: E402
    add_output_options,
    check_device,
    int_list,
    interleaved,
    median_ratio,
    real_frames,
    refuse_overwrite,
    run_main,
    spread,
    stats,
)

from engine.world_model.frames import COLS, ROWS  # noqa: E402  (the area resize's weights)
from engine.world_model.manifest import load_manifest  # noqa: E402

CPU_BATCHES = (1, 2, 8, 64, 256, 1024)  # players per step
CUDA_BATCHES = (*CPU_BATCHES, 4096, 16384)
CPU_PRECISIONS = ("fp32", "int8")
CUDA_PRECISIONS = ("fp32", "fp16", "int8")
PEAK_FLOPS_PER_CORE = 96e9  # FLOP/s: 16 float32 lanes x 2 (FMA) x 1 FMA unit x 3.0 GHz (AVX-512)
PLAYER_STEPS_PER_REPEAT = 2048  # player-steps timed per repeat (steps = this / batch, within the bounds below)
MIN_STEPS, MAX_STEPS = 3, 400  # batched steps per timed repeat
FRAMES = 300  # env steps driven for the frame pool
FRAME_OFFSETS = 16  # distinct frame windows: step k sees frames k .. k + B - 1 (mod the pool)
VAE_FILTERS = (32, 64, 128, 256)  # encoder convolutions of train.models.VAE: 4x4, stride 2, ReLU
VAE_KERNEL, VAE_STRIDE = 4, 2
QUICK = {"batches": (1, 8), "threads": (1,), "repeats": 1, "frames": 40, "min_steps": 2, "max_steps": 3}


def flop_per_player_step(sizes: dict) -> dict:
    """FLOP (2 per multiply-add) of one world-model step for one player, by part, from the shapes.

    sizes: weights/manifest.json "sizes" (obs, frame, z, action, hidden, gaussians)."""
    obs_side, channels = sizes["obs"][1], sizes["obs"][2]  # 96, 3
    side = sizes["frame"][0]  # 64
    z, a, hidden, k = sizes["z"], sizes["action"], sizes["hidden"], sizes["gaussians"]
    # Area resize (engine.world_model.frames), only the non-zero weights: each of the 64 output rows
    # sums 2-3 input rows of 96 pixels, then each output pixel 2 of those columns, per channel.
    preprocess = 2 * channels * (int(np.count_nonzero(ROWS)) * obs_side + side * int(np.count_nonzero(COLS)))
    encoder, cin, n = 0, channels, side
    for cout in VAE_FILTERS:
        n = (n - VAE_KERNEL) // VAE_STRIDE + 1  # 31, 14, 6, 2
        encoder += 2 * n * n * cout * cin * VAE_KERNEL * VAE_KERNEL
        cin = cout
    flat = n * n * cin  # 1024
    mean = 2 * flat * z  # fc_mu (logvar is not used at inference)
    lstm = 2 * (z + a + hidden) * 4 * hidden  # [z, a, h] (291) @ (291 x 4H) for the four gates
    heads = 2 * hidden * (3 * k * z + 2)  # MDN (3 x K x z), reward and off-track
    parts = {"preprocess": preprocess, "encoder_conv": encoder, "encoder_mean": mean, "lstm": lstm, "heads": heads}
    return {**parts, "total": sum(parts.values())}


def steps_for(batch: int, min_steps: int = MIN_STEPS, max_steps: int = MAX_STEPS) -> int:
    return max(min_steps, min(max_steps, math.ceil(PLAYER_STEPS_PER_REPEAT / batch)))


def timed_steps(world, windows: np.ndarray, batch: int, steps: int) -> tuple[float, float]:
    """(player-steps/s, ms per batched step) over `steps` steps; step k reads window k."""
    start = time.perf_counter()
    for k in range(steps):
        off = k % FRAME_OFFSETS
        world.step(windows[off : off + batch])
    elapsed = time.perf_counter() - start
    return batch * steps / elapsed, 1000.0 * elapsed / steps


def bench_config(precision: str, threads: int, batch: int, frames: np.ndarray, args) -> list[dict]:
    """Rows for one precision, thread count and batch: with and without IOBinding, interleaved."""
    from engine.world_model.runtime import WorldModel

    windows = frames[np.arange(batch + FRAME_OFFSETS) % len(frames)]  # (B + 16, 96, 96, 3): contiguous views
    steps = steps_for(batch, args.min_steps, args.max_steps)
    worlds = {bind: WorldModel(batch, device=args.device, precision=precision, threads=threads, io_binding=bind)
              for bind in (False, True)}  # fmt: skip
    latency: dict[bool, list[float]] = {False: [], True: []}

    def runner(bind: bool):
        def run() -> float:
            rate, ms = timed_steps(worlds[bind], windows, batch, steps)
            latency[bind].append(ms)
            return rate

        return run

    rates, rounds = interleaved({"plain": runner(False), "bound": runner(True)}, args.repeats, warmup=1)
    rows = []
    for bind, name in ((False, "plain"), (True, "bound")):
        ms = latency[bind][1:]  # the warm-up round's latency is dropped, as its rate is
        row = {"precision": precision, "io_binding": bind, "threads": threads, "batch": batch, "steps": steps,
               "player_steps_per_s": rates[name], "latency_ms": stats(ms)}  # fmt: skip
        gflops = rates[name]["median"] * args.flop["total"] / 1e9
        row["gflops"] = gflops
        row["gflops_per_core"] = gflops / threads
        row["peak_fraction"] = gflops * 1e9 / threads / args.peak_flops
        if bind:
            row["binding_gain"] = median_ratio(rounds, "bound", "plain")
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> dict:
    sizes = load_manifest(verify=False)["sizes"]
    args.flop = flop_per_player_step(sizes)
    frames = real_frames(args.frames)
    rows, skipped = [], []
    for precision in args.precisions:
        for threads in args.threads:
            for batch in args.batches:
                try:
                    rows += bench_config(precision, threads, batch, frames, args)
                except Exception as e:  # a variant this onnxruntime cannot run: say so, measure the rest
                    skipped.append({"precision": precision, "threads": threads, "batch": batch,
                                    "error": f"{type(e).__name__}: {str(e)[:300]}"})  # fmt: skip
                    print(f"skipped {precision} threads={threads} batch={batch}: {skipped[-1]['error']}",
                          file=sys.stderr)  # fmt: skip
    fp32 = [r for r in rows if r["precision"] == "fp32"]
    best = max(fp32, key=lambda r: r["gflops_per_core"], default=None)
    return {
        "benchmark": "model",
        "device": args.device,
        "quick": args.quick,
        "repeats": args.repeats,
        "batches": list(args.batches),
        "precisions": list(args.precisions),
        "threads": list(args.threads),
        "frames": len(frames),
        "flop_per_player_step": args.flop,
        "peak_flops_per_core": args.peak_flops,
        "rows": rows,
        "best_fp32": None if best is None else {k: best[k] for k in (
            "precision", "io_binding", "threads", "batch", "gflops", "gflops_per_core", "peak_fraction")},
        "skipped": skipped,
    }  # fmt: skip


def format_table(result: dict) -> str:
    lines = [f"World model on {result['device']}: player-steps/s (median, min-max over {result['repeats']} repeats)",
             f"{'precision':<10}{'binding':<8}{'thr':>4}{'batch':>7}{'player-steps/s':>16}{'min-max':>18}"
             f"{'ms/step':>10}{'GFLOP/s/core':>14}{'% peak':>8}{'bind gain':>11}"]  # fmt: skip
    for r in result["rows"]:
        s = r["player_steps_per_s"]
        gain = f"{r['binding_gain']:.2f}x" if "binding_gain" in r else ""
        lines.append(f"{r['precision']:<10}{'yes' if r['io_binding'] else 'no':<8}{r['threads']:>4}{r['batch']:>7}"
                     f"{s['median']:>16.0f}{spread(s):>18}{r['latency_ms']['median']:>10.2f}"
                     f"{r['gflops_per_core']:>14.1f}{100 * r['peak_fraction']:>7.1f}%{gain:>11}")  # fmt: skip
    f = result["flop_per_player_step"]
    parts = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in f.items() if k != "total")
    lines.append(f"FLOP per player-step: {f['total'] / 1e6:.2f} M ({parts} M)")
    b = result["best_fp32"]
    if b:
        lines.append(f"best fp32 row (batch {b['batch']}, {b['threads']} thread(s), binding "
                     f"{'yes' if b['io_binding'] else 'no'}): {b['gflops']:.1f} GFLOP/s = {b['gflops_per_core']:.1f} "
                     f"GFLOP/s per core, {100 * b['peak_fraction']:.1f}% of {result['peak_flops_per_core'] / 1e9:.0f} "
                     "GFLOP/s per core")  # fmt: skip
    for s in result["skipped"]:
        lines.append(f"skipped {s['precision']} threads={s['threads']} batch={s['batch']}: {s['error']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="onnxruntime device (default cpu)")
    p.add_argument(
        "--batches", type=int_list(1), help="batch sizes (default 1,2,8,64,256,1024; on CUDA also 4096,16384)"
    )
    p.add_argument("--precisions", type=lambda s: [x for x in s.split(",") if x],
                   help="world-model variants (default fp32,int8; on CUDA fp32,fp16,int8)")  # fmt: skip
    p.add_argument("--threads", type=int_list(1), help="onnxruntime intra-op threads (default 1 and all cores)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds after the warm-up round (default 5)")
    p.add_argument("--peak-flops", type=float, default=PEAK_FLOPS_PER_CORE,
                   help="peak float32 FLOP/s of one core (default 96e9: AVX-512, one FMA unit, 3.0 GHz)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="tiny batches and steps, 1 repeat: a smoke test only")
    add_output_options(p)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    refuse_overwrite(parser, args)
    check_device(parser, args.device)
    cuda = args.device == "cuda"
    args.frames, args.min_steps, args.max_steps = FRAMES, MIN_STEPS, MAX_STEPS
    if args.quick:
        args.batches = args.batches or list(QUICK["batches"])
        args.threads = args.threads or list(QUICK["threads"])
        args.repeats, args.frames = QUICK["repeats"], QUICK["frames"]
        args.min_steps, args.max_steps = QUICK["min_steps"], QUICK["max_steps"]
    args.batches = args.batches or list(CUDA_BATCHES if cuda else CPU_BATCHES)
    args.precisions = args.precisions or list(CUDA_PRECISIONS if cuda else CPU_PRECISIONS)
    args.threads = args.threads or sorted({1, os.cpu_count() or 1})
    bad = [x for x in args.precisions if x not in CUDA_PRECISIONS]
    if bad:
        parser.error(f"--precisions: unknown {bad[0]!r} (fp32, int8, fp16)")
    if "fp16" in args.precisions and not cuda:
        parser.error("--precisions: fp16 is for CUDA only (float16 convolutions are slow on CPU)")
    if args.repeats < 1 or args.peak_flops <= 0:
        parser.error("--repeats must be at least 1 and --peak-flops positive")
    return args


def main(argv: list[str] | None = None) -> dict:
    return run_main(parse_args, run, format_table, argv)


if __name__ == "__main__":
    main()
