"""`vmc-duel replay FILE [--gif OUT]`: race a recorded duel again and check every step against the record.

Exit status: 0 when every step's actions and the final telemetry match; 1 when the replay
diverges (the message names the step, the player and what differs: weights, versions, CPU);
2 for a file that cannot be read or was edited (the message names the step).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.race.selection import add_controller_arguments
from engine.world_model.runtime import DEVICES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="race a recorded duel again (vmc-duel race --record, or w in the app) and check every step",
        description="Rebuild the duel from a race record (seed, weather, renderer, knobs and their changes), race it "
        "again and compare every step's actions with the recorded ones, bit for bit. A replay that diverges says at "
        "which step, for which player, and what differs from the recording (weights, package versions, the CPU's "
        "vector instructions: a model race recorded on an AVX-512 CPU may take another line on an AVX2-only one). "
        "Exit status 0: identical; 1: diverged; 2: the file is unreadable or was edited.",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the race record (JSON)")
    p.add_argument("--gif", type=Path, metavar="OUT.gif",
                   help="also write an animated GIF: both cars' views and the track map side by side "
                   "(needs Pillow: pip install -e '.[media]')")  # fmt: skip
    p.add_argument("--gif-every", type=int, default=4, metavar="N", help="a GIF picture every N steps (default 4)")
    p.add_argument("--gif-speed", type=float, default=1.0, metavar="X",
                   help="GIF playback speed as a multiple of real time (default 1)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace an existing --gif file")
    p.add_argument("--device", choices=DEVICES, default=None, help="default: the device the race was recorded on")
    add_controller_arguments(p)  # a race recorded with other controller files replays with the same ones
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn

    from engine.policy.controller import ControllerError
    from engine.policy.knobs import KnobError
    from engine.race.race_log import RaceLog, RecordError
    from engine.race.replay import replay
    from engine.race.selection import resolve_controllers
    from engine.world_model.manifest import WeightsError

    if args.gif is not None:
        if args.gif.suffix.lower() != ".gif":
            raise ValueError(f"--gif {args.gif}: give a .gif file name")
        if args.gif.exists() and not args.force:
            raise ValueError(f"--gif {args.gif} already exists: pass --force to replace it")
        if not args.gif_speed > 0:
            raise ValueError(f"--gif-speed must be positive, got {args.gif_speed}")
        try:
            import PIL  # noqa: F401
        except ModuleNotFoundError:
            print("vmc-duel replay: --gif needs Pillow: pip install -e '.[media]'", file=sys.stderr)
            return 2
    try:
        log = RaceLog.load(args.file)
    except RecordError as e:
        print(f"vmc-duel replay: {e}", file=sys.stderr)
        return 2
    gif = None
    if args.gif is not None:
        from vmc_duel.replay_gif import GifRecorder

        gif = GifRecorder(args.gif_every)
    h = log.header
    with Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  transient=True, disable=args.json or not sys.stderr.isatty()) as progress:  # fmt: skip
        task = progress.add_task("", total=log.steps)

        def on_step(duel, step: int) -> None:
            progress.update(task, completed=step)
            if gif is not None:
                gif.on_step(duel, step)

        try:
            controllers, weights_dir = resolve_controllers(args.controller_a, args.controller_b, args.weights)
            result = replay(log, weights_dir=weights_dir, controllers=controllers, device=args.device,
                            on_step=on_step)  # fmt: skip
        except (KnobError, WeightsError, ControllerError) as e:
            print(f"vmc-duel replay: {args.file}: {e}", file=sys.stderr)
            return 2
        except ValueError as e:  # the recorded device or precision is not available here
            hint = f" (recorded on {h['device']}, {h['precision']}: try --device cpu)" if args.device is None else ""
            print(f"vmc-duel replay: {args.file}: {e}{hint}", file=sys.stderr)
            return 2
    if gif is not None:
        gif.save(args.gif, speedup=args.gif_speed)
    what = f"track {h['seed']} ({h['weather']}, {h['renderer']} renderer, {h['driver']} driver)"
    if log.human is not None:  # vmc-duel play: that car was given the person's recorded actions again
        what += f", player {log.human} driven by a person (their recorded keys)"
    if args.json:
        print(json.dumps({"file": str(args.file), "ok": result.ok, "steps": result.steps, "verified": result.verified,
                          "divergence": result.divergence.message() if result.divergence else None,
                          "result_mismatch": result.result_mismatch, "differences": result.differences,
                          "gif": str(args.gif) if args.gif else None}))  # fmt: skip
    elif result.ok:
        players = result.result["players"]
        print(f"replayed {args.file}: {what}, {result.steps} steps, every step's actions identical to the record, "
              "and the final telemetry too: " + ", ".join(f"{n} {players[n]['reward']:.1f} pts" for n in players))
        for d in result.differences:
            print(f"note: {d}")
    elif result.divergence is not None:
        print(f"vmc-duel replay: {args.file}: {what}: {result.divergence.message()} "
              f"({result.verified} steps matched before it)", file=sys.stderr)  # fmt: skip
    else:
        print(f"vmc-duel replay: {args.file}: {what}: every step's actions matched but the final telemetry differs: "
              + "; ".join(result.result_mismatch), file=sys.stderr)  # fmt: skip
    if gif is not None and not args.json:
        print(f"wrote {args.gif} ({len(gif.pictures)} pictures, {args.gif.stat().st_size / 1e6:.2f} MB)")
    return 0 if result.ok else 1
