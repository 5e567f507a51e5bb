"""Where int8 hurts: quantise one layer of the world-model step at a time (and the recipes
built from them), and measure z, h and the controllers' actions against fp32 on an
on-policy drive.

    python -m export.int8_sensitivity [--weights weights] [--out benchmarks/results/int8_sensitivity.json]

The drive: controllers A and B race track CHECK_SEED (exact renderer, fp32) for 300 steps;
every variant then sees the same frames and previous actions, keeps its own LSTM state,
and each controller acts on each variant's [z, h]. Errors are mean absolute differences
over the drive. Calibration: the controllers' own frames (export.variants). This is what
chose the shipped recipe (export.variants.INT8_OPS): the recurrent layers carry an error
from step to step, the convolutions do not.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

from engine.hardware import hardware_info
from engine.policy.controller import policy_actions
from engine.policy.players import load_controllers
from engine.world_model.frames import model_input
from engine.world_model.manifest import WEIGHTS_DIR
from export.variants import CALIBRATION_SEEDS, CHECK_SEED, _Reader, on_policy_drive, on_policy_observations

QUANTISABLE = ("Conv", "MatMul", "Gemm")
RECIPES = {  # name -> the layers in int8 (None: every quantisable layer but the preprocessing)
    "all layers (the first int8 model's recipe)": None,
    "convolutions only (shipped)": ["/enc/enc.0/Conv", "/enc/enc.2/Conv", "/enc/enc.4/Conv", "/enc/enc.6/Conv"],
}


def layers(model: onnx.ModelProto) -> list[str]:
    """The quantisable layers of the step (graphs exported before the `frame` input also held the
    preprocessing's MatMuls, /pre/: those are left out)."""
    return [n.name for n in model.graph.node if n.op_type in QUANTISABLE and not n.name.startswith("/pre/")]


def quantise_only(fp32: Path, out: Path, keep: list[str], calibration: np.ndarray) -> None:
    """int8 for the layers in `keep`, float for every other one."""
    model = onnx.load(str(fp32))
    others = [n.name for n in model.graph.node if n.op_type in QUANTISABLE and n.name not in keep]
    quantize_static(str(fp32), str(out), _Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=others,
                    op_types_to_quantize=list(QUANTISABLE), reduce_range=True)  # fmt: skip


def errors(fp32: Path, variant: Path, frames: np.ndarray, actions: np.ndarray, W: np.ndarray,
           b: np.ndarray) -> dict[str, float]:  # fmt: skip
    """Mean |z|, |h| and |action| differences of `variant` against fp32 over the drive."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in (fp32, variant)]
    n = frames.shape[1]
    state = [[np.zeros((n, 256), np.float32)] * 2 for _ in sessions]
    err = {"z": [], "h": [], "action": []}
    for t in range(len(frames)):
        prev = actions[t - 1] if t else np.zeros((n, 3), np.float32)
        outs = []
        for k, sess in enumerate(sessions):
            z, h, c = sess.run(["z", "h_next", "c_next"], {"frame": model_input(frames[t]), "prev_action": prev,
                                                          "h": state[k][0], "c": state[k][1]})  # fmt: skip
            state[k] = [h, c]
            act = np.empty((n, 3))
            policy_actions(W, b, z, h, act)
            outs.append((z, h, act))
        for key, i in (("z", 0), ("h", 1), ("action", 2)):
            err[key].append(float(np.abs(outs[1][i] - outs[0][i]).mean()))
    return {f"{key}_mean_abs_err": float(np.mean(v)) for key, v in err.items()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="exported weights with controllers A and B")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    p.add_argument("--force", action="store_true", help="replace --out")
    args = p.parse_args(argv)
    if args.out and args.out.exists() and not args.force:
        p.error(f"{args.out} exists; pass --force to replace it")
    fp32 = args.weights / "world_model.onnx"
    calibration = on_policy_observations(args.weights, CALIBRATION_SEEDS, 400)
    frames, actions = on_policy_drive(args.weights)
    W, b, _ = load_controllers([args.weights / "controllerA.npz", args.weights / "controllerB.npz"], args.weights)
    names = layers(onnx.load(str(fp32)))
    runs = {f"only {name}": [name] for name in names}
    runs.update({k: (names if v is None else v) for k, v in RECIPES.items()})
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, keep in runs.items():
            path = Path(tmp) / "variant.onnx"
            quantise_only(fp32, path, keep, calibration)
            rows[label] = errors(fp32, path, frames, actions, W, b)
            r = rows[label]
            print(f"{label:48s} z {r['z_mean_abs_err']:.4f}  h {r['h_mean_abs_err']:.4f}  "
                  f"action {r['action_mean_abs_err']:.4f}", flush=True)
    result = {"drive": {"seed": CHECK_SEED, "steps": len(frames), "renderer": "exact", "players": ["A", "B"]},
              "calibration_frames": int(len(calibration)), "rows": rows, "hardware": hardware_info()}  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
