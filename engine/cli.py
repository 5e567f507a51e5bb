"""`vmc-duel`: one command line with subcommands.

    vmc-duel race [--seed N] [--renderer exact|fast|stock] [--weather clear|rain] [--speed ...] [--json]

With no subcommand it runs `race` (the terminal app replaces it once it lands).
Later issues add `tui`, `tournament`, `bench`, `train ...`, `export`, `serve`, `health`.
"""

from __future__ import annotations

import argparse
import json
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vmc-duel",
        description="VMC Duel: two World Models controllers race head to head in CarRacing-v3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_race(sub)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] or ["race"])

    if args.command == "race":
        from engine.race import parse_speed, run_race

        try:
            parse_speed(args.speed)
        except ValueError as e:
            parser.error(str(e))
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
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
