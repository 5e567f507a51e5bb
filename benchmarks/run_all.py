"""The whole benchmark suite (what `vmc-duel bench` runs): world model, duel loop, tournament, in one report.

    python benchmarks/run_all.py [--device cpu|cuda] [--quick] [--json] [--out-dir DIR] [--force]
                                 [--repeats N] [--peak-flops 96e9] [--skip model|duel|tournament]

Runs bench_model, bench_duel and bench_tournament (this directory's scripts, imported as
modules, with their own defaults; --quick makes each a smoke run of a few seconds) and
writes, for N = os.cpu_count(), into OUT_DIR = benchmarks/results/<machine> by default (one
directory per machine: CPU model, LLVM's CPU name, cores; benchmarks/machines.py compares them):
    OUT_DIR/bench_{device}_{N}core.json  machine (CPU, cores, GPUs, library versions, date) + every result
    OUT_DIR/bench_{device}_{N}core.md    the tables in markdown
    OUT_DIR/bench_{device}_{N}core.png   world-model throughput vs batch size, log-log (needs matplotlib)
Existing result files are never overwritten without --force (exit status 2). The tables
print as each benchmark ends; with --json, they go to stderr and stdout carries only the
JSON summary.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_duel  # noqa: E402
import bench_env  # noqa: E402
import bench_model  # noqa: E402
import bench_tournament  # noqa: E402
from common import REPO_ROOT, machine_info, spread, write_atomic  # noqa: E402

BENCHMARKS = {"model": bench_model, "duel": bench_duel, "tournament": bench_tournament}
OUT_DIR = HERE / "results" / bench_env.machine_slug()
PLOT_SIZE = (8.0, 5.5)  # inches
PLOT_DPI = 120


def result_paths(out_dir: Path, device: str) -> dict[str, Path]:
    stem = f"bench_{device}_{os.cpu_count() or 1}core"
    return {ext: Path(out_dir) / f"{stem}.{ext}" for ext in ("json", "md", "png")}


def sub_argv(name: str, args: argparse.Namespace) -> list[str]:
    argv = ["--device", args.device]
    if args.quick:
        argv.append("--quick")
    if args.repeats is not None:
        argv += ["--repeats", str(args.repeats)]
    if name == "model":
        argv += ["--peak-flops", repr(args.peak_flops)]
    return argv


def run_suite(args: argparse.Namespace, log) -> dict:
    summary = {"benchmark": "suite", "device": args.device, "quick": args.quick, "machine": machine_info()}
    for name, module in BENCHMARKS.items():
        if name in args.skip:
            summary[name] = None
            continue
        bargs = module.parse_args(sub_argv(name, args))
        with contextlib.redirect_stdout(log):  # anything the benchmark prints joins the tables' stream
            result = module.run(bargs)
        summary[name] = result
        print(module.format_table(result) + "\n", file=log, flush=True)
    return summary


# -- markdown ------------------------------------------------------------------------------
def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def markdown(summary: dict) -> str:
    m = summary["machine"]
    v = ", ".join(f"{k} {val}" for k, val in m["versions"].items())
    load = " ".join(map(str, m["load_average"])) if m["load_average"] else "?"
    out = [f"# vmc-duel benchmarks: {summary['device']}, {m['cores']} cores", "",
           f"- CPU: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
           f"vector ISA: {m['vector_isa']} ({', '.join(m['vector_extensions']) or '?'}), "
           f"onnxruntime {m['onnxruntime']}; load average at the start: {load}",
           f"- GPU: {'; '.join(m['gpus']) or 'none'}; onnxruntime providers: {', '.join(m['onnxruntime_providers'])}",
           f"- versions: {v}", f"- date: {m['date']}; platform: {m['platform']}"]  # fmt: skip
    if summary["quick"]:
        out.append("- **--quick: a smoke run with tiny sizes and one repeat, not a measurement**")
    model = summary.get("model")
    if model:
        out += ["", "## World-model step (engine.world_model.runtime.WorldModel)", "",
                f"player-steps/s: median and min-max over {model['repeats']} repeats; IOBinding on and off "
                "interleaved; binding gain = median per-round ratio.", ""]  # fmt: skip
        rows = []
        for r in model["rows"]:
            s = r["player_steps_per_s"]
            rows.append([r["precision"], "yes" if r["io_binding"] else "no", r["threads"], r["batch"],
                         f"{s['median']:.0f}", spread(s), f"{r['latency_ms']['median']:.2f}",
                         f"{r['gflops_per_core']:.1f}", f"{100 * r['peak_fraction']:.1f}%",
                         f"{r['binding_gain']:.2f}x" if "binding_gain" in r else ""])  # fmt: skip
        out += _table(["precision", "IOBinding", "threads", "batch", "player-steps/s", "min-max", "ms/step",
                       "GFLOP/s/core", "% of peak", "binding gain"], rows)  # fmt: skip
        f = model["flop_per_player_step"]
        parts = ", ".join(f"{k} {val / 1e6:.2f}" for k, val in f.items() if k != "total")
        out += ["", f"FLOP per player-step: **{f['total'] / 1e6:.2f} M** ({parts} M); "
                f"peak per core: {model['peak_flops_per_core'] / 1e9:.0f} GFLOP/s (--peak-flops)."]  # fmt: skip
        b = model["best_fp32"]
        if b:
            out.append(f"Best fp32 row: batch {b['batch']}, {b['threads']} thread(s), IOBinding "
                       f"{'yes' if b['io_binding'] else 'no'}: {b['gflops']:.1f} GFLOP/s, {b['gflops_per_core']:.1f} "
                       f"per core = **{100 * b['peak_fraction']:.1f}%** of the limit.")  # fmt: skip
        for s in model["skipped"]:
            out.append(f"Skipped {s['precision']} threads={s['threads']} batch={s['batch']}: {s['error']}")
    duel = summary.get("duel")
    if duel:
        speed = duel.get("speedup_vs_baseline", {})
        same = duel.get("speedup_vs_same_cores", {})
        out += ["", "## Duel loop (two players, lookahead 10, risk aversion 0.5)", "",
                f"duel steps/s over {duel['steps']} steps, median and min-max over {duel['repeats']} interleaved "
                "rounds; speed-up = median per-round ratio engine / baseline (stock gymnasium + PyTorch eager, "
                "no lookahead): the serial stack (`baseline`), and the same stack on the engine's cores "
                "(`baseline_same_cores`: one process per car as AsyncVectorEnv, the models as one batch).",
                ""]  # fmt: skip
        rows = []
        for name, s in duel["duel_steps_per_s"].items():
            ratio = f"{speed[name[7:]]:.2f}x" if name[7:] in speed else "-"
            ratio_same = f"{same[name[7:]]:.2f}x" if name[7:] in same else "-"
            rows.append([name, f"{s['median']:.1f}", spread(s, "{:.1f}"), ratio, ratio_same])
        out += _table(["stack", "duel steps/s", "min-max", "vs baseline", "vs same cores"], rows)
        if duel["baseline_skipped"]:
            out.append(f"\nBaseline skipped: {duel['baseline_skipped']}")
        parts = duel.get("breakdown_ms_per_duel_step", {})
        if parts:
            cols = ("env", "world_model", "decide", "lane_wait", "python_other", "total")
            out += ["", "Where a duel step's time goes (ms per duel step, one more run per renderer):", ""]
            out += _table(["stack", *cols], [[name, *(f"{b[f'{c}_ms']:.3f}" for c in cols)]
                                             for name, b in parts.items()])  # fmt: skip
    tour = summary.get("tournament")
    if tour:
        out += [
            "",
            f"## Tournament ({tour['duels']} duels = {tour['players']} players, "
            f"{tour.get('renderer', 'fast')} renderer)",
            "",
            f"player-steps/s over {tour['steps']} steps, median and min-max over {tour['repeats']} repeats.",
            "",
        ]
        rows = [[r.get("processes", 1), r["workers"], r["threads"], f"{r['player_steps_per_s']['median']:.0f}",
                 spread(r["player_steps_per_s"])] for r in tour["rows"]]  # fmt: skip
        out += _table(["processes", "workers", "threads", "player-steps/s", "min-max"], rows)
        c = tour.get("ceiling")
        if c:
            out += ["", f"Ceiling measured side by side with the best configuration ({_best(tour)}), "
                    f"{tour['repeats']} rounds: {c['cores']} cores / (1 / model alone "
                    f"{c['model_player_steps_per_s_1thread']['median']:.0f} + 1 / environments alone "
                    f"{c['env_steps_per_s_1process']['median']:.0f}) = **{c['player_steps_per_s']['median']:.0f} "
                    f"player-steps/s** (median); the best configuration reaches "
                    f"**{100 * tour['ceiling_fraction']:.0f}%** of it (`ceiling_fraction`, the median of the "
                    "rounds' fractions)."]  # fmt: skip
    return "\n".join(out) + "\n"


def _best(tour: dict) -> str:
    b = tour.get("best", {})
    return f"{b.get('processes', '?')} process(es), {b.get('workers', '?')} workers, {b.get('threads', '?')} thread(s)"


# -- plot ----------------------------------------------------------------------------------
def plot(summary: dict) -> bytes | None:
    """PNG bytes of throughput vs batch size (log-log), or None without matplotlib or model rows."""
    model = summary.get("model")
    if not model or not model["rows"]:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=PLOT_SIZE)
    lines: dict[tuple, list[dict]] = {}
    for r in model["rows"]:
        lines.setdefault((r["precision"], r["io_binding"], r["threads"]), []).append(r)
    for (precision, bind, threads), rows in lines.items():
        rows.sort(key=lambda r: r["batch"])
        x = [r["batch"] for r in rows]
        med = [r["player_steps_per_s"]["median"] for r in rows]
        label = f"{model['device']} {precision}, {'IOBinding' if bind else 'no binding'}, {threads} thr"
        (line,) = ax.plot(x, med, marker="o", linestyle="-" if bind else "--", label=label)
        ax.fill_between(x, [r["player_steps_per_s"]["min"] for r in rows],
                        [r["player_steps_per_s"]["max"] for r in rows], color=line.get_color(), alpha=0.15)  # fmt: skip
    batches = sorted({r["batch"] for r in model["rows"]})
    total = model["flop_per_player_step"]["total"]
    if model["device"] == "cpu":
        for threads in sorted({r["threads"] for r in model["rows"]}):
            limit = model["peak_flops_per_core"] * threads / total
            ax.axhline(limit, color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"fp32 FLOP limit, {threads} core(s)", (batches[0], limit), fontsize=8, color="grey",
                        va="bottom")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("batch size (players per step)")
    ax.set_ylabel("player-steps/s (median; band: min-max)")
    m = summary["machine"]
    title = f"World-model step: {m['cpu']}, {m['cores']} cores"
    if summary["quick"]:
        title += " (--quick: not a measurement)"
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_DPI)
    plt.close(fig)
    return buf.getvalue()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="onnxruntime device (default cpu)")
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds: tiny sizes, 1 repeat, no measurement")
    p.add_argument("--json", action="store_true", help="print only the JSON summary on stdout (tables to stderr)")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR,
                   help=f"where results go (default {OUT_DIR.relative_to(REPO_ROOT)})")  # fmt: skip
    p.add_argument("--force", action="store_true", help="overwrite existing result files")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats of every benchmark (default: each one's own)")  # fmt: skip
    p.add_argument("--peak-flops", type=float, default=bench_model.PEAK_FLOPS_PER_CORE,
                   help="peak float32 FLOP/s of one core (default 96e9: AVX-512, one FMA unit, 3.0 GHz)")  # fmt: skip
    p.add_argument("--skip", action="append", choices=tuple(BENCHMARKS), default=[],
                   help="leave a benchmark out (repeatable)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = result_paths(args.out_dir, args.device)
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not args.force:
        parser.error(f"{', '.join(existing)} exist(s); pass --force to overwrite")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    log = sys.stderr if args.json else sys.stdout
    summary = run_suite(args, log)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    md = markdown(summary)
    png = plot(summary)
    if png is None:
        reason = "matplotlib is not installed" if summary.get("model") else "no world-model rows"
        print(f"no plot written: {reason}", file=log)
        paths.pop("png").unlink(missing_ok=True)  # (only there with --force) no stale plot beside the new results
    summary["files"] = {ext: str(p) for ext, p in paths.items()}
    write_atomic(paths["md"], md)
    if png is not None:
        write_atomic(paths["png"], png)
    line = json.dumps(summary)
    write_atomic(paths["json"], line + "\n")
    if args.json:
        print(line)
    else:
        print("wrote " + ", ".join(map(str, paths.values())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
