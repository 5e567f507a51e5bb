"""`vmc-duel league FILE...`: a round robin of controllers on the same tracks, with ratings.

Registered in vmc_duel.cli; the work is engine.race.league's (tournaments per pair, Bradley-Terry).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.env.racing_env import RENDERERS, WEATHERS
from engine.world_model.runtime import DEVICES, PRECISIONS


def register(sub: argparse._SubParsersAction) -> None:
    from engine.race.league import BOOTSTRAP, PRIOR_DRAWS
    from engine.race.tournament import HELD_OUT_SEED_START

    p = sub.add_parser(
        "league",
        help="round robin of any controller files on the same tracks: ratings with intervals, win-rate matrix",
        description="Every pair of the given controllers races a tournament on the same tracks (one duel per "
        "track, the duels batched as `tournament` batches them). A duel is won by the higher episode reward once "
        "both cars have ended; on a tie by less time off the road; else it is a draw, half a win each (the "
        "tournament's rule). Prints a ratings table (Bradley-Terry fitted by Hunter's MM iteration with "
        f"{PRIOR_DRAWS:g} virtual draw per pair, on the Elo scale: +100 = wins 64% of duels; 95% intervals from "
        f"{BOOTSTRAP} bootstrap resamples of the tracks, always the same) and the win rate of every pair; writes "
        "league.json and league.png (win-rate matrix and ratings) to --out.",
        epilog="example: vmc-duel league clone=weights/init/controllerA_clone.npz weights/controllerA.npz "
        "weights/controllerB.npz --tracks 16 --renderer fast --precision fp32",
    )
    p.add_argument("controllers", nargs="+", metavar="[NAME=]FILE",
                   help="controller .npz files (W, b as training writes them: shipped, best.npz, gen_NNNN.npz), "
                   "at least two; NAME= labels one (default: the file's stem, or parent/stem when stems "
                   "repeat)")  # fmt: skip
    p.add_argument("--tracks", type=int, default=16, help="tracks every pair races (default 16)")
    p.add_argument("--seed-start", type=int, default=HELD_OUT_SEED_START,
                   help=f"first track seed (default {HELD_OUT_SEED_START}: never used in training)")  # fmt: skip
    p.add_argument("--steps", type=int, default=1000, help="time limit of each race in steps (default 1000, "
                   "CarRacing-v3's; shorter races are decided by the reward so far)")  # fmt: skip
    p.add_argument("--renderer", choices=RENDERERS, default="exact", help="exact (default), fast or stock")
    p.add_argument("--weather", choices=WEATHERS, default="clear", help="clear (default) or rain")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="world-model variant (default auto)")
    p.add_argument("--batch", type=int, default=50, help="duels raced at once (default 50)")
    p.add_argument("--workers", type=int, default=2, help="environment worker processes (default 2)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads (default 2)")
    p.add_argument("--processes", default="auto", metavar="N|auto",
                   help="processes sharing each pair's tracks, as for `tournament` (default auto)")  # fmt: skip
    p.add_argument("--weights", type=Path, metavar="DIR", default=None,
                   help="the world model and manifest to race with (default: the shipped weights/)")
    p.add_argument("--out", type=Path, help="directory for league.json and league.png "
                   "(default data/leagues/RENDERER_WEATHER_SEEDSTART_TRACKS)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace results already in --out")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.env.racing_env import MAX_EPISODE_STEPS
    from engine.policy.controller import ControllerError
    from engine.race.league import format_league, parse_entries, run_league, write_outputs
    from engine.race.tournament import processes_for
    from engine.world_model.manifest import WEIGHTS_DIR, WeightsError

    if args.tracks < 1:
        raise ValueError(f"--tracks must be at least 1, got {args.tracks}")
    if not 1 <= args.steps <= MAX_EPISODE_STEPS:
        raise ValueError(f"--steps must be in 1..{MAX_EPISODE_STEPS}, got {args.steps}")
    entries = parse_entries(args.controllers)
    out = args.out or Path("data/leagues") / f"{args.renderer}_{args.weather}_{args.seed_start}_{args.tracks}"
    for name in ("league.json", "league.png"):
        if (out / name).exists() and not args.force:
            raise ValueError(f"{out / name} already exists: pass --force to replace it")
    processes = processes_for(args.processes, args.tracks)
    with Progress(TextColumn("league"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), transient=True, disable=args.json) as progress:  # fmt: skip
        task = progress.add_task("", total=1)
        try:
            summary = run_league(entries, tracks=args.tracks, seed_start=args.seed_start, renderer=args.renderer,
                                 weather=args.weather, device=args.device, precision=args.precision,
                                 batch=args.batch, workers=args.workers, threads=args.threads, processes=processes,
                                 max_steps=args.steps, weights_dir=args.weights or WEIGHTS_DIR,
                                 on_step=lambda done, total: progress.update(task, completed=done,
                                                                             total=total))  # fmt: skip
        except (ControllerError, WeightsError) as e:
            print(f"vmc-duel league: {e}", file=sys.stderr)
            return 2
    paths = write_outputs(summary, out, force=args.force)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "matches"}))
    else:
        print(format_league(summary))
        print("wrote " + ", ".join(map(str, paths)))
    return 0
