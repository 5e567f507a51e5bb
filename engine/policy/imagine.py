"""The imagined rollout of the lookahead in numba: lookahead.onnx's numbers without its per-node cost.

With `lookahead_horizon` H >= 1 a player's risk reads the largest off-track probability the
MDN-RNN predicts over the next H imagined steps (engine.policy.risk). lookahead.onnx does
that in one onnxruntime `run`, but at the batch of a duel (2 players) each imagined step
costs about 50 us there: two small Gemms and some thirty element-wise nodes, each with its
own dispatch. This kernel does the same step in one pass per player, the LSTM's matrix as
row updates (`gates += x[k] * lstm_w[k]`, 1024 floats a row: SIMD over the gates) and only
the columns of the heads the lookahead reads (the mixture's logits and means and the
off-track logit; not the spreads), in float32 like the graph.

Each player is computed alone, in the same order whatever the batch, so a player's risk
does not depend on who else is in the batch (bit for bit); against lookahead.onnx and the
per-step dream.onnx reference it agrees to float32 rounding (tests/test_lookahead.py).

The weights come from lookahead.npz next to lookahead.onnx (`vmc-duel export` writes both
from the same MDN-RNN; `lookahead_weights` in export/lookahead.py is their layout).
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from engine.world_model.manifest import WeightsError

ARRAYS = ("lstm_w", "lstm_b", "heads_w", "heads_b")  # lookahead.npz: as export.lookahead.lookahead_weights


class Imagination:
    """The MDN-RNN's dream step for the lookahead, from lookahead.npz.

    Args:
        path: lookahead.npz: lstm_w (Z+3+H, 4H), lstm_b (4H,), heads_w (H, 3KZ+1), heads_b (3KZ+1,)
            float32, the fused weights of export.lookahead.lookahead_weights.
        z_size, gaussians: Z and K (weights/manifest.json's sizes).
    """

    def __init__(self, path: Path, z_size: int, gaussians: int):
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {name: np.ascontiguousarray(f[name], np.float32) for name in ARRAYS}
        except (OSError, KeyError, ValueError) as e:
            raise WeightsError(f"{path}: not a lookahead weights file with {', '.join(ARRAYS)} ({e})") from None
        hidden = arrays["lstm_w"].shape[1] // 4
        mdn = 3 * gaussians * z_size
        expected = {"lstm_w": (z_size + 3 + hidden, 4 * hidden), "lstm_b": (4 * hidden,),
                    "heads_w": (hidden, mdn + 1), "heads_b": (mdn + 1,)}  # fmt: skip
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise WeightsError(f"{path}: {name} is {arrays[name].shape}, expected {shape}")
        # The heads' columns the lookahead reads, in the order the kernel wants them:
        # per dimension d the K logits, then per d the K means, then the off-track logit.
        # The MDN head is laid out (Z, 3K): logits, means, log-spreads of dimension d.
        d, k = np.meshgrid(np.arange(z_size), np.arange(gaussians), indexing="ij")  # (Z, K)
        logits = (d * 3 * gaussians + k).ravel()
        means = (d * 3 * gaussians + gaussians + k).ravel()
        cols = np.concatenate([logits, means, [mdn]])  # (2KZ+1,)
        self.lstm_w, self.lstm_b = arrays["lstm_w"], arrays["lstm_b"]
        self.heads_w = np.ascontiguousarray(arrays["heads_w"][:, cols])  # (H, 2KZ+1)
        self.heads_b = np.ascontiguousarray(arrays["heads_b"][cols])  # (2KZ+1,)
        self.z_size, self.gaussians, self.hidden = z_size, gaussians, hidden

    def off_max(self, z: np.ndarray, action: np.ndarray, h: np.ndarray, c: np.ndarray, W: np.ndarray,
                b: np.ndarray, horizon: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """lookahead.onnx's off_max: z (B, Z), action (B, 3), h, c (B, H) float32, W (B, 3, Z+H),
        b (B, 3) float32, horizon (B,) int64 -> (B,) float32, the largest off-track probability over
        each player's next horizon[p] imagined steps (0 where horizon is 0)."""
        n = len(z)
        out = np.empty(n, np.float32) if out is None else out
        imagine(np.ascontiguousarray(z, np.float32), np.ascontiguousarray(action, np.float32),
                np.ascontiguousarray(h, np.float32), np.ascontiguousarray(c, np.float32),
                np.ascontiguousarray(W, np.float32), np.ascontiguousarray(b, np.float32),
                np.ascontiguousarray(horizon, np.int64), self.lstm_w, self.lstm_b, self.heads_w, self.heads_b,
                self.gaussians, out)  # fmt: skip
        return out


TANH_CLAMP = np.float32(7.90531110763549805)  # |x| beyond which the rational form below is +-1 in float32
# tanh(x) ~ x P(x^2) / Q(x^2) on [-TANH_CLAMP, TANH_CLAMP] (Eigen's float tanh; within 4e-7 of tanh):
# arithmetic only, so the gate loops vectorise (a libm tanhf or expf call per gate would not)
TANH_P = tuple(np.float32(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                       5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                       4.89352455891786e-03))  # fmt: skip
TANH_Q = tuple(np.float32(v) for v in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                       4.89352518554385e-03))  # fmt: skip


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _tanh(x: np.float32) -> np.float32:
    v = TANH_CLAMP if x > TANH_CLAMP else x
    v = -TANH_CLAMP if v < -TANH_CLAMP else v
    x2 = v * v
    p = TANH_P[0]
    for a in TANH_P[1:]:
        p = p * x2 + a
    q = TANH_Q[0]
    for a in TANH_Q[1:]:
        q = q * x2 + a
    return v * p / q


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _sigmoid(x: np.float32) -> np.float32:
    half = np.float32(0.5)
    return half * _tanh(half * x) + half


@numba.njit(cache=True, nogil=True)
def _rows_times(x: np.ndarray, start: int, w: np.ndarray, out: np.ndarray, active: np.ndarray) -> None:
    """out[p] += x[p, start : start + K] @ w for every player p with active[p]: x (P, >= start + K),
    w (K, M), out (P, M), float32. (The column offset, not a slice of x: one compiled signature.)

    Four rows of w at a time are read once for all players (the weights are what the time
    goes on at a duel's batch); each player's sums run in the same order whatever the batch,
    so its result does not depend on who else is computed."""
    n, m = w.shape
    k = 0
    while k + 4 <= n:
        r0, r1, r2, r3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        for p in range(x.shape[0]):
            if not active[p]:
                continue
            x0, x1, x2, x3 = x[p, start + k], x[p, start + k + 1], x[p, start + k + 2], x[p, start + k + 3]
            o = out[p]
            for j in range(m):
                o[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
        k += 4
    while k < n:
        r = w[k]
        for p in range(x.shape[0]):
            if not active[p]:
                continue
            xk, o = x[p, start + k], out[p]
            for j in range(m):
                o[j] += xk * r[j]
        k += 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def imagine(z: np.ndarray, action: np.ndarray, h: np.ndarray, c: np.ndarray, W: np.ndarray, b: np.ndarray,
            horizon: np.ndarray, lstm_w: np.ndarray, lstm_b: np.ndarray, heads_w: np.ndarray, heads_b: np.ndarray,
            gaussians: int, out: np.ndarray) -> None:  # fmt: skip
    """The kernel of `Imagination.off_max` (see there), every array float32 but horizon (int64).
    All players step together, imagined step by imagined step, while their horizon lasts."""
    players, nz = z.shape
    hidden = h.shape[1]
    inputs = nz + 3 + hidden
    heads = heads_w.shape[1]
    means = nz * gaussians  # where the means start in a head row
    one, half, zero = np.float32(1.0), np.float32(0.5), np.float32(0.0)
    x = np.empty((players, inputs), np.float32)  # [z, action, h] per player
    cell = np.empty((players, hidden), np.float32)
    gates = np.empty((players, 4 * hidden), np.float32)
    head = np.empty((players, heads), np.float32)
    pi = np.empty(gaussians, np.float32)
    steps = 0
    # Element loops, not slice assignments: an array assigned to a slice makes numba compile its
    # shape-mismatch message (string formatting), seconds of a cold start for a plain copy.
    for p in range(players):
        out[p] = zero
        for j in range(nz):
            x[p, j] = z[p, j]
        for j in range(3):
            x[p, nz + j] = action[p, j]
        for j in range(hidden):
            x[p, nz + 3 + j] = h[p, j]
            cell[p, j] = c[p, j]
        steps = max(steps, horizon[p])
    for step in range(steps):
        active = horizon > step  # (P,) who still looks ahead
        # LSTM cell (PyTorch's gate order i, f, g, o): gates = [z, a, h] @ lstm_w + lstm_b
        for p in range(players):
            for j in range(4 * hidden):
                gates[p, j] = lstm_b[j]
        _rows_times(x, np.int64(0), lstm_w, gates, active)  # int64, not Literal[int](0): one signature
        for p in range(players):
            if not active[p]:
                continue
            g, cp, xp = gates[p], cell[p], x[p]
            for j in range(hidden):
                i_g = _sigmoid(g[j])
                f_g = _sigmoid(g[hidden + j])
                g_g = _tanh(g[2 * hidden + j])
                o_g = _sigmoid(g[3 * hidden + j])
                cp[j] = f_g * cp[j] + i_g * g_g
                xp[nz + 3 + j] = o_g * _tanh(cp[j])  # the new h, in place: the next step's input
            for j in range(heads):
                head[p, j] = heads_b[j]
        # heads on the new h: K logits and K means per dimension, and the off-track logit
        _rows_times(x, nz + 3, heads_w, head, active)
        for p in range(players):
            if not active[p]:
                continue
            hp, xp = head[p], x[p]
            off = _sigmoid(hp[heads - 1])
            if off > out[p]:
                out[p] = off
            # the mixture's mean as the next z
            for d in range(nz):
                top = hp[d * gaussians]
                for k in range(1, gaussians):
                    top = max(top, hp[d * gaussians + k])
                total = zero
                for k in range(gaussians):
                    pi[k] = np.exp(hp[d * gaussians + k] - top)
                    total += pi[k]
                m = zero
                for k in range(gaussians):
                    m += pi[k] / total * hp[means + d * gaussians + k]
                xp[d] = m
            # the next action: World Models' mapping of tanh(W [z, h] + b) (engine.policy.controller)
            for a in range(3):
                acc = b[p, a]
                for k in range(nz):
                    acc += W[p, a, k] * xp[k]
                for k in range(hidden):
                    acc += W[p, a, nz + k] * xp[nz + 3 + k]
                t = np.tanh(acc)
                if a == 0:
                    xp[nz] = t
                elif a == 1:
                    xp[nz + 1] = t * half + half
                else:
                    xp[nz + 2] = min(max(t, zero), one)
