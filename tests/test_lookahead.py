"""The imagined rollout in one call (numba on the CPU, lookahead.onnx elsewhere) gives the risk
the per-step dream.onnx rollout gave, on real drives, for short, long and mixed horizons in
one batch; the CPU kernel gives lookahead.onnx's numbers; and a player's risk does not
depend on who else is in the batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from engine.env.vector_env import VecRaceEnv
from engine.policy.knobs import Knobs, load_bounds
from engine.policy.players import Players, invariants_array, load_controllers
from engine.policy.risk import mixture_stats
from engine.policy.strategy import HORIZON
from engine.world_model.manifest import WEIGHTS_DIR, load_manifest
from engine.world_model.runtime import WorldModel
from export.lookahead import check_imagination, reference_off_max

STEPS = 40  # per drive; each step checks every player
# Off-track probabilities agree to float32 rounding: numba sums the mean and the policy in
# float64, the graph in float32 with fused Gemms (measured up to 2e-6 on these drives).
TOLERANCE = 1e-5


def make_players(horizons: list[int]) -> Players:
    bounds = load_bounds()
    W, b, _ = load_controllers([WEIGHTS_DIR / "controllerA.npz", WEIGHTS_DIR / "controllerB.npz"])
    n = len(horizons)
    knobs = np.tile(Knobs(bounds).as_array(), (n, 1))
    knobs[:, HORIZON] = horizons
    return Players(W[np.arange(n) % 2], b[np.arange(n) % 2], knobs, invariants_array(bounds), device="cpu")


def drive(horizons: list[int], seeds: list[int], check=None) -> np.ndarray:
    """Drive len(horizons) cars (A and B alternating) for STEPS steps; risk (STEPS, P)."""
    players = make_players(horizons)
    risks = []
    with VecRaceEnv(len(horizons), renderer="fast") as vec:
        obs, info = vec.reset(seeds)
        slip, wet = info["slip"], np.zeros(len(horizons))
        for _ in range(STEPS):
            if check is not None:
                check.before(obs)
            actions = players.act(obs, slip, wet)
            risks.append(players.risk.copy())
            if check is not None:
                check.after(players)
            res = vec.step(actions)
            obs, slip = res.obs, res.info["slip"]
    return np.array(risks)


class DreamRollout:
    """Today's reference: the same world-model steps, then one dream.onnx run per imagined step."""

    def __init__(self, horizons: list[int]):
        self.horizon = np.asarray(horizons, np.int64)
        self.world = WorldModel(len(horizons), device="cpu")
        self.dream = ort.InferenceSession(str(Path(WEIGHTS_DIR) / "dream.onnx"), providers=["CPUExecutionProvider"])
        self.worst, self.checked = 0.0, 0

    def before(self, obs: np.ndarray) -> None:
        self.out = self.world.step(obs)

    def after(self, players: Players) -> None:
        out, n = self.out, len(self.horizon)
        mean, spread = np.empty((n, 32), np.float32), np.empty(n)
        mixture_stats(out["mdn_log_pi"], out["mdn_mu"], out["mdn_sigma"], mean, spread)
        ahead = self.horizon >= 1
        off = reference_off_max(self.dream, mean[ahead], players.policy[ahead].astype(np.float32),
                                self.world.h[ahead], self.world.c[ahead], players.W[ahead], players.b[ahead],
                                self.horizon[ahead])  # fmt: skip
        expected = (1.0 - out["off_track_prob"][ahead].astype(np.float64)) * off
        self.worst = max(self.worst, float(np.abs(players.risk[ahead] - expected).max()))
        self.checked += int(ahead.sum())
        self.world.set_actions(players.actions)


@pytest.mark.parametrize("horizons", [[1, 1], [5, 5], [10, 10], [25, 25], [1, 5, 10, 25, 0, 7]],
                         ids=["H1", "H5", "H10", "H25", "mixed"])  # fmt: skip
def test_one_run_gives_the_risk_of_the_per_step_rollout(horizons):
    check = DreamRollout(horizons)
    risk = drive(horizons, [1_500_000 + k for k in range(len(horizons))], check)
    assert check.checked == STEPS * sum(h >= 1 for h in horizons)
    assert check.worst <= TOLERANCE, check.worst
    assert risk.max() > 0.01  # the drives gave the lookahead something to see


def test_a_players_risk_does_not_depend_on_the_rest_of_the_batch():
    alone = drive([10, 10], [1_600_000, 1_600_000])
    batch = drive([10, 3, 0, 25], [1_600_000, 1_600_001, 1_600_002, 1_600_003])
    assert np.array_equal(alone[:, 0], batch[:, 0])


def test_the_cpu_kernel_gives_the_numbers_of_lookahead_onnx():
    """engine.policy.imagine (numba, lookahead.npz: what the CPU runs) against lookahead.onnx (what CUDA
    runs) on real states, horizons 1, 5, 10, 25 alone and mixed in one batch."""
    sizes = load_manifest(WEIGHTS_DIR, verify=False)["sizes"]
    assert check_imagination(WEIGHTS_DIR, sizes["z"], sizes["gaussians"]) <= TOLERANCE


def test_the_cpu_kernel_is_what_players_run_on_the_cpu():
    players = make_players([10, 0])
    assert players.imagination is not None and players.lookahead is None


def test_one_numba_call_decides_as_the_kernels_one_by_one():
    """Players.act on the CPU runs `decide` (one numba call); the kernel-by-kernel path (what CUDA
    runs, with lookahead.onnx there) gives the same actions, risks, gates and brake states, bit
    for bit, for the whole batch and for subsets of it (training acts for the cars still racing)."""
    horizons = [10, 0, 3, 25, 1, 10]
    fused, steps = make_players(horizons), make_players(horizons)
    steps.fused = False
    for p in (fused, steps):  # knobs that act on the risk: gas cut, emergency brake, smoothing, gates
        p.knobs[:, 2] = [0.5, 0.9, 0.0, 1.0, 0.3, 0.7]  # risk_aversion
        p.knobs[:, 3] = [0.2, 1.0, 0.05, 0.5, 1.0, 0.1]  # emergency_brake_threshold
        p.knobs[:, 0] = [0.0, 0.3, 0.0, 0.5, 0.0, 0.0]  # alpha_action_smoothing
        p.knobs[:, 4:] = [0.5, -0.5, 1.0]  # gating biases
    wet = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    seen = np.zeros(3)
    with VecRaceEnv(len(horizons), renderer="fast") as vec:
        obs, info = vec.reset([1_700_000 + k for k in range(len(horizons))])
        slip = info["slip"]
        for t in range(STEPS):
            idx = None if t % 3 else np.array([0, 3, 4])
            rows = slice(None) if idx is None else idx
            for p in (fused, steps):
                p.act(obs[rows], slip[rows], wet[rows], idx)
            for name in ("actions", "risk", "regime_weights", "policy", "hold", "z"):
                assert np.array_equal(getattr(fused, name), getattr(steps, name)), (t, name)
            seen += [(fused.risk > 0.05).any(), (fused.hold > 0).any(), idx is not None]
            res = vec.step(fused.actions.copy())
            obs, slip = res.obs, res.info["slip"]
    assert seen.all()  # the drive reached risk, the emergency brake and subsets
