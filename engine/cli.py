"""`vmc-duel`: one command line with subcommands.

    vmc-duel race [--seed N] [--renderer exact|fast|stock] [--weather clear|rain] [--speed ...] [--json]

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


def _add_race(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "race",
        help="run a headless duel to the end, printing live telemetry",
        description="Race player A against player B on one track (same seed, identical conditions) "
        "and print their telemetry every second of race time, then the winner.",
    )
    p.add_argument("--seed", type=int, default=0, help="track seed (default: 0)")
    p.add_argument(
        "--renderer",
        choices=RENDERERS,
        default="exact",
        help="observation renderer: exact (bit-identical to gymnasium's, default), "
        "fast (numba, approximate) or stock (gymnasium's own)",
    )
    p.add_argument("--weather", choices=WEATHERS, default="clear", help="clear (default) or rain")
    p.add_argument(
        "--speed",
        default="max",
        help="realtime (50 steps/s, as the game runs), max (as fast as possible, default) "
        "or a factor of real time such as 2",
    )
    p.add_argument("--json", action="store_true", help="print only a JSON summary")
    p.set_defaults(handler=_race)


def _race(args: argparse.Namespace) -> int:
    from engine.race import parse_speed, run_race

    parse_speed(args.speed)  # ValueError -> usage error in main
    try:
        summary = run_race(
            seed=args.seed,
            renderer=args.renderer,
            weather=args.weather,
            speed=args.speed,
            out=None if args.json else sys.stdout,
        )
    except KeyboardInterrupt:
        print("race interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary))
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
