"""`vmc-duel`: one command line with subcommands.

    vmc-duel race [--seed N] [--steps K] [--knobs-a FILE] [--knobs-b FILE] [--renderer exact|fast|stock]
                  [--weather clear|rain] [--device auto|cpu|cuda] [--speed ...] [--json]

With no subcommand it runs `race` (the terminal app replaces it once it lands).

Packages outside the runtime add their own subcommands without `engine` importing
them: each registers a `register(subparsers)` function under the entry-point group
`vmc_duel.commands` (see pyproject.toml: `train ...` and `export` come from there),
and a subcommand stores its handler with `set_defaults(handler=...)`.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

from engine.racing_env import RENDERERS, WEATHERS
from engine.runtime import DEVICES, PRECISIONS


def _add_race(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "race",
        help="run a headless duel to the end, printing live telemetry and a result table",
        description="Race controller A against controller B on one track (same seed, identical conditions): "
        "both players' world models run batched in one onnxruntime session, the controllers and strategy knobs in "
        "numba. Prints telemetry every second of race time, then a result table (or JSON lines with --json).",
    )
    p.add_argument("--seed", type=int, default=None, help="track seed (default: a random one, reported)")
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps (default: race to the end)")
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
        "--precision", choices=PRECISIONS, default="auto", help="world-model variant: auto (fp16 on CUDA, fp32 on CPU)"
    )
    p.add_argument(
        "--speed",
        default="max",
        help="realtime (50 steps/s, as the game runs), max (as fast as possible, default) "
        "or a factor of real time such as 2",
    )
    p.add_argument("--json", action="store_true", help="print JSON lines (start, telemetry every second, result)")
    p.set_defaults(handler=_race)


def _race(args: argparse.Namespace) -> int:
    from engine.knobs import KnobError
    from engine.manifest import WeightsError
    from engine.race import parse_speed, run_race

    parse_speed(args.speed)  # ValueError -> usage error in main
    try:
        run_race(
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
        )
    except (KnobError, WeightsError) as e:
        print(f"vmc-duel race: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("race interrupted", file=sys.stderr)
        return 130
    return 0


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
    from engine.manifest import WEIGHTS_DIR

    report = check(args.weights or WEIGHTS_DIR)
    print(json.dumps(report) if args.json else format_report(report))
    return 0 if report["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vmc-duel",
        description="VMC Duel: two World Models controllers race head to head in CarRacing-v3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_race(sub)
    _add_health(sub)
    for ep in entry_points(group="vmc_duel.commands"):
        ep.load()(sub)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] or ["race"])
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except ValueError as e:  # bad option values the parser could not see
        parser.error(str(e))


if __name__ == "__main__":
    raise SystemExit(main())
