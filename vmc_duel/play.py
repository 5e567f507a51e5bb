"""`vmc-duel play`: drive one car from the keyboard against a learned controller on the same track.

    vmc-duel play [--seed N] [--as A|B] [--against A|B|FILE] [--weather clear|rain] [--speed ...]
                  [--record FILE [--force]] [--record-dir DIR] [--keys auto|repeat] [--scores-file FILE]
    vmc-duel play --scores

Everything is checked before the app opens, and a bad value ends in one line naming it (exit 2):
`--as C`, an `--against` file that is not a controller, a `--record` file that exists (without
--force), a scores file that cannot be read or written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.env.racing_env import RENDERERS, WEATHERS
from engine.limits import seed
from engine.world_model.runtime import DEVICES

SEATS = ("A", "B")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="drive one car yourself, from the keyboard, against a learned controller (same track, same physics)",
        description="You take one car (B unless --as A) and a controller drives the other (that car's own unless "
        "--against), on the same track, with the same environment, renderer and physics, at real time. The screen "
        "is the duel's: both views, the map with both cars and the gap, telemetry, the knobs of the model's car. "
        "Keys: arrows or WASD drive (up/w gas, down/s brake, left/a and right/d steer), space starts and pauses, "
        "r this track again, n a new track, ctrl+s saves a replay (w is the gas here), v the model's view, "
        "m the map, q quits. Where the terminal reports key releases (the kitty keyboard protocol: kitty, "
        "WezTerm, foot, Ghostty) a key drives while it is held; elsewhere (xterm, tmux, SSH, the browser) a tap is "
        "a short push that fades within a few steps, and a held key's auto-repeat keeps it on: the screen says "
        "which. A finished race is scored on the local leaderboard (--scores shows it).",
    )
    p.add_argument("--seed", type=seed, default=None, help="track seed (default: a random one)")
    p.add_argument("--as", dest="seat", choices=SEATS, default="B", help="the car you drive: A or B (default B)")
    p.add_argument("--against", default=None, metavar="A|B|FILE",
                   help="the controller driving the other car: A or B (the shipped controllerA.npz / "
                   "controllerB.npz of --weights) or a controller file training wrote (default: the other car's own, "
                   "so A when you drive B)")  # fmt: skip
    p.add_argument("--weather", choices=WEATHERS, default="clear", help="clear (default) or rain")
    p.add_argument("--renderer", choices=RENDERERS, default="exact", help="observation renderer (default exact)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA when available, default), cpu, cuda")
    p.add_argument("--graphics", choices=("auto", "halfblock", "sixel", "kitty", "ascii"), default="auto",
                   help="how frames are drawn (as for `vmc-duel tui`; default auto)")  # fmt: skip
    p.add_argument("--speed", default="realtime",
                   help="realtime (50 steps/s, default), or a factor of real time such as 0.5 to learn a "
                   "track")  # fmt: skip
    p.add_argument("--keys", choices=("auto", "repeat"), default="auto",
                   help="auto (default): hold to steer where the terminal reports key releases, else keys that "
                   "repeat and fade; repeat: always the second")  # fmt: skip
    p.add_argument("--record", type=Path, metavar="FILE",
                   help="write the race record here when the race ends, or at quit (the race so far): settings, "
                   "weights sha256, your actions and the model's per step, which player you were; "
                   "`vmc-duel replay FILE` checks it and makes a GIF. A later race in the same session "
                   "replaces it")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace an existing --record file")
    p.add_argument("--record-dir", type=Path, metavar="DIR",
                   help="write every race driven (when it ends, or at quit) to a new file in DIR, and ctrl+s "
                   "saves there (default: only ctrl+s saves, into replays/)")  # fmt: skip
    p.add_argument("--scores", action="store_true",
                   help="print the local leaderboard (best per track seed) and exit")  # fmt: skip
    p.add_argument("--scores-file", type=Path, metavar="FILE", default=None,
                   help="the leaderboard file (default: scores.json in the user's data directory)")  # fmt: skip
    p.add_argument("--weights", type=Path, metavar="DIR", default=None,
                   help="a whole weight set (as for `vmc-duel race`; default: the shipped weights/)")  # fmt: skip
    p.set_defaults(handler=_play)


def _against(value: str | None, model: str, weights_dir: Path) -> Path:
    """The other car's controller file: its seat's own (None), a seat's shipped file (A, B), or FILE."""
    if value is None:
        return weights_dir / f"controller{model}.npz"
    if value.upper() in SEATS:
        return weights_dir / f"controller{value.upper()}.npz"
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"--against {value}: neither A, B nor a controller file (no such file)")
    return path


def _play(args: argparse.Namespace) -> int:
    from engine.policy.controller import ControllerError
    from engine.race.headless import parse_speed
    from engine.race.selection import resolve_controllers
    from engine.world_model.manifest import WEIGHTS_DIR, WeightsError
    from tui.scores import Scores, ScoresError, format_table

    scores = Scores(args.scores_file)
    if args.scores:
        try:
            print(format_table(scores.load(), scores.path))
        except ScoresError as e:
            print(f"vmc-duel play: {e}", file=sys.stderr)
            return 2
        return 0
    speed = parse_speed(args.speed)
    if args.record is not None:
        if args.record.is_dir():
            raise ValueError(f"--record {args.record}: a directory, not a file")
        if args.record.exists() and not args.force:
            raise ValueError(f"--record {args.record} already exists: pass --force to replace it")
        _writable_dir(args.record.parent, "--record", args.record)
    if args.record_dir is not None:
        _writable_dir(args.record_dir, "--record-dir", args.record_dir)
    try:
        scores.check_writable()
    except ScoresError as e:
        print(f"vmc-duel play: {e}", file=sys.stderr)
        return 2
    model = "A" if args.seat == "B" else "B"
    try:
        against = _against(args.against, model, WEIGHTS_DIR if args.weights is None else args.weights)
        paths = {args.seat: None, model: against}
        (controller_a, controller_b), weights_dir = resolve_controllers(paths["A"], paths["B"], args.weights)
    except ControllerError as e:
        print(f"vmc-duel play: --against {args.against}: {e}", file=sys.stderr)
        return 2
    except WeightsError as e:
        print(f"vmc-duel play: {e}", file=sys.stderr)
        return 2
    from tui.app import RECORD_DIR
    from tui.play_app import make_play_app

    app = make_play_app(seed=args.seed, human=args.seat, against=controller_a if model == "A" else controller_b,
                        device=args.device, weather=args.weather, graphics=args.graphics, renderer=args.renderer,
                        speed=speed, weights_dir=weights_dir, keys=args.keys, record=args.record, force=args.force,
                        scores=scores, record_dir=args.record_dir or RECORD_DIR,
                        auto_record=args.record_dir is not None)  # fmt: skip
    app.run()
    for line in app.messages:  # what became of the records and the score, once the screen is gone
        print(f"vmc-duel play: {line}", file=sys.stderr if line.startswith("error") else sys.stdout)
    if args.record is not None and args.record.exists():
        default = weights_dir / f"controller{model}.npz"
        flag = "" if against == default else f" --controller-{model.lower()} {against}"
        print(f"replay it: vmc-duel replay {args.record}{flag} [--gif race.gif]")
    return 1 if any(line.startswith("error") for line in app.messages) else 0


def _writable_dir(directory: Path, option: str, given: Path) -> None:
    """ValueError naming `option` when `directory` cannot be made or written."""
    import os

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{option} {given}: cannot create {directory} ({e.strerror})") from None
    if not os.access(directory, os.W_OK):
        raise ValueError(f"{option} {given}: {directory} is not writable")
