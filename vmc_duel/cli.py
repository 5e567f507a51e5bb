"""`vmc-duel`: one command line with subcommands.

    vmc-duel race [--seed N] [--steps K] [--knobs-a FILE] [--knobs-b FILE] [--renderer exact|fast|stock]
                  [--weather clear|rain] [--device auto|cpu|cuda] [--speed ...] [--json]
                  [--controller-a FILE] [--controller-b FILE] [--weights DIR]
    vmc-duel league [NAME=]FILE [NAME=]FILE... [--tracks N] [--renderer ...] [--out DIR]
    vmc-duel play [--seed N] [--as A|B] [--against A|B|FILE] [--record FILE] [--scores]  (vmc_duel/play.py)

With no subcommand (options alone included: `vmc-duel --seed 7`) it opens the terminal app (`tui`).

The composition root: it imports engine, tui and server. The training tools add their own
subcommands without being imported here (torch stays out of a race):
each registers a `register(subparsers)` function under the entry-point group
`vmc_duel.commands` (see pyproject.toml: `train ...` and `export` come from there),
and a subcommand stores its handler with `set_defaults(handler=...)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from engine.env.racing_env import MAX_EPISODE_STEPS, RENDERERS, WEATHERS
from engine.limits import SEED_MAX, count, seed
from engine.progress import STOP_AT, stop_at
from engine.race.selection import add_controller_arguments, resolve_controllers
from engine.world_model.runtime import DEVICES, PRECISIONS
from vmc_duel.league import register as register_league
from vmc_duel.play import register as register_play
from vmc_duel.replay_cmd import register as register_replay
from vmc_duel.warmup import register as register_warmup
from vmc_duel.web import register as register_web


def _add_race(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "race",
        help="run a headless duel to the end, printing live telemetry and a result table",
        description="Race controller A against controller B on one track (same seed, identical conditions): "
        "both players' world models run batched in one onnxruntime session, the controllers and strategy knobs in "
        "numba. Prints telemetry every second of race time, then a result table (or JSON lines with --json).",
    )
    p.add_argument("--seed", type=seed, default=None, help="track seed (default: a random one, reported)")
    p.add_argument("--steps", type=count(1, MAX_EPISODE_STEPS), default=None,
                   help="stop after this many steps (default: race to the end)")  # fmt: skip
    p.add_argument("--knobs-a", type=Path, metavar="FILE", help="YAML of player A's knobs (see configs/bounds.yaml)")
    p.add_argument("--knobs-b", type=Path, metavar="FILE", help="YAML of player B's knobs")
    p.add_argument(
        "--renderer",
        choices=RENDERERS,
        default="exact",
        help="observation renderer: exact (bit-identical to gymnasium's, default), "
        "fast (numba, approximate) or stock (gymnasium's own)",
    )
    p.add_argument("--weather", choices=WEATHERS, default="clear", help="clear (default) or rain")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA when available, default), cpu, cuda")
    p.add_argument(
        "--precision", choices=PRECISIONS, default="auto",
        help="world-model variant: auto (fp16 on CUDA; on CPU int8 where it passed its driving gate, else fp32)",
    )
    p.add_argument("--lanes", type=int, choices=(1, 2), default=1,
                   help="1: both cars in this process (default); 2: car B's whole chain (world model, controller, "
                   "knobs, environment) in a second process at the same time as car A's, on two cores: the same "
                   "race, bit for bit, about 1.5-1.7x the steps/s (docs/benchmarks.md)")  # fmt: skip
    p.add_argument(
        "--speed",
        default="max",
        help="realtime (50 steps/s, as the game runs), max (as fast as possible, default) "
        "or a factor of real time such as 2",
    )
    p.add_argument("--json", action="store_true", help="print JSON lines (start, telemetry every second, result)")
    add_controller_arguments(p)
    p.add_argument("--record", type=Path, metavar="FILE",
                   help="write the race record here (JSON: settings, weights sha256, knobs, every step's actions) "
                   "for `vmc-duel replay FILE`")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace an existing --record file")
    p.set_defaults(handler=_race)


def _race(args: argparse.Namespace) -> int:
    from engine.policy.controller import ControllerError
    from engine.policy.knobs import KnobError
    from engine.race.headless import parse_speed, run_race
    from engine.world_model.manifest import WeightsError

    parse_speed(args.speed)  # ValueError -> usage error in main
    try:
        (controller_a, controller_b), weights_dir = resolve_controllers(args.controller_a, args.controller_b,
                                                                        args.weights)  # fmt: skip
        run_race(
            controller_a=controller_a,
            controller_b=controller_b,
            weights_dir=weights_dir,
            seed=args.seed,
            steps=args.steps,
            knobs_a=args.knobs_a,
            knobs_b=args.knobs_b,
            renderer=args.renderer,
            weather=args.weather,
            device=args.device,
            precision=args.precision,
            speed=args.speed,
            json_lines=args.json,
            record=args.record,
            force=args.force,
            lanes=args.lanes,
        )
    except (KnobError, WeightsError, ControllerError) as e:
        print(f"vmc-duel race: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("race interrupted", file=sys.stderr)
        return 130
    return 0


def _add_tui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tui",
        help="watch the duel live in the terminal and tune each player's knobs (the default command)",
        description="Two cars race on one track, live, with a map of both; each player's knobs change while the race "
        "runs. Keys: space "
        "start/pause, r reset, n new track, s type a seed, tab move between knobs, arrows or +/- change a knob, "
        "Enter or a digit types a value, d defaults, v what the model sees, m the track map, t knobs / telemetry "
        "(where they share a drawer, as at 80x24), w save a replay, q quit; ctrl+p lists every command.",
    )
    p.add_argument("--seed", type=seed, default=None, help="track seed (default: a random one)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA when available, default), cpu, cuda")
    p.add_argument("--weather", choices=WEATHERS, default="clear", help="clear (default) or rain")
    p.add_argument("--graphics", choices=("auto", "halfblock", "sixel", "kitty", "ascii"), default="auto",
                   help="how frames are drawn: auto (detect; half-block cells unless the terminal is known to "
                   "show kitty or sixel graphics), halfblock, sixel, kitty or ascii")  # fmt: skip
    p.add_argument("--renderer", choices=RENDERERS, default="exact", help="observation renderer (default exact)")
    p.add_argument("--speed", default="realtime", help="realtime (50 steps/s, default), max, or a factor such as 2")
    add_controller_arguments(p)
    p.set_defaults(handler=_tui)


def _tui(args: argparse.Namespace) -> int:
    from engine.race.headless import parse_speed

    speed = parse_speed(args.speed)
    from engine.policy.controller import ControllerError
    from engine.world_model.manifest import WeightsError

    try:
        controllers, weights_dir = resolve_controllers(args.controller_a, args.controller_b, args.weights)
    except (WeightsError, ControllerError) as e:
        print(f"vmc-duel tui: {e}", file=sys.stderr)
        return 2
    from tui.app import make_app

    make_app(seed=args.seed, device=args.device, weather=args.weather, graphics=args.graphics,
             renderer=args.renderer, speed=speed, controllers=controllers, weights_dir=weights_dir).run()  # fmt: skip
    return 0


def _add_tournament(sub: argparse._SubParsersAction) -> None:
    from engine.race.tournament import HELD_OUT_SEED_START

    p = sub.add_parser(
        "tournament",
        help="race A against B on many tracks, all duels batched; win rate with its 95%% interval",
        description="One duel per track (seeds --seed-start on), every duel of a batch stepping together. Reports "
        "each controller's reward and off-track time (mean +- std) and A's win rate (a draw counts half) with a 95% "
        "Wilson interval; writes tournament.json and tournament.png (reward histograms) to --out.",
    )
    p.add_argument("--tracks", type=count(1), default=100, help="number of tracks (default 100)")
    p.add_argument("--seed-start", type=seed, default=HELD_OUT_SEED_START,
                   help=f"first track seed (default {HELD_OUT_SEED_START}: never used in training)")  # fmt: skip
    p.add_argument("--renderer", choices=RENDERERS, default="exact",
                   help="exact (default; frames bit-identical to stock), fast or stock")  # fmt: skip
    p.add_argument("--weather", choices=WEATHERS, default="clear", help="clear (default) or rain")
    p.add_argument("--knobs-a", type=Path, metavar="FILE", help="YAML of player A's knobs")
    p.add_argument("--knobs-b", type=Path, metavar="FILE", help="YAML of player B's knobs")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="world-model variant (default auto)")
    p.add_argument("--batch", type=count(1), default=50, help="duels raced at once (default 50)")
    p.add_argument("--workers", type=count(0), default=2, help="environment worker processes (default 2)")
    p.add_argument("--threads", type=count(1), default=2, help="onnxruntime threads (default 2)")
    p.add_argument("--processes", default="auto", metavar="N|auto",
                   help="share the tracks out over N processes, each with in-process environments and one thread "
                   "(the fastest way on many tracks: 91%% of the machine's ceiling on 2 cores, against 86%% for one "
                   "pipelined process); auto (default): one per core when there are at least 8 tracks per core, "
                   "else 1 (--workers and --threads then apply); per-track results are the same either way",
                   )  # fmt: skip
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local (default): this machine; ray: the batches become Ray tasks on a cluster "
                   "(pip install -e '.[cluster]'), per-track results the same")  # fmt: skip
    p.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                   help="with --backend ray: the cluster to join (auto: the one `ray start` runs here; HOST:PORT: "
                   "its head); without it a local Ray instance is started on this machine's cores")  # fmt: skip
    p.add_argument("--out", type=Path, help="directory for tournament.json and .png "
                   "(default data/tournaments/RENDERER_WEATHER_SEEDSTART_TRACKS)")  # fmt: skip
    p.add_argument("--max-steps", type=count(1, MAX_EPISODE_STEPS), default=MAX_EPISODE_STEPS,
                   help=f"cut each duel at this many steps (default {MAX_EPISODE_STEPS}, CarRacing's own limit)")
    p.add_argument("--force", action="store_true",
                   help="replace results already in --out and start over (an interrupted tournament otherwise "
                   "continues from its journal, --out/tournament.journal.jsonl)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    add_controller_arguments(p)
    p.set_defaults(handler=_tournament)


def _tournament(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.policy.controller import ControllerError
    from engine.policy.knobs import KnobError, Knobs, load_bounds, load_knobs_file
    from engine.race.tournament import JOURNAL, format_summary, processes_for, run_tournament, write_outputs
    from engine.world_model.manifest import WeightsError

    out = args.out or Path("data/tournaments") / f"{args.renderer}_{args.weather}_{args.seed_start}_{args.tracks}"
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: a file, not a directory")
    if args.seed_start + args.tracks - 1 > SEED_MAX:
        raise ValueError(f"--seed-start {args.seed_start} with --tracks {args.tracks} runs past the last seed "
                         f"{SEED_MAX}")  # fmt: skip
    for name in ("tournament.json", "tournament.png"):
        if (out / name).exists() and not args.force:
            raise ValueError(f"{out / name} already exists: pass --force to replace it")
    processes = processes_for(args.processes, args.tracks)
    if args.address and args.backend != "ray":
        raise ValueError("--address is for --backend ray")
    if args.backend == "ray":
        from engine.race.cluster import ClusterError, connect, status_line

        try:
            ray = connect(args.address)
        except ClusterError as e:
            print(f"vmc-duel tournament: {e}", file=sys.stderr)
            return 2
        print(status_line(ray), file=sys.stderr)
    bounds = load_bounds()
    try:
        knobs = tuple(load_knobs_file(f, bounds) if f else Knobs(bounds) for f in (args.knobs_a, args.knobs_b))
        controllers, weights_dir = resolve_controllers(args.controller_a, args.controller_b, args.weights)
    except (KnobError, WeightsError, ControllerError) as e:
        print(f"vmc-duel tournament: {e}", file=sys.stderr)
        return 2
    with Progress(TextColumn("tournament"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), transient=True, disable=args.json) as progress:  # fmt: skip
        task = progress.add_task("", total=args.tracks * 1000)
        summary = run_tournament(tracks=args.tracks, seed_start=args.seed_start, renderer=args.renderer,
                                 weather=args.weather, knobs=knobs, device=args.device,
                                 controllers=controllers, weights_dir=weights_dir,
                                 precision=args.precision, batch=args.batch,
                                 workers=args.workers, threads=args.threads, processes=processes,
                                 backend=args.backend, journal=out / JOURNAL, force=args.force,
                                 max_steps=args.max_steps,
                                 on_step=lambda done, total: progress.update(task, completed=done))  # fmt: skip
    paths = write_outputs(summary, out, force=args.force)
    (out / JOURNAL).unlink(missing_ok=True)  # the results are saved: nothing left to continue
    if summary["resumed_tracks"]:
        print(f"continued an interrupted tournament: {summary['resumed_tracks']} of {args.tracks} tracks came from "
              f"its journal", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "results"}))
    else:
        print(format_summary(summary))
        print("wrote " + ", ".join(map(str, paths)))
    return 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the live duel over HTTP (GET /health, POST /control, POST /update_knobs, GET /telemetry)",
        description="Run a duel in a background thread at race speed and serve it over HTTP (FastAPI + uvicorn, "
        "the `serve` extra: pip install -e '.[serve]'). Binds 127.0.0.1 unless given a token.",
    )
    try:
        from server.app import add_arguments
    except ModuleNotFoundError:  # the module itself imports FastAPI only when serving
        return
    add_arguments(p)
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from server.app import main as serve_main

    return serve_main(args)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the world model, the duel loop and tournaments; save JSON, markdown and a plot",
        description="Runs benchmarks/run_all.py from the source checkout; every option goes to it "
        "(vmc-duel bench --help lists them: --device cpu|cuda, --quick, --json, --out-dir, --force, ...).",
        add_help=False,  # --help goes to run_all.py
        prefix_chars="\0",  # no options of its own: everything after `bench` is passed through
    )
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    import subprocess

    from engine.world_model.manifest import checkout_root

    root = checkout_root()  # the benchmarks are scripts of the source checkout, not in the wheel
    script = (root or Path(__file__).resolve().parents[1]) / "benchmarks" / "run_all.py"
    if not script.is_file():
        print(f"vmc-duel bench: needs the source checkout ({script} is not in the installed package): git clone "
              "the project and run it there after pip install -e '.[train]'", file=sys.stderr)  # fmt: skip
        return 2
    return subprocess.run([sys.executable, str(script), *args.args]).returncode


def _add_health(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "health",
        help="check the environment, onnxruntime providers and the shipped weights",
        description="Step the racing environment, list onnxruntime's providers, and check every shipped "
        "file's sha256 against weights/manifest.json. Exit status 1 when something needed to race is broken.",
    )
    p.add_argument("--weights", type=Path, default=None, help="weights directory (default: the shipped weights/)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_health)


def _health(args: argparse.Namespace) -> int:
    from engine.health import check, format_report
    from engine.world_model.manifest import INFERENCE_ONLY_SKIPS, WEIGHTS_DIR, WEIGHTS_SOURCE

    weights_dir = args.weights or WEIGHTS_DIR
    report = check(weights_dir)
    # where the weights came from: --weights, $VMC_DUEL_WEIGHTS, the checkout or the installed package
    source = "--weights" if args.weights else WEIGHTS_SOURCE
    absent = [n for n in report.get("weights", {}).get("files", {}) if n in INFERENCE_ONLY_SKIPS
              and not (Path(weights_dir) / n).exists()]  # fmt: skip
    for name in absent:  # "N files match" counts the files there are
        report["weights"]["files"].pop(name)
    report.setdefault("weights", {}).update(source=source, not_installed=absent)
    line = f"  from {source}: {Path(weights_dir).resolve()}" + (
        f" ({', '.join(absent)} not installed: inference never reads them)" if absent else "")
    if args.json:
        print(json.dumps(report))
    else:
        lines = format_report(report).splitlines()
        at = next((i + 1 for i, text in enumerate(lines) if text.startswith("weights ")), len(lines))
        print("\n".join([*lines[:at], line, *lines[at:]]))
    if not report["ok"]:  # the report goes to stdout; what is broken also to stderr, on one line
        why = [report.get(part, {}).get("error", part) for part in report["problems"]]
        print(f"vmc-duel health: {'; '.join(' '.join(str(w).split()) for w in why)}", file=sys.stderr)
    return 0 if report["ok"] else 1


def build_parser() -> argparse.ArgumentParser:
    """The `vmc-duel` parser with every subcommand, the entry-point plugins' included (the
    documentation's command line reference is generated from it)."""
    parser = argparse.ArgumentParser(
        prog="vmc-duel",
        description="VMC Duel: two World Models controllers race head to head in CarRacing-v3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_tui(sub)
    _add_race(sub)
    _add_tournament(sub)
    register_league(sub)
    _add_serve(sub)
    _add_health(sub)
    _add_bench(sub)
    register_replay(sub)
    register_web(sub)
    register_play(sub)
    register_warmup(sub)
    for ep in entry_points(group="vmc_duel.commands"):
        ep.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["tui", *argv]  # `vmc-duel` and `vmc-duel --seed 7` open the app
    args = parser.parse_args(argv)
    if os.environ.get(STOP_AT):  # a fault test holds the program at a progress point (engine.progress)
        try:
            stop_at(os.environ[STOP_AT])
        except ValueError as e:
            parser.error(str(e))
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    return run_handler(parser, args)


def run_handler(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the subcommand; whatever goes wrong ends in one line naming it, never a traceback:
    exit status 2 for bad option values the parser could not see (ValueError), 1 for runtime
    failures (a file that cannot be written, a worker that died, anything unforeseen), 130 for ctrl-c.
    VMC_DUEL_TRACEBACK=1 shows the traceback of an unforeseen error."""
    name = f"vmc-duel {args.command}" + (f" {args.train_command}" if getattr(args, "train_command", None) else "")
    try:
        return args.handler(args)
    except ValueError as e:  # bad option values the parser could not see
        parser.error(_one_line(e))
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except (OSError, RuntimeError, MemoryError) as e:  # runtime failures: a file, a worker process, the machine
        print(f"{name}: {_one_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # unforeseen: still one line, with a way to see more
        if os.environ.get("VMC_DUEL_TRACEBACK"):
            raise
        print(f"{name}: unexpected {type(e).__name__}: {_one_line(e)} (VMC_DUEL_TRACEBACK=1 shows where)",
              file=sys.stderr)  # fmt: skip
        return 1


def _one_line(error: BaseException) -> str:
    """The error's message on one line (a worker's traceback text reduced to its last line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) > 1 and any(line.startswith("Traceback") for line in lines):
        return f"{lines[0]} {lines[-1]}"
    return " ".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
