"""The duel on the shipped models: determinism, batching, neutral defaults, each knob's
documented effect in real races, the invariants, and bad knob updates. The knobs' own effects
are raced with the shipped controllers' weights without their paces: the pace acts after the
knobs and the invariants (full gas, or the brakes with no gas; tests/test_pace.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.policy.knobs import KnobError, Knobs, load_bounds
from engine.policy.strategy import BIAS_DRIFT, BIAS_RAIN, BIAS_STRAIGHT, REGIMES, regime_weights
from engine.race.duel import Duel
from engine.world_model.manifest import WEIGHTS_DIR

BOUNDS = load_bounds()
MIN_THROTTLE = BOUNDS.invariants["min_throttle"]
EBRAKE = BOUNDS.invariants["emergency_brake"]
HOLD = BOUNDS.invariants["emergency_hold_steps"]


@pytest.fixture(scope="module")
def unpaced(tmp_path_factory) -> list:
    """The shipped A and B, weights and steering hold, without their paces."""
    out = []
    for name in "AB":
        path = tmp_path_factory.mktemp("unpaced") / f"controller{name}.npz"
        with np.load(WEIGHTS_DIR / f"controller{name}.npz", allow_pickle=False) as f:
            np.savez(path, **{k: f[k] for k in f.files if "pace" not in k})
        out.append(path)
    return out


def knobs(**changes) -> Knobs:
    k = Knobs(BOUNDS)
    k.update(changes)
    return k


def race(duel: Duel, seeds, steps: int, every=None) -> dict[str, np.ndarray]:
    """Run `steps` steps; record per step (T, P, ...) actions, policy, risk, regime weights,
    speed, off-track steps so far, done, the slip the players sensed, and the emergency-brake
    state before the step."""
    duel.reset(seeds)
    rec = {k: [] for k in ("action", "policy", "risk", "weights", "speed", "slip", "hold", "frames", "off_steps",
                           "done")}  # fmt: skip
    for t in range(steps):
        if every is not None:
            every(duel, t)
        rec["slip"].append(duel._slip.copy())
        rec["hold"].append(duel.players.hold.copy())
        tel = duel.step()
        rec["action"].append([x.action for x in tel])
        rec["policy"].append(duel.players.policy.copy())
        rec["risk"].append(duel.players.risk.copy())
        rec["weights"].append(duel.players.regime_weights.copy())
        rec["speed"].append([x.speed for x in tel])
        rec["off_steps"].append([x.off_track_steps for x in tel])
        rec["done"].append([x.done for x in tel])
        rec["frames"].append(duel.frames.sum(axis=(1, 2, 3)))  # a cheap fingerprint per frame
    return {k: np.array(v) for k, v in rec.items()}


def test_same_seed_and_knobs_is_the_same_race_bit_for_bit():
    setting = [knobs(risk_aversion=0.6, lookahead_horizon=6, alpha_action_smoothing=0.3),
               knobs(emergency_brake_threshold=0.5, lookahead_horizon=4, gating_bias={"rain": 1.0})]  # fmt: skip
    runs = []
    for _ in range(2):
        with Duel(knobs=setting, renderer="fast", weather="rain", device="cpu") as duel:
            rec = race(duel, 3, 200)
            runs.append((rec, [t.as_dict() for t in duel.telemetry], duel.frames.copy()))
    (a, ta, fa), (b, tb, fb) = runs
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert ta == tb and np.array_equal(fa, fb)


def test_a_batch_of_duels_races_each_as_alone():
    with Duel(renderer="fast", device="cpu") as one:
        alone = race(one, 5, 150)
    with Duel(renderer="fast", device="cpu", duels=3) as many:
        batch = race(many, [9, 5, 11], 150)
        assert many.seeds == [9, 5, 11] and many.result(1)["seed"] == 5
    assert np.array_equal(batch["action"][:, 2:4], alone["action"])  # duel 1 of the batch is seed 5
    assert not np.array_equal(batch["action"][:, 0:2], alone["action"])


def test_random_seed_is_drawn_and_reported():
    with Duel(renderer="fast", device="cpu") as duel:
        seeds = duel.reset()
        assert len(seeds) == 1 and 0 <= seeds[0] < 2**31 and duel.result()["seed"] == seeds[0]
        with pytest.raises(ValueError, match="2 seeds for 1 duels"):
            duel.reset([1, 2])


def test_default_knobs_leave_the_policy_apart_from_the_invariants(unpaced):
    # duel 0: all defaults; duel 1: only the lookahead horizon (risk computed, nothing uses it)
    with Duel(unpaced, knobs=[knobs(), knobs(), knobs(lookahead_horizon=12), knobs(lookahead_horizon=12)],
              renderer="fast", device="cpu", duels=2) as duel:  # fmt: skip
        rec = race(duel, [2, 2], 300)
    policy, action = rec["policy"][:, :2], rec["action"][:, :2]
    expected = np.stack([np.clip(policy[..., 0], -1, 1), np.clip(np.maximum(policy[..., 1], MIN_THROTTLE), 0, 1),
                         np.clip(policy[..., 2], 0, 1)], axis=-1)  # fmt: skip
    assert np.array_equal(action, expected)
    assert np.array_equal(rec["action"][:, 2:], action)  # the horizon alone changes nothing
    assert not np.array_equal(rec["risk"][:, 2:], rec["risk"][:, :2])  # ... though the risk differs


def test_smoothing_lowers_action_jitter(tmp_path):
    # The shipped A without its steering hold: held, its steering is already calm (0 or large), and a
    # smoothing of 0.8 makes it late into bends, where it then steers more, not less. Both without
    # their paces: the pace's full gas and brakes come after the knobs, unsmoothed.
    plain = {name: tmp_path / f"plain{name}.npz" for name in "AB"}
    for name, path in plain.items():
        with np.load(WEIGHTS_DIR / f"controller{name}.npz", allow_pickle=False) as f:
            np.savez(path, **{k: f[k] for k in f.files if k != "steer_hold" and "pace" not in k})
    with Duel([plain["A"], plain["B"]], knobs=[knobs(), knobs(), knobs(alpha_action_smoothing=0.8),
              knobs(alpha_action_smoothing=0.8)], renderer="fast", device="cpu", duels=2) as duel:  # fmt: skip
        rec = race(duel, [6, 6], 300)
    jitter = np.abs(np.diff(rec["action"], axis=0)).sum(axis=-1).mean(axis=0)  # (P,)
    assert jitter[2] < 0.9 * jitter[0] and jitter[3] < 0.9 * jitter[1]


def test_emergency_brake_fires_when_risk_crosses_the_threshold(unpaced):
    threshold = 0.3
    with Duel(unpaced, knobs=[knobs(emergency_brake_threshold=threshold, lookahead_horizon=10)] * 2, renderer="fast",
              device="cpu") as duel:  # fmt: skip
        rec = race(duel, 8, 400)
    fired = 0
    for t in range(len(rec["risk"])):
        for p in range(2):
            if rec["hold"][t, p] == 0 and rec["risk"][t, p] > threshold:  # free to fire, and it should
                assert rec["action"][t, p, 1] == 0.0 and rec["action"][t, p, 2] == EBRAKE
                fired += 1
            if rec["hold"][t, p] == 0 and rec["risk"][t, p] <= threshold:
                assert rec["action"][t, p, 1] >= MIN_THROTTLE
    assert fired >= 2


@pytest.mark.parametrize("regime,column", [("straight", BIAS_STRAIGHT), ("drift", BIAS_DRIFT), ("rain", BIAS_RAIN)])
def test_each_gating_bias_moves_its_regime_weight(regime, column):
    r = REGIMES.index(regime)
    setting = [knobs(gating_bias={regime: 1.5})] * 2 + [knobs(gating_bias={regime: -1.5})] * 2 + [knobs()] * 2
    with Duel(knobs=setting, renderer="fast", weather="rain", device="cpu", duels=3) as duel:
        rec = race(duel, [4, 4, 4], 300)
    mean = rec["weights"][..., r].mean(axis=0)  # (6,) over the race
    assert mean[0:2].mean() > mean[4:6].mean() > mean[2:4].mean()
    # and at every step: the same sensed moment weighed with the bias at 0
    neutral, w = knobs().as_array(), np.zeros(4)
    for t in range(len(rec["slip"])):
        for p, sign in ((0, 1), (1, 1), (2, -1), (3, -1)):
            regime_weights(rec["policy"][t, p, 0], rec["slip"][t, p], 1.0, neutral, w)
            assert sign * (rec["weights"][t, p, r] - w[r]) > 0


def test_invariants_hold_under_random_knob_changes(unpaced):
    rng = np.random.default_rng(0)

    def shuffle_knobs(duel: Duel, t: int) -> None:
        if t % 40 == 0:
            for p in range(4):
                duel.set_knobs(p, {name: spec.type(rng.uniform(spec.min, spec.max))
                                   for name, spec in BOUNDS.knobs.items()})  # fmt: skip

    with Duel(unpaced, renderer="fast", weather="rain", device="cpu", duels=2) as duel:
        rec = race(duel, [1, 12], 400, every=shuffle_knobs)
    a = rec["action"]
    assert (np.abs(a[..., 0]) <= 1).all() and ((a[..., 2] >= 0) & (a[..., 2] <= 1)).all()
    braking = a[..., 1] == 0
    assert ((a[..., 1] >= MIN_THROTTLE) | (braking & (a[..., 2] == EBRAKE))).all() and (a[..., 1] <= 1).all()
    for p in range(4):  # every emergency stop ends within HOLD steps, then the car moves for HOLD steps
        runs = np.diff(np.concatenate([[0], braking[:, p].astype(int), [0]]))
        starts, ends = np.flatnonzero(runs == 1), np.flatnonzero(runs == -1)
        assert ((ends - starts) <= HOLD).all()
        assert (starts[1:] - ends[:-1] >= HOLD).all()
    assert braking.any() and (rec["speed"][-1] > 0).all()


def test_bad_knob_updates_are_refused_and_keep_the_previous_values():
    with Duel(renderer="fast", device="cpu") as duel:
        duel.reset(0)
        duel.set_knobs("A", {"risk_aversion": 0.4})
        with pytest.raises(KnobError, match=r"risk_aversion = 1.5 is outside \[0.0, 1.0\]"):
            duel.set_knobs("A", {"alpha_action_smoothing": 0.5, "risk_aversion": 1.5})
        with pytest.raises(KnobError, match="lookahead_horizon must be a whole number"):
            duel.set_knobs("B", {"lookahead_horizon": 2.5})
        assert duel.knobs[0].values["risk_aversion"] == 0.4 and duel.knobs[0].values["alpha_action_smoothing"] == 0
        assert list(duel.players.knobs[0]) == list(duel.knobs[0].as_array())
        assert list(duel.players.knobs[1]) == list(knobs().as_array())
        duel.step()


def test_risk_aversion_lowers_mean_speed_and_off_track_time(unpaced):
    """In rain, over eight held-out tracks, both controllers: risk_aversion 1 against 0, paired by track.

    Speed is averaged over the steps on the road: a car that leaves the road crawls on the
    grass, so counting those steps would make crashing look careful."""
    seeds = list(range(3_000_000, 3_000_008))
    setting = [knobs()] * (2 * len(seeds)) + [knobs(risk_aversion=1.0)] * (2 * len(seeds))
    with Duel(unpaced, knobs=setting, renderer="fast", weather="rain", device="cpu",
              duels=2 * len(seeds)) as duel:  # fmt: skip
        rec = race(duel, seeds + seeds, 1000)
        off_seconds = np.array([t.off_track_seconds for t in duel.telemetry])  # (P,)
    off_now = np.diff(np.concatenate([np.zeros((1, len(off_seconds))), rec["off_steps"]]), axis=0) > 0  # (T, P)
    on_road = ~off_now & ~rec["done"]
    speed = (rec["speed"] * on_road).sum(axis=0) / on_road.sum(axis=0)  # (P,) mean speed on the road
    n = 2 * len(seeds)
    for player in (0, 1):  # A, then B
        plain, careful = slice(player, n, 2), slice(n + player, 2 * n, 2)
        # Paired over the same tracks, the median: one track where the plain car crashed and
        # crawled back (A's second controller: 40 m/s there against 50 elsewhere) would
        # otherwise decide a mean over eight.
        assert np.median(speed[careful] - speed[plain]) < 0
    assert off_seconds[n:].sum() < off_seconds[:n].sum()
