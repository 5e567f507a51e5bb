"""Every player's decision for one environment step, batched: world model -> controller ->
predicted risk -> strategy knobs -> the action.

One `Players` serves a duel (2 players), a batch of duels (2N) or a CMA-ES population
(candidates x rollouts): one onnxruntime `run` of the world model for all of them per
step, and, when some player looks ahead, one imagined rollout for all of those, whatever
their horizons, with each player's controller inside: on the CPU the numba kernel of
engine.policy.imagine (lookahead.npz), elsewhere one `run` of lookahead.onnx.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.policy.controller import load_controller, policy_actions
from engine.policy.imagine import Imagination
from engine.policy.knobs import Bounds
from engine.policy.risk import mixture_stats, spread_risk
from engine.policy.strategy import HORIZON, REGIMES, apply_knobs
from engine.world_model.manifest import WEIGHTS_DIR, WeightsError
from engine.world_model.runtime import WorldModel, make_session


def invariants_array(bounds: Bounds) -> np.ndarray:
    """(3,) float64: min_throttle, emergency_brake, emergency_hold_steps, as apply_knobs reads them."""
    inv = bounds.invariants
    return np.array([inv["min_throttle"], inv["emergency_brake"], inv["emergency_hold_steps"]], dtype=np.float64)


def load_controllers(paths: list[Path], weights_dir: Path = WEIGHTS_DIR) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Stack controller files: W (P, 3, Z+H) float64, b (P, 3), metadata per file."""
    from engine.world_model.manifest import load_manifest

    sizes = load_manifest(weights_dir, verify=False)["sizes"]
    loaded = [load_controller(p, sizes["z"], sizes["hidden"]) for p in paths]
    return np.stack([w for w, _, _ in loaded]), np.stack([b for _, b, _ in loaded]), [m for _, _, m in loaded]


class Players:
    """P players' controllers, knobs and model state.

    Args:
        W: (P, 3, Z+H) float64 controller weights, b: (P, 3) biases (see engine.policy.controller).
        knobs: (P, 7) float64 knob values in bounds order (`Knobs.as_array`); live: write
            a row to change a player's knobs between steps.
        invariants: (3,) from `invariants_array`.
        device, precision, weights_dir, threads: as for `engine.world_model.runtime.WorldModel`.

    After `act`, `risk` (P,), `regime_weights` (P, 4) (REGIMES order), `policy` (P, 3) (the
    controller's own action) and `actions` (P, 3) (what the car is given) hold this step's values.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, knobs: np.ndarray, invariants: np.ndarray,
                 device: str = "auto", precision: str = "auto", weights_dir: Path = WEIGHTS_DIR,
                 threads: int = 1):  # fmt: skip
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
        self.knobs = np.ascontiguousarray(knobs, dtype=np.float64)
        self.invariants = np.ascontiguousarray(invariants, dtype=np.float64)
        self.policy = np.zeros((n, 3))  # (P, 3) the controller's action
        self.actions = np.zeros((n, 3))  # (P, 3) after the knobs and invariants
        self.risk = np.zeros(n)  # (P,) in [0, 1]
        self.regime_weights = np.zeros((n, len(REGIMES)))  # (P, 4)
        self.hold = np.zeros(n, dtype=np.int64)  # emergency-brake state, see engine.policy.strategy
        self.z = np.zeros((n, z), np.float32)  # (P, Z) the VAE's latent of the last frame

    def set_controllers(self, W: np.ndarray, b: np.ndarray) -> None:
        """Replace every player's controller (a new CMA-ES generation)."""
        self.W[:] = W
        self.b[:] = b
        self.W32[:], self.b32[:] = self.W, self.b

    def reset(self, players: list[int] | None = None) -> None:
        """Start a new episode for `players` (default: all)."""
        idx = slice(None) if players is None else players
        self.world.reset(players)
        self.actions[idx] = 0.0
        self.hold[idx] = 0

    def act(self, obs: np.ndarray, slip: np.ndarray, wet: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """obs (P, 96, 96, 3) uint8, slip (P,) rad, wet (P,) 0/1 -> actions (P, 3) float64.

        With `idx` (int array of n players) only those players act: obs, slip and wet
        have n rows, and their rows of `actions` etc. are updated. The returned array is
        `self.actions`, reused by the next call: copy it to keep it."""
        whole = idx is None
        sel = slice(None) if whole else np.asarray(idx)
        out = self.world.step(obs, None if whole else sel)
        W, b, knobs = (self.W, self.b, self.knobs) if whole else (self.W[sel], self.b[sel], self.knobs[sel])
        h, c = (self.world.h, self.world.c) if whole else (self.world.h[sel], self.world.c[sel])
        n = len(obs)
        policy, risk, hold = np.empty((n, 3)), np.empty(n), self.hold[sel].copy()
        actions, weights = np.empty((n, 3)), np.empty((n, len(REGIMES)))
        self.z[sel] = out["z"]
        policy_actions(W, b, out["z"], h, policy)
        self._predict_risk(out, None if whole else sel, knobs, h, c, policy, risk)
        apply_knobs(policy, self.actions[sel], risk, np.asarray(slip, np.float64), np.asarray(wet, np.float64),
                    knobs, self.invariants, hold, actions, weights)  # fmt: skip
        self.policy[sel], self.risk[sel], self.hold[sel] = policy, risk, hold
        self.actions[sel], self.regime_weights[sel] = actions, weights
        self.world.set_actions(actions, None if whole else sel)
        return self.actions

    def _predict_risk(self, out: dict[str, np.ndarray], idx: np.ndarray | None, knobs: np.ndarray, h: np.ndarray,
                      c: np.ndarray, policy: np.ndarray, risk: np.ndarray) -> None:  # fmt: skip
        """Fill risk (n,) for the n players of this step, players `idx` (None: all) of the batch
        (see engine.policy.risk)."""
        n = len(risk)
        horizon = knobs[:, HORIZON].astype(np.int64)  # (n,)
        mean, spread = np.empty((n, self.world.z_size), np.float32), np.empty(n)
        mixture_stats(out["mdn_log_pi"], out["mdn_mu"], out["mdn_sigma"], mean, spread)
        spread_risk(spread, self.spread_lo, self.spread_hi, risk)
        ahead = np.flatnonzero(horizon >= 1)
        if not len(ahead):
            return
        # The risk of leaving the road: (1 - p_now) x the largest off-track probability over
        # the next H imagined steps. A car already off the road (p_now ~ 1) is at no risk of
        # leaving it, so the knobs that read risk never hold it on the grass. Imagined steps
        # start from the state just reached with the mixture's mean as the next z and the
        # player's policy as the action (the first is the one it is taking now); only the
        # players who look ahead are imagined.
        sub = slice(None) if len(ahead) == n else ahead
        rows = sub if idx is None else idx[ahead]  # the lookahead players' rows of the batch
        feed = {"z": mean[sub], "action": policy[sub].astype(np.float32), "h": h[sub], "c": c[sub],
                "W": self.W32[rows], "b": self.b32[rows], "horizon": horizon[sub]}  # fmt: skip
        if self.imagination is not None:
            off_max = self.imagination.off_max(**feed)
        else:
            off_max = self.lookahead.run(["off_max"], feed)[0]
        on_road = 1.0 - out["off_track_prob"][ahead].astype(np.float64)
        risk[ahead] = on_road * off_max
