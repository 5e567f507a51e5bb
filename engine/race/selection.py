"""Which controllers race: the `--controller-a`, `--controller-b` and `--weights` options shared by
`race`, `tui`, `serve` and `tournament`, and their checking.

By default A and B are the shipped `weights/controllerA.npz` and `controllerB.npz`. `--weights DIR`
takes a whole set instead: DIR's manifest.json, world model and controllerA.npz / controllerB.npz
(every file listed in the manifest checked against its sha256). `--controller-a FILE` /
`--controller-b FILE` replace one player's controller with any file training wrote (a CMA-ES
`best.npz`, a `gen_NNNN.npz` snapshot, a shipped file): checked as the shipped ones are (arrays W
and b of the manifest's sizes, finite, read with allow_pickle=False), and refused with a message
that names the file, before any environment or model starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.world_model.manifest import WEIGHTS_DIR, load_manifest


def add_controller_arguments(parser: argparse.ArgumentParser) -> None:
    """--controller-a FILE, --controller-b FILE, --weights DIR."""
    parser.add_argument("--controller-a", type=Path, metavar="FILE",
                        help="player A's controller: an .npz with W (3, z+hidden) and b (3,), as training writes "
                        "(default: controllerA.npz of --weights)")  # fmt: skip
    parser.add_argument("--controller-b", type=Path, metavar="FILE",
                        help="player B's controller (default: controllerB.npz of --weights)")
    parser.add_argument("--weights", type=Path, metavar="DIR", default=None,
                        help="a whole weight set: DIR/manifest.json, its world model and controllerA.npz / "
                        "controllerB.npz, every file checked against the manifest's sha256 (default: the shipped "
                        "weights/)")  # fmt: skip


def resolve_controllers(controller_a: Path | None, controller_b: Path | None,
                        weights: Path | None = None) -> tuple[tuple[Path, Path], Path]:  # fmt: skip
    """((A's file, B's file), weights dir) from the options, every file checked now: WeightsError for a bad
    set, ControllerError (naming the file) for a bad controller. Both are ValueErrors."""
    from engine.policy.players import load_controllers  # here: `--help` should not load the engine
    from engine.race.duel import controller_paths

    weights_dir = WEIGHTS_DIR if weights is None else Path(weights)
    load_manifest(weights_dir, verify=False)  # the sizes; every sha256 is checked when the world model loads
    a, b = controller_paths([controller_a, controller_b], weights_dir)
    load_controllers([a, b], weights_dir)
    return (a, b), weights_dir
