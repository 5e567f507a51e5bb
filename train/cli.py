"""`vmc-duel train ...`: registered with the CLI through the `vmc_duel.commands` entry point.

Only `collect` runs without torch; the training commands import it when they run and
say how to install it when it is missing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

TRAIN_EXTRA = {"torch", "onnx", "onnxconverter_common", "matplotlib", "cma"}  # what the `train` extra installs
INSTALL_TRAIN = "pip install 'vmc-duel[train]' (in a checkout: pip install -e '.[train]')"


def missing_extra(command: str, error: ModuleNotFoundError) -> int:
    """A training tool's package is not installed: one line naming the extra to install, exit status 2.
    Any other missing module is not ours to explain: re-raised."""
    if not (error.name and error.name.split(".")[0] in TRAIN_EXTRA):
        raise error
    print(f"{command}: needs {error.name.split('.')[0]}, from the `train` extra: {INSTALL_TRAIN}", file=sys.stderr)
    return 2


def _handler(module: str):
    def run(args: argparse.Namespace) -> int:
        try:  # the import, or a lazy one inside main
            return importlib.import_module(module).main(args)
        except ModuleNotFoundError as e:
            return missing_extra(f"vmc-duel train {args.train_command}", e)

    return run


def register(sub: argparse._SubParsersAction) -> None:
    from train import collect
    from train.config import TrainControllerConfig, TrainMDNRNNConfig, TrainVAEConfig, add_dataclass_arguments

    train = sub.add_parser("train", help="collect rollouts and train the world model and controllers")
    steps = train.add_subparsers(dest="train_command", metavar="STEP", required=True)
    p = steps.add_parser(
        "collect",
        help="collect exploration rollouts into data/",
        description=collect.__doc__.split("\n\n")[0],
    )
    collect.add_arguments(p)
    p.set_defaults(handler=_handler("train.collect"))

    trainings = (
        ("vae", TrainVAEConfig, "train the VAE on collected frames",
         "Train World Models' VAE (summed L2 + KL with free bits) on the collected frames, with a held-out "
         "split, a checkpoint every epoch, resume, and PNGs of the loss and reconstructions."),
        ("mdnrnn", TrainMDNRNNConfig, "train the MDN-RNN (with reward and off-track heads) on VAE latents",
         "Encode the collected frames with the trained VAE, then train the LSTM + 5-Gaussian MDN on the next z, "
         "with reward and off-track heads; reports held-out NLL, reward RMSE and off-track AUC."),
    )  # fmt: skip
    for name, config, summary, description in trainings:
        p = steps.add_parser(name, help=summary, description=description)
        add_dataclass_arguments(p, config)
        p.add_argument("--force", action="store_true", help="start over, replacing an existing run")
        p.set_defaults(handler=_handler(f"train.{name}"))

    p = steps.add_parser(
        "controller",
        help="train controller A or B with CMA-ES (every candidate's rollouts batched)",
        description="CMA-ES over the linear controller's parameters: every candidate drives the same tracks, all "
        "cars step together (env workers + one batched onnxruntime call). Checkpoints every generation and resumes "
        "when run again; writes log.csv, fitness.png and best.npz in the run directory.",
    )
    p.add_argument("--config", type=Path, help="YAML of options (configs/controller_A.yaml); flags override it")
    add_dataclass_arguments(p, TrainControllerConfig, only_given=True)
    p.add_argument("--force", action="store_true", help="start over, replacing an existing run")
    p.set_defaults(handler=_handler("train.controller"))

    from train import hard_tracks

    p = steps.add_parser(
        "hard-tracks",
        help="pick the tracks a controller does badly on (from tournaments) for CMA-ES to train on",
        description=hard_tracks.__doc__.split("\n\n")[0] + " Writes a pool file for `train controller "
        "--hard-tracks`.",
    )
    hard_tracks.add_arguments(p)
    p.set_defaults(handler=_handler("train.hard_tracks"))

    p = steps.add_parser(
        "ship-controller",
        help="copy a controller run's best evaluated controller into weights/, with its training record",
        description="Copy RUN/best.npz (or RUN/gen_NNNN.npz with --generation) to weights/controllerNAME.npz (and "
        "its fitness curve and log), and record generations, rollouts, wall time, machine and fitness in "
        "weights/manifest.json. With --weather rain the weights become the shipped file's wet-track set instead: "
        "a duel in rain drives with them, one in clear weather with the file's own.",
    )
    p.add_argument("--name", required=True, help="controller name (A or B)")
    p.add_argument("--run", type=Path, help="run directory (default data/checkpoints/controllers/NAME)")
    p.add_argument("--weights", type=Path, default=Path("weights"), help="weights directory (default weights)")
    p.add_argument("--weather", choices=("clear", "rain"), default="clear",
                   help="clear (default): the controller's weights; rain: add them to the shipped file as its "
                   "wet-track set, driven in rain (the rest of the file stays)")  # fmt: skip
    p.add_argument("--generation", type=int, nargs="+", metavar="N",
                   help="ship the run's snapshot gen_NNNN.npz (default: best.npz, the best of the run's own "
                   "evaluations on clear tracks; pick a generation when you chose it otherwise, e.g. on rain "
                   "evaluation tracks with `vmc-duel tournament --weather rain --seed-start 900100`); several: "
                   "the average of their weights (the search's mean averaged over those generations)")  # fmt: skip
    p.add_argument("--steer-hold", type=float, metavar="P",
                   help="the shipped set's steering hold: a steer to the other side than the last, no larger than P "
                   "(0-1), is held straight, so the wheel changes side only when the controller asks for more "
                   "(default: the run's, none unless it trained with --steer-hold; 0: none); the set is then "
                   "evaluated as it ships")  # fmt: skip
    p.add_argument("--pace", type=float, nargs=2, metavar=("BEND", "STRAIGHT"),
                   help="the shipped set's pace in m/s (engine.policy.pace): full gas while the frame shows road "
                   "straight to its top and the car is slower than STRAIGHT, the brakes while it shows a bend near "
                   "and the car is faster than BEND (default: the run's, none unless it trained with a pace; 0 0: "
                   "none); the set is then evaluated as it ships")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace the shipped controller (or its wet-track set)")
    p.set_defaults(handler=_handler("train.ship_controller"))

    p = steps.add_parser(
        "renderer-gap",
        help="measure how far the fast renderer's frames move z against the exact renderer's",
        description="Draw the same states with the exact and fast renderers, encode both with the VAE, "
        "and report mean |z_fast - z_exact| against z's spread.",
    )
    p.add_argument("--vae", type=Path, default=Path("data/checkpoints/vae/vae.pth"), help="VAE weights")
    p.add_argument("--tracks", type=int, default=5, help="tracks to drive (default 5)")
    p.add_argument("--steps", type=int, default=300, help="steps per track (default 300)")
    p.add_argument("--out", type=Path, help="also write the JSON result here")
    p.set_defaults(handler=_handler("train.renderer_gap"))
