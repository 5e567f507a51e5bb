"""`vmc-duel export`: registered with the CLI through the `vmc_duel.commands` entry point."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from train.cli import missing_extra

    try:  # the import, or a lazy one inside main
        from export import onnx_export

        return onnx_export.main(args)
    except ModuleNotFoundError as e:
        return missing_extra("vmc-duel export", e)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the trained VAE and MDN-RNN to ONNX in weights/, with parity checks and the manifest",
        description="Write weights/world_model.onnx, dream.onnx, decoder.onnx, lookahead.onnx (dynamic batch), copy "
        "vae.pth and mdnrnn.pth, check onnxruntime against torch at batch 1, 2 and 64 (lookahead.onnx against the "
        "dream.onnx rollout), and write weights/manifest.json.",
    )
    p.add_argument("--vae", type=Path, default=Path("data/checkpoints/vae/vae.pth"), help="VAE weights")
    p.add_argument("--mdnrnn", type=Path, default=Path("data/checkpoints/mdnrnn/mdnrnn.pth"), help="MDN-RNN weights")
    p.add_argument("--out", type=Path, default=Path("weights"), help="output directory (default weights)")
    p.add_argument("--renderer-gap", type=Path, help="JSON from `vmc-duel train renderer-gap --out` to record")
    p.add_argument("--lookahead-only", action="store_true",
                   help="only add lookahead.onnx (the imagined rollout in one graph) to --out, built from its "
                   "mdnrnn.pth, and record it in its manifest")  # fmt: skip
    p.add_argument("--int8-only", action="store_true",
                   help="quantise world_model.int8.onnx in --out again, calibrated on the shipped controllers' own "
                   "drives, and run the driving gate (both controllers on 20 evaluation tracks, fp32 and int8): "
                   "`--precision auto` uses int8 on CPU only when it passed")  # fmt: skip
    p.add_argument("--world-model-only", action="store_true",
                   help="export world_model.onnx and its fp16 and int8 variants in --out again from its vae.pth and "
                   "mdnrnn.pth (after a change to the step's graph), with their checks and the int8 driving gate; "
                   "needs --force")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace files already in --out")
    p.set_defaults(handler=_run)
