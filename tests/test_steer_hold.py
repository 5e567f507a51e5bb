"""The controller's steering hold: a reversal no larger than the hold is held straight, in the numba kernel,
in a controller file, in a real duel on both decision paths (one numba call and kernel by kernel), and in
training's snapshots and `ship-controller`."""

from __future__ import annotations

import numpy as np
import pytest

from engine.policy.controller import ControllerError, hold_steering, load_controller
from engine.race.duel import Duel
from engine.world_model.manifest import WEIGHTS_DIR

TRACK = 900003  # an evaluation track (fast renderer): the shipped A weaves there as everywhere
STEPS = 300


def held(steers: list[float], p: float) -> list[float]:
    """One player's steering, step by step, through hold_steering."""
    side, out = np.zeros(1), []
    for s in steers:
        a = np.array([[s, 0.5, 0.0]])
        hold_steering(np.array([p]), side, a)
        out.append(float(a[0, 0]))
    return out


def test_a_small_reversal_is_held_straight_and_nothing_else_changes():
    steers = [0.3, -0.2, -0.25, 0.1, -0.6, 0.2, 0.0, 0.35, 0.05]
    assert held(steers, 0.0) == steers  # no hold: the policy's steering, bit for bit
    # p 0.3: -0.2 and -0.25 reverse the last side (right, +) by no more than 0.3: straight; 0.1 goes on to the
    # right; -0.6 reverses beyond the hold and passes (the side is now left); 0.2 is held; 0.0 stays 0 and keeps
    # the side; 0.35 passes (right again) and 0.05 goes on to the right.
    assert held(steers, 0.3) == [0.3, 0.0, 0.0, 0.1, -0.6, 0.0, 0.0, 0.35, 0.05]
    assert held([-0.1, 0.1], 0.5) == [-0.1, 0.0]  # the first steer has no side to reverse: it passes


def test_a_controller_file_carries_its_holds_and_a_bad_one_is_refused(tmp_path):
    W, b = np.zeros((3, 288)), np.zeros(3)
    f = tmp_path / "c.npz"
    np.savez(f, W=W, b=b, W_rain=W, b_rain=b, steer_hold=np.float64(0.35))
    assert load_controller(f, 32, 256)[2]["steer_hold"] == 0.35
    assert load_controller(f, 32, 256, weather="rain")[2]["steer_hold"] == 0.0  # the wet set has its own: none
    np.savez(f, W=W, b=b, W_rain=W, b_rain=b, rain_steer_hold=np.float64(0.2))
    assert "steer_hold" not in load_controller(f, 32, 256)[2]
    assert load_controller(f, 32, 256, weather="rain")[2]["steer_hold"] == 0.2
    for bad in (1.5, -0.1, np.nan, "wide"):
        np.savez(f, W=W, b=b, steer_hold=np.asarray(bad))
        with pytest.raises(ControllerError, match=r"c.npz: steer_hold = .* expected a number in \[0, 1.0\]"):
            load_controller(f, 32, 256)


def a_with_hold(path, hold: float | None) -> None:
    with np.load(WEIGHTS_DIR / "controllerA.npz", allow_pickle=False) as f:
        # the shipped A's weights without its hold and its pace (which changes the line it drives)
        arrays = {k: f[k] for k in f.files if k != "steer_hold" and "pace" not in k}
    if hold is not None:
        arrays["steer_hold"] = np.float64(hold)
    np.savez(path, **arrays)


def race(path, fused: bool = True) -> tuple[list[list[float]], int]:
    """A (the file) and the shipped B on TRACK for STEPS steps -> A's actions step by step, A's reversals."""
    with Duel([path, None], renderer="fast", device="cpu", precision="fp32", max_episode_steps=STEPS) as duel:
        duel.players.fused = fused
        duel.reset(TRACK)
        actions = []
        while not duel.finished:
            duel.step()
            actions.append(duel.telemetry[0].action)
        return actions, duel.telemetry[0].steer_reversals


def test_a_duel_with_a_held_steering_weaves_less_the_same_on_both_decision_paths(tmp_path):
    plain, zero, hold = tmp_path / "plain.npz", tmp_path / "zero.npz", tmp_path / "hold.npz"
    a_with_hold(plain, None)
    a_with_hold(zero, 0.0)
    a_with_hold(hold, 0.4)
    base, base_reversals = race(plain)
    assert race(zero)[0] == base  # a hold of 0 is no hold, bit for bit
    actions, reversals = race(hold)
    assert actions != base
    assert reversals < base_reversals / 2, (reversals, base_reversals)  # the shipped A: ~12 a second
    steer = np.array([a[0] for a in actions])
    # every reversal of the held steering asked for more than the hold (the rest were held at 0)
    sides = np.sign(steer[steer != 0])
    flips = np.flatnonzero(sides[1:] != sides[:-1]) + 1
    assert (np.abs(steer[steer != 0][flips]) > 0.4).all()
    assert race(hold, fused=False)[0] == actions  # kernel by kernel (the CUDA path's order): the same race


def test_a_run_trains_with_its_hold_and_ship_keeps_or_replaces_it(tmp_path):
    pytest.importorskip("cma")
    import shutil

    from train.config import TrainControllerConfig
    from train.controller import ship, train_controller

    cfg = TrainControllerConfig(name="H", out=tmp_path / "runs", generations=1, population=4, rollouts=2,
                                max_steps=60, eval_every=1, eval_tracks=2, workers=0, threads=1, snapshot_every=1,
                                init=str(WEIGHTS_DIR / "controllerA.npz"), subspace="gains", sigma0=0.05,
                                steer_hold=0.3)  # fmt: skip
    run = train_controller(cfg)
    for snapshot in ("gen_0001.npz", "best.npz"):  # what the run drove with, in every file it writes
        assert load_controller(run / snapshot, 32, 256)[2]["steer_hold"] == 0.3
    with pytest.raises(ValueError, match="other steer_hold"):
        train_controller(TrainControllerConfig(**{**cfg.__dict__, "generations": 2, "steer_hold": 0.0}))
    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    record = ship("A", run, weights, force=True, generations=[1])
    assert record["training"]["steer_hold"] == 0.3
    assert load_controller(weights / "controllerA.npz", 32, 256)[2]["steer_hold"] == 0.3
    record = ship("A", run, weights, force=True, generations=[1], steer_hold=0.45)  # evaluated as it ships
    assert record["training"]["steer_hold"] == 0.45 and "eval_mean" in record["training"]
    assert load_controller(weights / "controllerA.npz", 32, 256)[2]["steer_hold"] == 0.45
    ship("A", run, weights, weather="rain", generations=[1], force=True, steer_hold=0.2)
    assert load_controller(weights / "controllerA.npz", 32, 256, weather="rain")[2]["steer_hold"] == 0.2
    assert load_controller(weights / "controllerA.npz", 32, 256)[2]["steer_hold"] == 0.45  # the clear set's stays
    record = ship("A", run, weights, force=True, generations=[1], steer_hold=0.0)  # 0: none
    assert "steer_hold" not in record["training"]
    assert "steer_hold" not in load_controller(weights / "controllerA.npz", 32, 256)[2]
    assert load_controller(weights / "controllerA.npz", 32, 256, weather="rain")[2]["steer_hold"] == 0.2
