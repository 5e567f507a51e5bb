"""torch -> ONNX: the world-model step, the dream step and the decoder, with parity checks
and the manifest the engine reads its sizes from.

    vmc-duel export [--vae data/checkpoints/vae/vae.pth] [--mdnrnn data/checkpoints/mdnrnn/mdnrnn.pth]
                    [--out weights] [--force]

Every graph has a dynamic batch axis. After writing each file the exporter runs it in
onnxruntime at batch 1, 2 and 64 against torch and records the largest difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from engine.world_model.frames import model_input
from engine.world_model.int8_kind import CHECK_FILE
from export.graphs import DECODER_IO, DREAM_IO, WORLD_MODEL_IO, Decoder, DreamStep, WorldModelStep
from train.checkpoint import torch_load
from train.models import MDNRNN, VAE, MDNRNNConfig, VAEConfig

OPSET = 17
PARITY_BATCHES = (1, 2, 64)
# Largest |torch - onnxruntime| accepted for float outputs. Measured 1.9e-6 (world model) and
# 2.4e-6 (dream): float32 sums in other orders, by kernels that differ between AVX2, AVX-512,
# NEON and torch's own; 1e-3 leaves 400x room for those and still catches a wrong operator
# or weight, which shows at 1e-1 and above.
PARITY_TOLERANCE = 1e-3
# Largest |lookahead.onnx - per-step dream.onnx rollout| in off-track probability: float32
# against numba's float64 mean and policy, and fused Gemms; measured 1.8e-7 over 25 steps.
LOOKAHEAD_TOLERANCE = 1e-5


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_state(model: torch.nn.Module, path: Path, what: str) -> torch.nn.Module:
    """Load a state dict (weights_only) into `model`; errors name the file."""
    if not Path(path).exists():
        raise ValueError(f"{path}: no {what} weights found")
    state = torch_load(path, f"{what} weights file")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not weights of this {what} architecture ({str(e)[:200]})") from None
    return model.eval()


def example_inputs(name: str, batch: int, rng: np.random.Generator, obs: np.ndarray | None = None) -> dict:
    """Inputs of graph `name` for a batch; obs (B, 96, 96, 3) uint8 may be given (the world model
    takes their frames, engine.world_model.frames.model_input)."""
    h = rng.standard_normal((batch, MDNRNNConfig.hidden_size)).astype(np.float32) * 0.5
    c = rng.standard_normal((batch, MDNRNNConfig.hidden_size)).astype(np.float32) * 0.5
    a = rng.uniform(-1, 1, (batch, 3)).astype(np.float32)
    z = rng.standard_normal((batch, VAEConfig.z_size)).astype(np.float32)
    if name == "world_model":
        if obs is None:
            obs = rng.integers(0, 256, (batch, 96, 96, 3), dtype=np.uint8)
        return {"frame": model_input(obs[:batch]), "prev_action": a, "h": h, "c": c}
    if name == "dream":
        return {"z": z, "action": a, "h": h, "c": c}
    return {"z": z}


def graphs(vae: VAE, rnn: MDNRNN) -> dict[str, tuple[torch.nn.Module, tuple[list[str], list[str]]]]:
    return {
        "world_model": (WorldModelStep(vae, rnn).eval(), WORLD_MODEL_IO),
        "dream": (DreamStep(rnn).eval(), DREAM_IO),
        "decoder": (Decoder(vae).eval(), DECODER_IO),
    }


def export_graph(module: torch.nn.Module, io: tuple[list[str], list[str]], name: str, path: Path) -> None:
    inputs, outputs = io
    example = example_inputs(name, 2, np.random.default_rng(0))
    args = tuple(torch.from_numpy(example[k]) for k in inputs)
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=inputs,
        output_names=outputs,
        dynamic_axes={k: {0: "batch"} for k in inputs + outputs},
        opset_version=OPSET,
        dynamo=False,
    )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def parity(module: torch.nn.Module, io, name: str, path: Path, obs: np.ndarray | None = None) -> float:
    """Largest |torch - onnxruntime| over every output at batches 1, 2, 64 (uint8 outputs: levels)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = io
    worst = 0.0
    rng = np.random.default_rng(1)
    for batch in PARITY_BATCHES:
        feed = example_inputs(name, batch, rng, obs if obs is not None and len(obs) >= batch else None)
        with torch.no_grad():
            ref = module(*(torch.from_numpy(feed[k]) for k in inputs))
        ref = (ref,) if isinstance(ref, torch.Tensor) else ref
        got = sess.run(outputs, feed)
        for r, g in zip(ref, got):
            if g.shape != tuple(r.shape):
                raise RuntimeError(f"{path}: output shape {g.shape} != torch {tuple(r.shape)}")
            worst = max(worst, float(np.abs(r.numpy().astype(np.float64) - g.astype(np.float64)).max()))
    return worst


def export_checked(module: torch.nn.Module, io, name: str, path: Path, obs: np.ndarray | None) -> dict:
    """Export graph `name` to `path`, check it against torch (`parity`; RuntimeError past the tolerance:
    PARITY_TOLERANCE, 1.0 for the decoder's uint8 levels) and return its manifest entry."""
    export_graph(module, io, name, path)
    diff = parity(module, io, name, path, obs)
    if diff > (1.0 if name == "decoder" else PARITY_TOLERANCE):
        raise RuntimeError(f"{path}: onnxruntime differs from torch by {diff}")
    return {"sha256": sha256(path), "opset": OPSET, "precision": "fp32", "parity_max_abs_diff": diff,
            **io_spec(path)}  # fmt: skip


def variant_entry(fp32: Path, precision: str, check: np.ndarray) -> dict:
    """The manifest entry of world_model.{precision}.onnx beside `fp32`, after its z error on `check`
    observations passed export.variants.check_error."""
    from export import variants as var

    path = fp32.parent / f"world_model.{precision}.onnx"
    error = var.compare(fp32, path, check)
    var.check_error(path, error)
    return {"sha256": sha256(path), "opset": OPSET, "precision": precision, "variant_of": fp32.name, **error,
            **io_spec(path)}  # fmt: skip


def io_spec(path: Path) -> dict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def spec(args):
        return [{"name": a.name, "shape": [d if isinstance(d, int) else "batch" for d in a.shape], "type": a.type}
                for a in args]  # fmt: skip

    return {"inputs": spec(sess.get_inputs()), "outputs": spec(sess.get_outputs())}


def training_record(vae_path: Path, rnn_path: Path, renderer_gap: Path | None) -> dict:
    """What the weights came from: the runs' history.json beside each weight file (if there)."""
    record: dict = {}
    for key, path in (("vae", vae_path), ("mdnrnn", rnn_path)):
        hist = Path(path).parent / "history.json"
        if hist.exists():
            h = json.loads(hist.read_text())
            record[key] = {"run": str(Path(path).parent), "epochs": len(h["history"]), "final": h["history"][-1]}
            if "files" in h:
                record[key]["data_episodes"] = len(h["files"])
    if renderer_gap is not None:
        record["renderer_gap"] = json.loads(Path(renderer_gap).read_text())
    return record


def export_lookahead(rnn: MDNRNN, out: Path, obs: np.ndarray | None = None) -> dict:
    """Write out/lookahead.onnx for `rnn` (world_model.onnx and dream.onnx already in `out`) and
    check it against one dream.onnx call per imagined step; returns its manifest entry."""
    from export.lookahead import check_lookahead, write_lookahead

    path = out / "lookahead.onnx"
    state = {k: v.detach().cpu().numpy() for k, v in rnn.state_dict().items()}
    write_lookahead(state, path, VAEConfig.z_size, MDNRNNConfig.gaussians)
    if obs is None:
        from export.variants import CHECK_SEED, policy_observations

        obs = policy_observations((CHECK_SEED,), 32)
    diff = check_lookahead(out, obs)
    if diff > LOOKAHEAD_TOLERANCE:
        raise RuntimeError(f"{path}: differs from the dream.onnx rollout by {diff} (tolerance {LOOKAHEAD_TOLERANCE})")
    return {"sha256": sha256(path), "opset": OPSET, "precision": "fp32", "built_from": "mdnrnn.pth",
            "parity_max_abs_diff": diff, "parity_reference": "one dream.onnx run per imagined step",
            **io_spec(path)}  # fmt: skip


def export_lookahead_weights(rnn: MDNRNN, out: Path) -> dict:
    """Write out/lookahead.npz, the weights of the CPU lookahead kernel (engine.policy.imagine), from
    `rnn`, and check the kernel against out/lookahead.onnx; returns its manifest entry."""
    from export.lookahead import check_imagination, lookahead_weights

    path = out / "lookahead.npz"
    state = {k: v.detach().cpu().numpy() for k, v in rnn.state_dict().items()}
    np.savez(path, **lookahead_weights(state))
    diff = check_imagination(out, VAEConfig.z_size, MDNRNNConfig.gaussians)
    if diff > LOOKAHEAD_TOLERANCE:
        raise RuntimeError(f"{path}: the numba lookahead differs from lookahead.onnx by {diff} "
                           f"(tolerance {LOOKAHEAD_TOLERANCE})")  # fmt: skip
    return {"sha256": sha256(path), "precision": "fp32", "built_from": "mdnrnn.pth", "used_by": "engine.policy.imagine",
            "parity_max_abs_diff": diff, "parity_reference": "lookahead.onnx"}  # fmt: skip


def requantise_int8(out: Path, gate_tracks: int = 20, calibration_steps: int = 400,
                    gate_renderer: str = "exact") -> dict:  # fmt: skip
    """Quantise world_model.int8.onnx again in `out` (an exported directory with shipped
    controllers), calibrated on the controllers' own drives, check its z error, run the
    driving gate (export.variants.int8_gate) and record it all in the manifest. The runtime's
    `--precision auto` picks int8 on CPU only when the gate passed."""
    from export import variants as var

    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    calibration = var.on_policy_observations(out, var.CALIBRATION_SEEDS, calibration_steps)
    check = var.policy_observations((var.CHECK_SEED,), 64)
    path = out / "world_model.int8.onnx"
    tmp = out / "world_model.int8.tmp.onnx"
    var.make_int8(out / "world_model.onnx", tmp, calibration)
    error = var.compare(out / "world_model.onnx", tmp, check)
    var.check_error(tmp, error)
    tmp.replace(path)
    manifest["files"][CHECK_FILE] = var.save_check_frames(out, check)
    manifest["files"][path.name] = {
        "sha256": sha256(path), "opset": OPSET, "precision": "int8", "variant_of": "world_model.onnx",
        **error, **io_spec(path), "quantised_ops": var.INT8_OPS, "reduce_range": True,
        "calibration": {"tracks": list(var.CALIBRATION_SEEDS), "observations": int(len(calibration)),
                        "policy": "the shipped controllers A and B (fp32), exact renderer"},
    }  # fmt: skip
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")  # the gate loads the variant by its sha256
    manifest["files"][path.name]["gate"] = var.int8_gate(out, tracks=gate_tracks, renderer=gate_renderer)
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest["files"][path.name]


def rebuild_world_model(out: Path, force: bool = False, gate_tracks: int = 20, calibration_steps: int = 400,
                        gate_renderer: str = "exact") -> dict:  # fmt: skip
    """Export world_model.onnx and world_model.fp16.onnx again in an exported weights directory from
    its vae.pth and mdnrnn.pth (the graph changed, the models did not), check fp32 against torch and
    fp16 against fp32, then quantise int8 again and run its driving gate (`requantise_int8`); every
    other file and manifest entry stays. Refuses without `force`: it replaces shipped graphs."""
    from export import variants as var

    if not force:
        raise ValueError(f"{out}: rebuilding replaces its world_model*.onnx: pass --force")
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    vae = load_state(VAE(VAEConfig()), out / "vae.pth", "VAE")
    rnn = load_state(MDNRNN(MDNRNNConfig()), out / "mdnrnn.pth", "MDN-RNN")
    module, io = graphs(vae, rnn)["world_model"]
    check = var.policy_observations((var.CHECK_SEED,), 64)
    fp32 = out / "world_model.onnx"
    manifest["files"][fp32.name] = export_checked(module, io, "world_model", fp32, check)
    var.make_fp16(vae, rnn, out / "world_model.fp16.onnx")
    manifest["files"]["world_model.fp16.onnx"] = variant_entry(fp32, "fp16", check)
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return requantise_int8(out, gate_tracks=gate_tracks, calibration_steps=calibration_steps,
                           gate_renderer=gate_renderer)  # fmt: skip


def add_lookahead(out: Path, force: bool = False) -> dict:
    """Add lookahead.onnx to an exported weights directory, built from its mdnrnn.pth; the
    manifest gains its entry. Refuses to replace one without `force`."""
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if "lookahead.onnx" in manifest["files"] and (out / "lookahead.onnx").exists() and not force:
        raise ValueError(f"{out / 'lookahead.onnx'} exists: pass --force to replace it")
    rnn = load_state(MDNRNN(MDNRNNConfig()), out / "mdnrnn.pth", "MDN-RNN")
    manifest["files"]["lookahead.onnx"] = export_lookahead(rnn, out)
    manifest["files"]["lookahead.npz"] = export_lookahead_weights(rnn, out)
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest["files"]["lookahead.onnx"]


def export_all(
    vae_path: Path,
    rnn_path: Path,
    out: Path,
    force: bool = False,
    obs: np.ndarray | None = None,
    variants: bool = True,
    calibration_steps: int = 100,
    risk_steps: int = 300,
    renderer_gap: Path | None = None,
) -> dict:
    """Write weights/{vae.pth, mdnrnn.pth, world_model.onnx, dream.onnx, decoder.onnx, manifest.json}
    and, with `variants`, world_model.int8.onnx and world_model.fp16.onnx. `calibration_steps` per
    track calibrate the int8 variant, `risk_steps` per track the spread-based risk."""
    out.mkdir(parents=True, exist_ok=True)
    targets = ["vae.pth", "mdnrnn.pth", "world_model.onnx", "dream.onnx", "decoder.onnx", "lookahead.onnx",
               "lookahead.npz", "manifest.json", "world_model.int8.onnx", "world_model.fp16.onnx"]  # fmt: skip
    existing = [t for t in targets if (out / t).exists()]
    if existing and not force:
        raise ValueError(f"{out} already holds {', '.join(existing)}: pass --force to replace them")
    vae = load_state(VAE(VAEConfig()), vae_path, "VAE")
    rnn = load_state(MDNRNN(MDNRNNConfig()), rnn_path, "MDN-RNN")
    if Path(vae_path).resolve() != (out / "vae.pth").resolve():
        shutil.copyfile(vae_path, out / "vae.pth")
    if Path(rnn_path).resolve() != (out / "mdnrnn.pth").resolve():
        shutil.copyfile(rnn_path, out / "mdnrnn.pth")
    files: dict[str, dict] = {
        "vae.pth": {"sha256": sha256(out / "vae.pth"), "source": str(vae_path)},
        "mdnrnn.pth": {"sha256": sha256(out / "mdnrnn.pth"), "source": str(rnn_path)},
    }
    for name, (module, io) in graphs(vae, rnn).items():
        files[f"{name}.onnx"] = export_checked(module, io, name, out / f"{name}.onnx", obs)
    files["lookahead.onnx"] = export_lookahead(rnn, out, obs)
    files["lookahead.npz"] = export_lookahead_weights(rnn, out)
    if variants:
        from export import variants as var

        calibration = var.policy_observations(var.CALIBRATION_SEEDS, calibration_steps)
        check = var.policy_observations((var.CHECK_SEED,), 64)
        fp32 = out / "world_model.onnx"
        var.make_int8(fp32, out / "world_model.int8.onnx", calibration)
        var.make_fp16(vae, rnn, out / "world_model.fp16.onnx")
        for precision in ("int8", "fp16"):
            files[f"world_model.{precision}.onnx"] = variant_entry(fp32, precision, check)
        files[CHECK_FILE] = var.save_check_frames(out, check)
        files["world_model.int8.onnx"]["calibration"] = {
            "tracks": list(var.CALIBRATION_SEEDS), "observations": int(len(calibration)),
            "policy": "train.collect.ClumsyDriver",
        }  # fmt: skip
    manifest = {
        "format": 1,
        "training": training_record(vae_path, rnn_path, renderer_gap),
        "sizes": {
            "obs": [96, 96, 3], "action": 3, "z": VAEConfig.z_size, "hidden": MDNRNNConfig.hidden_size,
            "gaussians": MDNRNNConfig.gaussians, "frame": [64, 64, 3],
        },  # fmt: skip
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    from export.risk_calibration import calibrate  # reads the graphs through the manifest just written

    manifest["risk"] = calibrate(out, steps=risk_steps)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out}: a file, not a directory")
    if args.int8_only or args.world_model_only:
        meta = rebuild_world_model(args.out, force=args.force) if args.world_model_only else requantise_int8(args.out)
        g = meta["gate"]
        scores = ", ".join(f"{p} fp32 {g['reward_mean']['fp32'][p]:.1f} int8 {g['reward_mean']['int8'][p]:.1f}"
                           for p in ("A", "B"))  # fmt: skip
        print(f"{args.out / 'world_model.int8.onnx'}  sha256 {meta['sha256'][:12]}  z error "
              f"{meta['z_mean_abs_err']:.4f} ({100 * meta['z_err_over_spread']:.2f}% of z's spread)")
        print(f"gate, tracks {g['tracks']} ({g['renderer']}): {scores}; action error "
              f"{g['action_mean_abs_err']:.4f}: {'PASSED' if g['passed'] else 'FAILED'}")
        return 0
    if args.lookahead_only:
        meta = add_lookahead(args.out, force=args.force)
        print(f"{args.out / 'lookahead.onnx'}  sha256 {meta['sha256'][:12]}  parity {meta['parity_max_abs_diff']:.2e} "
              "against the dream.onnx rollout")  # fmt: skip
        return 0
    manifest = export_all(args.vae, args.mdnrnn, args.out, force=args.force, renderer_gap=args.renderer_gap)
    for name, meta in manifest["files"].items():
        extra = f"parity {meta['parity_max_abs_diff']:.2e}" if "parity_max_abs_diff" in meta else ""
        if "z_mean_abs_err" in meta:
            extra = (f"z error vs fp32 {meta['z_mean_abs_err']:.4f} ({100 * meta['z_err_over_spread']:.2f}% of z's "
                     f"spread), {meta['latency_us_batch1_1thread']:.0f} us vs fp32 "
                     f"{meta['fp32_latency_us_batch1_1thread']:.0f} us (batch 1, 1 thread)")  # fmt: skip
        print(f"{args.out / name}  sha256 {meta['sha256'][:12]}  {extra}")
    return 0
