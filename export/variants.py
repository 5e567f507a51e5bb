"""Precision variants of the world-model step: int8 (static QDQ) for CPUs, fp16 for CUDA.

- int8: static quantisation in QDQ format of the encoder's four convolutions, per-channel
  weights, activations calibrated on what the trained controllers see when they drive
  (the collection policy's frames before controllers exist). Only the convolutions (and
  the ReLUs after them, which fold into the convolutions' output quantisation): they
  are 29.4 of the step's 35.8 MFLOP, and the recurrent part is where int8 hurts
  (export/int8_sensitivity.py, one layer at a time: the LSTM's h W_hh alone drifts h by
  0.142 over a 300-step drive, and quantising a head's input quantises h, which feeds
  back). With the LSTM and the heads in int8 too, h drifted from fp32 by 0.142 (mean |dh|)
  against 0.006 with them in float, and the controllers scored 430 (A) and 575 (B)
  instead of 910 and 906 over 12 held-out tracks; convolutions alone scored 911 and 907,
  as fast (1.7x fp32 at batch 2 and 256, one thread). ONNX Runtime's documentation advises
  static over dynamic quantisation for convolutional models (dynamic ConvInteger was
  measured 4x slower here). Weights use 7 bits (`reduce_range`):
  on x86 CPUs without VNNI (AVX2, AVX-512 before VNNI) onnxruntime multiplies u8
  activations by s8 weights with VPMADDUBSW, whose 16-bit pair sums saturate when both
  use the full 8 bits; onnxruntime's documentation advises reduce_range for this. On a
  randomly initialised model full-range weights gave a z error of 78% of z's spread on an
  AVX2-only CPU against 3% with VNNI; with 7-bit weights the two agree.
- fp16: weights and activations in half precision, inputs and outputs kept as they are
  (float32 frames and state), for the CUDA execution provider.

Each variant's z error against fp32 on held-out observations, and its CPU latency, go
into the manifest.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from engine import make_env
from engine.hardware import vector_isa
from engine.world_model.frames import model_input
from train.collect import ClumsyDriver, CollectConfig

CALIBRATION_SEEDS = (1001, 1002, 1003, 1004)  # tracks never used for training data (seeds 0-219)
CALIBRATION_STEPS = 100  # observations per calibration track
CHECK_SEED = 1005  # a further track for the error check
# Largest z error of a variant, as a share of z's spread over the check observations, that
# export accepts. The shipped int8 model measures about 6%, fp16 0.04%; above 20% the
# latent no longer tells the controller where the road is (the failure this catches is
# int8 saturation on CPUs without VNNI, which measured 78%).
MAX_Z_ERR_OVER_SPREAD = 0.2


def policy_observations(seeds: tuple[int, ...], steps: int) -> np.ndarray:
    """(len(seeds) * steps, 96, 96, 3) uint8: what the collection policy sees on these tracks."""
    out = []
    cfg = CollectConfig(renderer="exact", max_steps=steps + 1)
    for seed in seeds:
        env = make_env("exact", max_episode_steps=steps + 1)
        obs, _ = env.reset(seed=seed)
        driver = ClumsyDriver(cfg, seed)
        for _ in range(steps):
            out.append(obs)
            obs, *_ = env.step(driver.act(env.unwrapped))
    return np.stack(out)


def _feed(obs: np.ndarray) -> dict[str, np.ndarray]:
    b = len(obs)
    zeros = np.zeros((b, 256), np.float32)
    return {"frame": model_input(obs), "prev_action": np.zeros((b, 3), np.float32), "h": zeros, "c": zeros}


class _Reader(CalibrationDataReader):
    def __init__(self, obs: np.ndarray, batch: int = 20):
        self.batches = iter([_feed(obs[i : i + batch]) for i in range(0, len(obs), batch)])

    def get_next(self):
        return next(self.batches, None)


# What int8 covers: the encoder's convolutions (see the module docstring), and their ReLUs: a ReLU
# after a quantised convolution folds into the quantisation of its output (the range starts at 0),
# so the layers pass uint8 to each other; with Conv alone each ReLU ran between a dequantise and a
# quantise node, 13 us of a 191 us step at batch 1, and the z error was 4.7% of z's spread, not 3.5%.
INT8_OPS = ["Conv", "Relu"]


def on_policy_observations(weights: Path, seeds: tuple[int, ...], steps: int, every: int = 4) -> np.ndarray:
    """(n, 96, 96, 3) uint8: what the trained controllers A and B (fp32) see driving `seeds`
    on the exact renderer, every `every`-th step of `steps`."""
    from engine.race.duel import Duel

    frames = []
    with Duel(renderer="exact", device="cpu", precision="fp32", duels=len(seeds), weights_dir=weights) as duel:
        duel.reset(list(seeds))
        for t in range(steps):
            if duel.finished:
                break
            if t % every == 0:
                frames.append(duel.frames.copy())
            duel.step()
    return np.concatenate(frames)


def save_check_frames(out: Path, check: np.ndarray) -> dict:
    """Ship the check observations (N, 96, 96, 3) uint8 as `out`/int8_check.npz, so that the runtime
    can measure int8's z error on a CPU kind the gate did not run on (engine.world_model.int8_kind);
    returns its manifest entry."""
    import hashlib

    from engine.files import atomic_path
    from engine.world_model.int8_kind import CHECK_FILE

    path = Path(out) / CHECK_FILE
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, frames=np.ascontiguousarray(check, dtype=np.uint8))
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "frames": int(len(check)),
            "tracks": [CHECK_SEED], "policy": "train.collect.ClumsyDriver, exact renderer",
            "purpose": "int8's z error against fp32 on a CPU kind its driving gate did not run on"}  # fmt: skip


def make_int8(fp32: Path, out: Path, calibration: np.ndarray) -> None:
    quantize_static(
        str(fp32), str(out), _Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OPS,
        reduce_range=True,
    )  # fmt: skip


class VariantError(ValueError):
    """A precision variant strays too far from fp32 on this CPU."""


def check_error(path: Path, meta: dict[str, float], bound: float = MAX_Z_ERR_OVER_SPREAD) -> None:
    """Refuse a variant whose z error (from `compare`) is over `bound` x z's spread."""
    err = meta["z_err_over_spread"]
    if not err <= bound:  # NaN fails too
        raise VariantError(
            f"{path}: z error against fp32 is {100 * err:.1f}% of z's spread, over the {100 * bound:.0f}% bound "
            f"(this CPU: {vector_isa()}). Not shipped; for int8 on a "
            "CPU without VNNI, check that the export keeps reduce_range=True (see export/variants.py)"
        )


def make_fp16(vae, rnn, out: Path) -> None:
    """Export the step with the VAE and MDN-RNN in float16 (torch copies; the originals stay fp32)."""
    import copy

    import torch

    from export.graphs import WORLD_MODEL_IO, WorldModelStep
    from export.onnx_export import export_graph

    step = WorldModelStep(copy.deepcopy(vae).half(), copy.deepcopy(rnn).half(), half=True).eval()
    with torch.no_grad():
        export_graph(step, WORLD_MODEL_IO, "world_model", out)


def compare(fp32: Path, variant: Path, obs: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """z error of `variant` against fp32 (mean, max, and relative to z's spread) and CPU latency."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    ref = ort.InferenceSession(str(fp32), opts, providers=["CPUExecutionProvider"])
    var = ort.InferenceSession(str(variant), opts, providers=["CPUExecutionProvider"])
    feed = _feed(obs)
    z_ref = ref.run(["z"], feed)[0]
    z_var = var.run(["z"], feed)[0]
    err = np.abs(z_ref - z_var)

    def latency(sess: ort.InferenceSession) -> float:
        one = _feed(obs[:1])
        sess.run(["z"], one)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(20):
                sess.run(None, one)
            times.append((time.perf_counter() - t) / 20)
        return float(np.median(times) * 1e6)

    return {
        "z_mean_abs_err": float(err.mean()), "z_max_abs_err": float(err.max()),
        "z_err_over_spread": float(err.mean() / z_ref.std(axis=0).mean()),
        "latency_us_batch1_1thread": latency(var), "fp32_latency_us_batch1_1thread": latency(ref),
    }  # fmt: skip


GATE_SEED_START = 900_000  # the evaluation tracks: never trained on, never in the held-out tournament
GATE_TRACKS = 20
GATE_TOLERANCE = 0.02  # int8's mean reward within 2% of fp32's, for each controller
GATE_DRIVE_STEPS = 300  # steps of the on-policy drive that measures the action error


def on_policy_drive(weights: Path, seed: int = CHECK_SEED,
                    steps: int = GATE_DRIVE_STEPS) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """frames (T, 2, 96, 96, 3) uint8 and the actions taken (T, 2, 3) float32 of an fp32 duel
    of the controllers in `weights` on track `seed` (exact renderer)."""
    from engine.race.duel import Duel

    frames, actions = [], []
    with Duel(renderer="exact", device="cpu", precision="fp32", weights_dir=weights) as duel:
        duel.reset(seed)
        for _ in range(steps):
            if duel.finished:
                break
            frames.append(duel.frames.copy())
            duel.step()
            actions.append(np.array([t.action for t in duel.telemetry], np.float32))
    return np.stack(frames), np.stack(actions)


def action_error(weights: Path, seed: int = CHECK_SEED, steps: int = GATE_DRIVE_STEPS) -> float:
    """Mean |action_int8 - action_fp32| of controllers A and B over an fp32 drive on `seed`:
    both world models see the same frames and previous actions, each keeps its own (h, c),
    and each controller acts on each model's [z, h]."""
    from engine.policy.controller import policy_actions
    from engine.policy.players import load_controllers
    from engine.world_model.runtime import WorldModel

    frames, actions = on_policy_drive(weights, seed, steps)
    W, b, _ = load_controllers([weights / "controllerA.npz", weights / "controllerB.npz"], weights)
    models = {p: WorldModel(2, device="cpu", precision=p, weights_dir=weights) for p in ("fp32", "int8")}
    err = []
    for obs, act in zip(frames, actions):
        out = {}
        for p, wm in models.items():
            z = wm.step(obs)["z"]
            out[p] = np.empty((2, 3))
            policy_actions(W, b, z, wm.h, out[p])
            wm.set_actions(act)
        err.append(np.abs(out["int8"] - out["fp32"]).mean())
    return float(np.mean(err))


def int8_gate(weights: Path, tracks: int = GATE_TRACKS, renderer: str = "exact", processes: int = 2) -> dict:
    """Does world_model.int8.onnx drive as well as fp32? Both controllers race `tracks`
    evaluation tracks with each precision in one run; passed when each one's int8 mean reward
    is within GATE_TOLERANCE of its fp32 mean. Also the action error on an on-policy drive."""
    from engine.hardware import hardware_info
    from engine.race.tournament import run_tournament

    means = {}
    for precision in ("fp32", "int8"):
        s = run_tournament(tracks=tracks, seed_start=GATE_SEED_START, renderer=renderer, device="cpu",
                           precision=precision, processes=processes, weights_dir=weights)  # fmt: skip
        means[precision] = {p: s["players"][p]["reward_mean"] for p in ("A", "B")}
    gaps = {p: (means["int8"][p] - means["fp32"][p]) / abs(means["fp32"][p]) for p in ("A", "B")}
    return {
        "tracks": f"{GATE_SEED_START}-{GATE_SEED_START + tracks - 1}", "renderer": renderer,
        "reward_mean": means, "relative_gap": gaps, "tolerance": GATE_TOLERANCE,
        "action_mean_abs_err": action_error(weights), "passed": all(abs(g) <= GATE_TOLERANCE for g in gaps.values()),
        "hardware": hardware_info(),
    }  # fmt: skip
