"""Every player's decision for one environment step, batched: world model -> controller ->
predicted risk -> strategy knobs -> (with a pace: straights and bends read from the frame)
-> (off the road: the recovery) -> the action.

One `Players` serves a duel (2 players), a batch of duels (2N) or a CMA-ES population
(candidates x rollouts): one onnxruntime `run` of the world model for all of them per
step, and, when some player looks ahead, one imagined rollout for all of those, whatever
their horizons, with each player's controller inside: on the CPU the numba kernel of
engine.policy.imagine (lookahead.npz), elsewhere one `run` of lookahead.onnx.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from engine.policy.controller import PACE_KEYS, hold_steering, load_controller, policy_actions
from engine.policy.imagine import Imagination, imagine
from engine.policy.knobs import Bounds
from engine.policy.pace import pace
from engine.policy.recovery import recover
from engine.policy.risk import mixture_stats, spread_risk
from engine.policy.strategy import HORIZON, REGIMES, apply_knobs
from engine.world_model.manifest import WEIGHTS_DIR, WeightsError
from engine.world_model.runtime import WorldModel, make_session


@numba.njit(cache=True, nogil=True)
def decide(rows, z, log_pi, mu, sigma, off_now, slip, wet, W, b, W32, b32, steer_hold, side, knobs, invariants, h,
           c, lo, hi, lstm_w, lstm_b, heads_w, heads_b, gaussians, prev, hold, policy, risk, actions, weights,
           mean):  # fmt: skip
    """Players.act after the world model, on the CPU, in one call: the same kernels in the same
    order as the step-by-step path (`Players._decide_steps`), so the same numbers, without some
    twenty numpy calls around them (a lane's duel step spent ~35 us there).

    rows (n,) int64: the players of this step. z (n, Z), log_pi/mu/sigma (n, Z, K), off_now (n,)
    float32: the world model's outputs for them; slip, wet (n,). W, b, W32, b32, steer_hold, knobs
    (P, ...), h, c (P, H) float32 (already stepped), side (P,) the side each last steered to, prev
    (P, 3) last actions, hold (P,) int64: every player's. Writes policy, risk (n,), actions (n, 3),
    weights (n, 4), mean (n, Z) float32, side[rows] and hold[rows]; returns True.

    With lstm_w None (and lstm_b, heads_w, heads_b None) numba compiles this without the
    imagined rollout (a second signature, compiled on first use): nobody looks ahead at the
    default knobs, and the rollout is most of a cold start's compile time. Then, if some
    player does look ahead, it returns False before changing any state (hold is written last):
    call it again with the lookahead's weights."""
    n = len(rows)
    Wr, br, kr, hr = W[rows], b[rows], knobs[rows], h[rows]
    policy_actions(Wr, br, z, hr, policy)
    sr = side[rows]  # a copy: side changes only once this call cannot return False
    hold_steering(steer_hold[rows], sr, policy)
    spread = np.empty(n)
    mixture_stats(log_pi, mu, sigma, mean, spread)
    spread_risk(spread, lo, hi, risk)
    horizon = np.empty(n, np.int64)
    looking = 0
    for k in range(n):
        horizon[k] = np.int64(kr[k, HORIZON])
        if horizon[k] >= 1:
            looking += 1
    if looking:
        if lstm_w is None:
            return False
        else:
            ahead = np.empty(looking, np.int64)
            j = 0
            for k in range(n):
                if horizon[k] >= 1:
                    ahead[j] = k
                    j += 1
            sub = rows[ahead]
            off_max = np.empty(looking, np.float32)
            imagine(mean[ahead], policy[ahead].astype(np.float32), h[sub], c[sub], W32[sub], b32[sub], horizon[ahead],
                    lstm_w, lstm_b, heads_w, heads_b, gaussians, off_max)  # fmt: skip
            for j in range(looking):
                k = ahead[j]
                risk[k] = (1.0 - np.float64(off_now[k])) * np.float64(off_max[j])
    hr_hold = hold[rows]
    apply_knobs(policy, prev[rows], risk, slip, wet, kr, invariants, hr_hold, actions, weights)
    for k in range(n):  # a loop, not hold[rows] = hr_hold: see engine.policy.imagine's copies
        hold[rows[k]] = hr_hold[k]
        side[rows[k]] = sr[k]
    return True


def invariants_array(bounds: Bounds) -> np.ndarray:
    """(4,) float64: min_throttle, emergency_brake, emergency_hold_steps (as apply_knobs reads them) and
    recovery_after_steps (engine.policy.recovery)."""
    inv = bounds.invariants
    return np.array([inv["min_throttle"], inv["emergency_brake"], inv["emergency_hold_steps"],
                     inv["recovery_after_steps"]], dtype=np.float64)  # fmt: skip


def load_controllers(paths: list[Path], weights_dir: Path = WEIGHTS_DIR,
                     weather: str = "clear") -> tuple[np.ndarray, np.ndarray, list[dict]]:  # fmt: skip
    """Stack controller files: W (P, 3, Z+H) float64, b (P, 3), metadata per file; in rain each
    file's wet-track set where it has one (`engine.policy.controller.load_controller`). The sets'
    steering holds: `steer_holds(metadata)`."""
    from engine.world_model.manifest import load_manifest

    sizes = load_manifest(weights_dir, verify=False)["sizes"]
    loaded = [load_controller(p, sizes["z"], sizes["hidden"], weather) for p in paths]
    return np.stack([w for w, _, _ in loaded]), np.stack([b for _, b, _ in loaded]), [m for _, _, m in loaded]


def steer_holds(meta: list[dict]) -> np.ndarray:
    """(P,) float64: the steering hold of each loaded set (`load_controllers`' metadata), 0 where none."""
    return np.array([m.get("steer_hold", 0.0) for m in meta], dtype=np.float64)


def paces(meta: list[dict]) -> np.ndarray:
    """(P, 2) float64: each loaded set's pace_bend and pace_straight in m/s (engine.policy.pace), 0 where none."""
    return np.array([[m.get(k, 0.0) for k in PACE_KEYS] for m in meta], dtype=np.float64).reshape(len(meta), 2)


class Players:
    """P players' controllers, knobs and model state.

    Args:
        W: (P, 3, Z+H) float64 controller weights, b: (P, 3) biases (see engine.policy.controller).
        knobs: (P, 7) float64 knob values in bounds order (`Knobs.as_array`); live: write
            a row to change a player's knobs between steps.
        invariants: (4,) from `invariants_array`.
        steer_hold: (P,) float64 each controller's steering hold (`steer_holds`); None: none (0).
        pace: (P, 2) float64 each controller's pace_bend and pace_straight in m/s (`paces`); None: none.
        device, precision, weights_dir, threads: as for `engine.world_model.runtime.WorldModel`.

    After `act`, `risk` (P,), `regime_weights` (P, 4) (REGIMES order), `policy` (P, 3) (the
    controller's own action) and `actions` (P, 3) (what the car is given) hold this step's values.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, knobs: np.ndarray, invariants: np.ndarray,
                 device: str = "auto", precision: str = "auto", weights_dir: Path = WEIGHTS_DIR,
                 threads: int = 1, steer_hold: np.ndarray | None = None,
                 pace: np.ndarray | None = None):  # fmt: skip
        n = W.shape[0]
        self.world = WorldModel(n, device=device, precision=precision, weights_dir=weights_dir, threads=threads)
        calib = self.world.manifest.get("risk")
        if not calib or not calib.get("spread_hi", 0) > calib.get("spread_lo", 0):
            raise WeightsError(f"{Path(weights_dir) / 'manifest.json'}: no risk calibration (re-export the models)")
        self.spread_lo, self.spread_hi = float(calib["spread_lo"]), float(calib["spread_hi"])
        if "lookahead.onnx" not in self.world.manifest["files"]:
            raise WeightsError(f"{Path(weights_dir) / 'manifest.json'}: no lookahead.onnx "
                               "(add it: vmc-duel export --lookahead-only --out DIR)")  # fmt: skip
        # The imagined rollout: numba on the CPU (at a duel's batch lookahead.onnx spends most
        # of its time dispatching nodes), lookahead.onnx on CUDA. The choice depends on the
        # device only, never on the batch, so a player's risk does not depend on the batch.
        self.imagination: Imagination | None = None
        self.lookahead = None
        if self.world.device == "cpu" and "lookahead.npz" in self.world.manifest["files"]:
            sizes = self.world.manifest["sizes"]
            self.imagination = Imagination(Path(weights_dir) / "lookahead.npz", sizes["z"], sizes["gaussians"])
        else:
            self.lookahead = make_session(Path(weights_dir) / "lookahead.onnx", device, threads)
        z, hidden = self.world.z_size, self.world.hidden
        if W.shape != (n, 3, z + hidden) or b.shape != (n, 3):
            raise ValueError(f"W {W.shape} and b {b.shape}: expected ({n}, 3, {z + hidden}) and ({n}, 3)")
        if knobs.shape != (n, 7):
            raise ValueError(f"knobs {knobs.shape}: expected ({n}, 7)")
        self.n = n
        self.W = np.ascontiguousarray(W, dtype=np.float64)
        self.b = np.ascontiguousarray(b, dtype=np.float64)
        self.W32, self.b32 = self.W.astype(np.float32), self.b.astype(np.float32)  # lookahead.onnx's copies
        self.steer_hold = np.zeros(n) if steer_hold is None else np.array(steer_hold, dtype=np.float64)
        if self.steer_hold.shape != (n,):
            raise ValueError(f"steer_hold {self.steer_hold.shape}: expected ({n},)")
        pace = np.zeros((n, 2)) if pace is None else np.array(pace, dtype=np.float64)
        if pace.shape != (n, 2):
            raise ValueError(f"pace {pace.shape}: expected ({n}, 2)")
        self.pace_bend, self.pace_straight = pace[:, 0].copy(), pace[:, 1].copy()  # (P,) m/s, 0: no pace
        self.side = np.zeros(n)  # (P,) the side each player last steered to: -1, 1 (0: not yet)
        self.knobs = np.ascontiguousarray(knobs, dtype=np.float64)
        self.invariants = np.ascontiguousarray(invariants, dtype=np.float64)
        self.policy = np.zeros((n, 3))  # (P, 3) the controller's action
        self.actions = np.zeros((n, 3))  # (P, 3) after the knobs and invariants
        self.risk = np.zeros(n)  # (P,) in [0, 1]
        self.regime_weights = np.zeros((n, len(REGIMES)))  # (P, 4)
        self.hold = np.zeros(n, dtype=np.int64)  # emergency-brake state, see engine.policy.strategy
        self.off_road = np.zeros(n, dtype=np.int64)  # (P,) steps without road under the car (engine.policy.recovery)
        self.back_to_road = np.zeros(n, dtype=np.int64)  # (P,) road steps left before the controller drives again
        self.z = np.zeros((n, z), np.float32)  # (P, Z) the VAE's latent of the last frame
        self._everyone = np.arange(n, dtype=np.int64)
        self.fused = self.imagination is not None  # decide in one numba call (False: kernel by kernel)
        self._looked_ahead = False  # some player has looked ahead: decide with the rollout compiled in

    def set_controllers(self, W: np.ndarray, b: np.ndarray) -> None:
        """Replace every player's controller (a new CMA-ES generation; their steering holds stay)."""
        self.W[:] = W
        self.b[:] = b
        self.W32[:], self.b32[:] = self.W, self.b

    def reset(self, players: list[int] | None = None) -> None:
        """Start a new episode for `players` (default: all)."""
        idx = slice(None) if players is None else players
        self.world.reset(players)
        self.actions[idx] = 0.0
        self.hold[idx] = 0
        self.side[idx] = 0.0
        self.off_road[idx] = 0
        self.back_to_road[idx] = 0

    def act(self, obs: np.ndarray, slip: np.ndarray, wet: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """obs (P, 96, 96, 3) uint8, slip (P,) rad, wet (P,) 0/1 -> actions (P, 3) float64.

        With `idx` (int array of n players) only those players act: obs, slip and wet
        have n rows, and their rows of `actions` etc. are updated. The returned array is
        `self.actions`, reused by the next call: copy it to keep it."""
        rows = self._everyone if idx is None else np.asarray(idx, dtype=np.int64)
        out = self.world.step(obs, None if idx is None else rows)
        n = len(rows)
        policy, risk, actions = np.empty((n, 3)), np.empty(n), np.empty((n, 3))
        weights, mean = np.empty((n, len(REGIMES))), np.empty((n, self.world.z_size), np.float32)
        slip, wet = np.asarray(slip, np.float64), np.asarray(wet, np.float64)
        if self.fused:  # the CPU: one numba call
            im = self.imagination
            rollout = (im.lstm_w, im.lstm_b, im.heads_w, im.heads_b)
            # Without the rollout compiled in until a player looks ahead (then decide returns False and
            # runs again with it); from then on always with it (it also serves those who don't look ahead).
            for lk in (rollout,) if self._looked_ahead else ((None,) * 4, rollout):
                self._looked_ahead = lk is rollout
                if decide(rows, out["z"], out["mdn_log_pi"], out["mdn_mu"], out["mdn_sigma"], out["off_track_prob"],
                          slip, wet, self.W, self.b, self.W32, self.b32, self.steer_hold, self.side, self.knobs,
                          self.invariants, self.world.h,
                          self.world.c, self.spread_lo, self.spread_hi, *lk, im.gaussians, self.actions, self.hold,
                          policy, risk, actions, weights, mean):  # fmt: skip
                    break
        else:
            self._decide_steps(rows, out, slip, wet, policy, risk, actions, weights, mean)
        # The pace: full gas on a straight, the brakes before a bend, from the frame (players whose controller has one).
        pace(obs, rows, self.pace_bend, self.pace_straight, actions)
        # Off the road for a while: the recovery steers back from the frame (its own kernel, the same on both paths).
        recover(obs, rows, int(self.invariants[3]), self.off_road, self.back_to_road, actions)
        self.z[rows], self.policy[rows], self.risk[rows] = out["z"], policy, risk
        self.actions[rows], self.regime_weights[rows] = actions, weights
        self.world.set_actions(actions, None if idx is None else rows)
        return self.actions

    def _decide_steps(self, rows: np.ndarray, out: dict[str, np.ndarray], slip: np.ndarray, wet: np.ndarray,
                      policy: np.ndarray, risk: np.ndarray, actions: np.ndarray, weights: np.ndarray,
                      mean: np.ndarray) -> None:  # fmt: skip
        """`decide`, one kernel at a time, with the lookahead in lookahead.onnx where there is no
        numba kernel (CUDA): the same kernels in the same order."""
        W, b, knobs, h = self.W[rows], self.b[rows], self.knobs[rows], self.world.h[rows]
        policy_actions(W, b, out["z"], h, policy)
        side = self.side[rows]
        hold_steering(self.steer_hold[rows], side, policy)
        self.side[rows] = side
        spread = np.empty(len(rows))
        mixture_stats(out["mdn_log_pi"], out["mdn_mu"], out["mdn_sigma"], mean, spread)
        spread_risk(spread, self.spread_lo, self.spread_hi, risk)
        horizon = knobs[:, HORIZON].astype(np.int64)  # (n,)
        ahead = np.flatnonzero(horizon >= 1)
        if len(ahead):
            # The risk of leaving the road: (1 - p_now) x the largest off-track probability over
            # the next H imagined steps. A car already off the road (p_now ~ 1) is at no risk of
            # leaving it, so the knobs that read risk never hold it on the grass. Imagined steps
            # start from the state just reached with the mixture's mean as the next z and the
            # player's policy as the action (the first is the one it is taking now); only the
            # players who look ahead are imagined.
            sub = rows[ahead]
            feed = {"z": mean[ahead], "action": policy[ahead].astype(np.float32), "h": self.world.h[sub],
                    "c": self.world.c[sub], "W": self.W32[sub], "b": self.b32[sub],
                    "horizon": horizon[ahead]}  # fmt: skip
            if self.imagination is not None:
                off_max = self.imagination.off_max(**feed)
            else:
                off_max = self.lookahead.run(["off_max"], feed)[0]
            risk[ahead] = (1.0 - out["off_track_prob"][ahead].astype(np.float64)) * off_max
        hold = self.hold[rows]
        apply_knobs(policy, self.actions[rows], risk, slip, wet, knobs, self.invariants, hold, actions, weights)
        self.hold[rows] = hold
