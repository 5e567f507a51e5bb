"""lookahead.onnx: a player's whole imagined rollout in one onnxruntime `run`.

With `lookahead_horizon` H >= 1 a player's risk is the largest off-track probability the
MDN-RNN predicts over the next H imagined steps, each fed the mixture's mean as the next z
and the player's own linear policy as the action (engine.policy.risk). Done as H calls of
dream.onnx, a step cost ten onnxruntime calls and twenty numba calls at H = 10; this
graph does it in one: an ONNX Loop whose body is dream.onnx's step followed by the
mixture's mean and the controller, with every player's W, b and horizon as inputs.

    inputs   z (B, 32)        the mixture's mean after the world-model step
             action (B, 3)    the action the player takes now (its policy's)
             h, c (B, 256)    the LSTM state after the world-model step
             W (B, 3, 288), b (B, 3)  float32 controllers
             horizon (B,)     int64 steps to imagine, >= 1 for some player
    outputs  off_max (B,)     max over k <= horizon of the step-k off-track probability
             off_steps (K, B) every step's probability, K = max(horizon)

The graph is built from the MDN-RNN's weights with onnx.helper: the same numbers as the H
separate calls up to float32 rounding (numba sums the mean and the policy in float64, the
fused Gemms sum in another order); the export checks it against that reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from engine.world_model.frames import model_input

LOOKAHEAD_IO = (["z", "action", "h", "c", "W", "b", "horizon"], ["off_max", "off_steps"])
OPSET = 17
STEP = "step/"  # prefix of every name inside the loop body (a subgraph must not shadow outer names)


def _const(name: str, values, dtype=np.float32) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(values, dtype), name))


def lookahead_weights(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The MDN-RNN's state dict (train.models.MDNRNN, as numpy) -> the step's fused float32 weights:
    lstm_w (Z+3+H, 4H) for [z, action, h] @ lstm_w (PyTorch's gate order i, f, g, o), lstm_b (4H,),
    heads_w (H, 3KZ+1): the MDN head then the off-track head, heads_b (3KZ+1,)."""
    f = {k: np.asarray(v, np.float32) for k, v in state.items()}
    return {
        "lstm_w": np.concatenate([f["lstm.weight_ih_l0"].T, f["lstm.weight_hh_l0"].T], axis=0),
        "lstm_b": f["lstm.bias_ih_l0"] + f["lstm.bias_hh_l0"],
        "heads_w": np.concatenate([f["mdn.weight"].T, f["off_track.weight"].T], axis=1),
        "heads_b": np.concatenate([f["mdn.bias"], f["off_track.bias"]]),
    }


def build_lookahead(weights: dict[str, np.ndarray], z_size: int, gaussians: int) -> onnx.ModelProto:
    """The lookahead graph (see the module docstring) for `lookahead_weights(...)`.

    The loop body is the dream step written lean, 30 nodes where the exported dream.onnx has
    55 (one Gemm for both LSTM MatMuls, one for both heads, only the mixture's mean and the
    off-track head computed): at batch 2 a step is mostly onnxruntime's per-node overhead."""
    hidden = weights["lstm_w"].shape[1] // 4
    dims, mdn = z_size + hidden, 3 * gaussians * z_size
    s = STEP
    body_nodes = [
        # the LSTM cell on [z, action] with state (h, c)
        helper.make_node("Concat", [f"{s}z_in", f"{s}a_in", f"{s}h_in"], [f"{s}x"], axis=1),  # (B, Z+3+H)
        helper.make_node("Gemm", [f"{s}x", "lstm_w", "lstm_b"], [f"{s}gates"]),  # (B, 4H)
        helper.make_node("Split", [f"{s}gates"], [f"{s}i", f"{s}f", f"{s}g", f"{s}o"], axis=1),  # 4 x (B, H)
        helper.make_node("Sigmoid", [f"{s}i"], [f"{s}si"]),
        helper.make_node("Sigmoid", [f"{s}f"], [f"{s}sf"]),
        helper.make_node("Tanh", [f"{s}g"], [f"{s}tg"]),
        helper.make_node("Sigmoid", [f"{s}o"], [f"{s}so"]),
        helper.make_node("Mul", [f"{s}sf", f"{s}c_in"], [f"{s}fc"]),
        helper.make_node("Mul", [f"{s}si", f"{s}tg"], [f"{s}ig"]),
        helper.make_node("Add", [f"{s}fc", f"{s}ig"], [f"{s}c_out"]),  # (B, H)
        helper.make_node("Tanh", [f"{s}c_out"], [f"{s}tc"]),
        helper.make_node("Mul", [f"{s}so", f"{s}tc"], [f"{s}h_out"]),  # (B, H)
        # the heads: the mixture's mean as the next z, and the off-track probability
        helper.make_node("Gemm", [f"{s}h_out", "heads_w", "heads_b"], [f"{s}heads"]),  # (B, 3KZ+1)
        _const(f"{s}split", [mdn, 1], np.int64),
        helper.make_node("Split", [f"{s}heads", f"{s}split"], [f"{s}mdn", f"{s}off_logit"], axis=1),
        _const(f"{s}shape", [-1, z_size, 3 * gaussians], np.int64),
        helper.make_node("Reshape", [f"{s}mdn", f"{s}shape"], [f"{s}mdn3"]),  # (B, Z, 3K): logits, mu, log sigma
        _const(f"{s}parts", [gaussians, gaussians, gaussians], np.int64),
        helper.make_node("Split", [f"{s}mdn3", f"{s}parts"], [f"{s}logit", f"{s}mu", f"{s}log_sigma"], axis=2),
        helper.make_node("Softmax", [f"{s}logit"], [f"{s}pi"], axis=2),
        helper.make_node("Mul", [f"{s}pi", f"{s}mu"], [f"{s}pi_mu"]),
        _const(f"{s}axis2", [2], np.int64),
        helper.make_node("ReduceSum", [f"{s}pi_mu", f"{s}axis2"], [f"{s}z_out"], keepdims=0),  # (B, Z)
        helper.make_node("Sigmoid", [f"{s}off_logit"], [f"{s}off2"]),
        _const(f"{s}flat", [-1], np.int64),
        helper.make_node("Reshape", [f"{s}off2", f"{s}flat"], [f"{s}off"]),  # (B,)
        # the next action: World Models' mapping of tanh(W [z, h] + b), as engine.policy.controller
        helper.make_node("Concat", [f"{s}z_out", f"{s}h_out"], [f"{s}zh"], axis=1),  # (B, Z+H)
        helper.make_node("Unsqueeze", [f"{s}zh", f"{s}axis2"], [f"{s}zh3"]),  # (B, Z+H, 1)
        helper.make_node("MatMul", ["W", f"{s}zh3"], [f"{s}wx3"]),  # (B, 3, 1)
        helper.make_node("Squeeze", [f"{s}wx3", f"{s}axis2"], [f"{s}wx"]),
        helper.make_node("Add", [f"{s}wx", "b"], [f"{s}pre"]),
        helper.make_node("Tanh", [f"{s}pre"], [f"{s}t"]),
        _const(f"{s}scale", [1.0, 0.5, 1.0]),  # steer = t, gas = (t + 1) / 2, brake = clip(t, 0, 1)
        _const(f"{s}offset", [0.0, 0.5, 0.0]),
        _const(f"{s}lo", [-1.0, 0.0, 0.0]),
        _const(f"{s}hi", [1.0, 1.0, 1.0]),
        helper.make_node("Mul", [f"{s}t", f"{s}scale"], [f"{s}ts"]),
        helper.make_node("Add", [f"{s}ts", f"{s}offset"], [f"{s}a_raw"]),
        helper.make_node("Max", [f"{s}a_raw", f"{s}lo"], [f"{s}a_lo"]),
        helper.make_node("Min", [f"{s}a_lo", f"{s}hi"], [f"{s}a_out"]),
        helper.make_node("Identity", [f"{s}cond_in"], [f"{s}cond_out"]),
    ]

    def value(name, dtype, shape):
        return helper.make_tensor_value_info(name, dtype, shape)

    f32 = TensorProto.FLOAT
    body = helper.make_graph(
        body_nodes, "lookahead_step",
        [value(f"{s}iter", TensorProto.INT64, []), value(f"{s}cond_in", TensorProto.BOOL, []),
         value(f"{s}z_in", f32, ["batch", z_size]), value(f"{s}a_in", f32, ["batch", 3]),
         value(f"{s}h_in", f32, ["batch", hidden]), value(f"{s}c_in", f32, ["batch", hidden])],
        [value(f"{s}cond_out", TensorProto.BOOL, []), value(f"{s}z_out", f32, ["batch", z_size]),
         value(f"{s}a_out", f32, ["batch", 3]), value(f"{s}h_out", f32, ["batch", hidden]),
         value(f"{s}c_out", f32, ["batch", hidden]), value(f"{s}off", f32, ["batch"])],
    )  # fmt: skip
    nodes = [
        helper.make_node("ReduceMax", ["horizon"], ["steps"], keepdims=0),  # trip count: the longest horizon
        helper.make_node("Loop", ["steps", "", "z", "action", "h", "c"],
                         ["z_last", "a_last", "h_last", "c_last", "off_steps"], body=body),  # fmt: skip
        # off_max[p] = max over k < horizon[p] of off_steps[k, p]
        _const("zero", 0, np.int64),
        _const("one", 1, np.int64),
        helper.make_node("Range", ["zero", "steps", "one"], ["k"]),  # (K,)
        _const("axis1", [1], np.int64),
        helper.make_node("Unsqueeze", ["k", "axis1"], ["k_col"]),  # (K, 1)
        helper.make_node("Less", ["k_col", "horizon"], ["looking"]),  # (K, B)
        _const("no_risk", 0.0),
        helper.make_node("Where", ["looking", "off_steps", "no_risk"], ["off_seen"]),
        helper.make_node("ReduceMax", ["off_seen"], ["off_max"], axes=[0], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "lookahead",
        [value("z", f32, ["batch", z_size]), value("action", f32, ["batch", 3]),
         value("h", f32, ["batch", hidden]), value("c", f32, ["batch", hidden]),
         value("W", f32, ["batch", 3, dims]), value("b", f32, ["batch", 3]),
         value("horizon", TensorProto.INT64, ["batch"])],
        [value("off_max", f32, ["batch"]), value("off_steps", f32, ["steps", "batch"])],
        initializer=[onnx.numpy_helper.from_array(np.ascontiguousarray(v, np.float32), k) for k, v in weights.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vmc-duel export")
    onnx.checker.check_model(model, full_check=True)
    return model


def write_lookahead(rnn_state: dict[str, np.ndarray], out: Path, z_size: int, gaussians: int) -> None:
    """Write lookahead.onnx for an MDN-RNN state dict (numpy arrays by PyTorch's names)."""
    onnx.save(build_lookahead(lookahead_weights(rnn_state), z_size, gaussians), str(out))


def reference_off_max(dream, z: np.ndarray, action: np.ndarray, h: np.ndarray, c: np.ndarray, W: np.ndarray,
                      b: np.ndarray, horizon: np.ndarray) -> np.ndarray:  # fmt: skip
    """What lookahead.onnx computes, the way the engine did before it: one dream.onnx call per
    imagined step, the mixture's mean and the policy in numba. dream: an InferenceSession.
    z (B, Z), action (B, 3), h, c (B, H) float32; W (B, 3, Z+H), b (B, 3); horizon (B,) int
    -> off_max (B,) float64 (0 where horizon is 0)."""
    from engine.policy.controller import policy_actions
    from engine.policy.risk import mixture_stats

    n = len(z)
    off_max, spread, imagined = np.zeros(n), np.empty(n), np.empty((n, 3))
    z, action = z.copy(), action.astype(np.float32)
    W, b = W.astype(np.float64), b.astype(np.float64)  # numba's controller reads float64
    names = ["h_next", "c_next", "mdn_log_pi", "mdn_mu", "mdn_sigma", "off_track_prob"]
    for k in range(1, int(horizon.max()) + 1):
        h, c, log_pi, mu, sigma, off = dream.run(names, {"z": z, "action": action, "h": h, "c": c})
        looking = horizon >= k
        off_max[looking] = np.maximum(off_max[looking], off[looking])
        mixture_stats(log_pi, mu, sigma, z, spread)  # z <- the next mean
        policy_actions(W, b, z, h, imagined)
        action = imagined.astype(np.float32)
    return off_max


def _sessions(weights: Path, names: tuple[str, ...]) -> dict:
    """One-thread CPU InferenceSessions on weights/NAME.onnx."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return {name: ort.InferenceSession(str(weights / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
            for name in names}  # fmt: skip


def _feeds(world_model, obs: np.ndarray, horizons, seed: int):
    """Lookahead feeds on real states: the world model's step on `obs` (B, 96, 96, 3) uint8 from a zero
    state, the mixture's mean as z, random controllers and actions; one feed per horizon in `horizons`
    (every player alike) and one with them all mixed in the batch."""
    from engine.policy.risk import mixture_stats

    n = len(obs)
    hidden = world_model.get_inputs()[2].shape[1]  # h (batch, H)
    zeros = np.zeros((n, hidden), np.float32)
    _, h, c, log_pi, mu, sigma, _, _ = world_model.run(None, {
        "frame": model_input(obs), "prev_action": np.zeros((n, 3), np.float32), "h": zeros, "c": zeros})  # fmt: skip
    z, spread = np.empty((n, log_pi.shape[1]), np.float32), np.empty(n)
    mixture_stats(log_pi, mu, sigma, z, spread)
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 0.1, (n, 3, z.shape[1] + h.shape[1])).astype(np.float32)
    b = rng.normal(0, 0.3, (n, 3)).astype(np.float32)
    action = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    mixed = np.resize(np.asarray(horizons, np.int64), n)
    return [{"z": z, "action": action, "h": h, "c": c, "W": W, "b": b, "horizon": horizon}
            for horizon in [np.full(n, k, np.int64) for k in horizons] + [mixed]]  # fmt: skip


def check_lookahead(weights: Path, obs: np.ndarray, horizons=(1, 5, 10, 25)) -> float:
    """Largest |lookahead.onnx - reference_off_max| over real states from `obs` (B, 96, 96, 3)
    uint8 frames, random controllers, every horizon in `horizons` alone and all mixed."""
    sess = _sessions(weights, ("world_model", "dream", "lookahead"))
    worst = 0.0
    for feed in _feeds(sess["world_model"], obs, horizons, seed=0):
        got = sess["lookahead"].run(["off_max"], feed)[0]
        ref = reference_off_max(sess["dream"], **feed)
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def check_imagination(weights: Path, z_size: int, gaussians: int, obs: np.ndarray | None = None,
                      horizons=(1, 5, 10, 25)) -> float:  # fmt: skip
    """Largest |engine.policy.imagine (lookahead.npz) - lookahead.onnx| in off_max over real states
    (frames of `obs`, default the export's check drive), random controllers, every horizon in
    `horizons` alone and all mixed."""
    from engine.policy.imagine import Imagination

    if obs is None:
        from export.variants import CHECK_SEED, policy_observations

        obs = policy_observations((CHECK_SEED,), 32)
    sess = _sessions(weights, ("world_model", "lookahead"))
    kernel = Imagination(weights / "lookahead.npz", z_size, gaussians)
    worst = 0.0
    for feed in _feeds(sess["world_model"], obs, horizons, seed=1):
        onnx_off = sess["lookahead"].run(["off_max"], feed)[0]
        worst = max(worst, float(np.abs(kernel.off_max(**feed) - onnx_off).max()))
    return worst
