"""A tiny CMA-ES run through the real pipeline: batched rollouts, checkpoints, resume, ship."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("cma")

from engine.policy.controller import load_controller  # noqa: E402
from engine.world_model.manifest import WEIGHTS_DIR, load_manifest  # noqa: E402
from train.config import TrainControllerConfig  # noqa: E402
from train.controller import ship, train_controller  # noqa: E402


def tiny(tmp_path, **changes) -> TrainControllerConfig:
    base = dict(name="T", out=tmp_path / "runs", generations=1, population=4, rollouts=2, max_steps=60,
                eval_every=1, eval_tracks=2, workers=0, threads=1, rain_fraction=0.5, off_track_penalty=5.0,
                off_track_patience=20, snapshot_every=1)  # fmt: skip
    return TrainControllerConfig(**{**base, **changes})


def test_cma_es_runs_checkpoints_resumes_and_ships(tmp_path):
    run = train_controller(tiny(tmp_path))
    for name in ("es.pkl", "state.json", "log.csv", "fitness.png", "best.npz", "config.json"):
        assert (run / name).exists(), name
    run = train_controller(tiny(tmp_path, generations=2))  # resumes after generation 1
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["generation"]) for r in rows] == [1, 2]
    assert all(float(r["steps_mean"]) <= 60 for r in rows) and rows[1]["eval_mean"] != ""
    sizes = load_manifest(verify=False)["sizes"]
    for g in (1, 2):  # a snapshot per generation, the second written by the resumed run
        _, _, meta = load_controller(run / f"gen_{g:04d}.npz", sizes["z"], sizes["hidden"])
        assert meta["generation"] == g and meta["name"] == "T" and "eval_mean" in meta
    with pytest.raises(ValueError, match="already has 2 generations"):
        train_controller(tiny(tmp_path, generations=2))
    with pytest.raises(ValueError, match="other population"):
        train_controller(tiny(tmp_path, generations=3, population=6))

    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    with np.load(weights / "controllerA.npz", allow_pickle=False) as f:  # a shipped A without a wet-track set
        clear = {k: f[k] for k in f.files if k not in ("W_rain", "b_rain") and not k.startswith("rain_")}
    np.savez(weights / "controllerA.npz", **clear)
    with pytest.raises(ValueError, match="pass --force"):
        ship("A", run, weights)
    record = ship("A", run, weights, force=True)
    assert record["placeholder"] is False and record["training"]["generations_run"] == 2
    manifest = load_manifest(weights)  # sha256 of the new file checks out
    W, b, meta = load_controller(weights / "controllerA.npz", manifest["sizes"]["z"], manifest["sizes"]["hidden"])
    assert W.shape == (3, 288) and meta["placeholder"] is False and np.isfinite(W).all()
    assert (weights / "controllerA_fitness.png").exists()

    # generation 1's snapshot as A's wet-track set: driven in rain, the clear weights untouched
    with np.load(run / "gen_0001.npz", allow_pickle=False) as f:
        W1 = f["W"]
    with pytest.raises(ValueError, match="gen_0007.npz: no snapshot of that generation"):
        ship("A", run, weights, weather="rain", generations=[7])
    record = ship("A", run, weights, weather="rain", generations=[1])
    assert record["rain_training"]["shipped_generation"] == 1 and record["training"]["shipped_generation"] == 2
    # a wet-track set is evaluated as shipped, in rain, on the rain evaluation tracks
    rain = record["rain_training"]
    assert rain["eval_weather"] == "rain" and rain["eval_tracks"] == "900100-900101"
    manifest = load_manifest(weights)  # the file's new sha256 is recorded
    z, hidden = manifest["sizes"]["z"], manifest["sizes"]["hidden"]
    assert (load_controller(weights / "controllerA.npz", z, hidden)[0] == W).all()
    Wr, _, rain_meta = load_controller(weights / "controllerA.npz", z, hidden, weather="rain")
    assert (Wr == W1).all() and (rain_meta["name"], rain_meta["generation"]) == ("T", 1)
    with pytest.raises(ValueError, match="wet-track set already: pass --force"):
        ship("A", run, weights, weather="rain", generations=[2])
    # new clear weights keep the wet-track set, in the file and in the manifest
    record = ship("A", run, weights, force=True, generations=[1])
    assert record["training"]["shipped_generation"] == 1 and record["rain_training"]["shipped_generation"] == 1
    assert (load_controller(weights / "controllerA.npz", z, hidden, weather="rain")[0] == W1).all()
    load_manifest(weights)
    # several generations: their average, named as such
    with np.load(run / "gen_0002.npz", allow_pickle=False) as f:
        W2 = f["W"]
    record = ship("A", run, weights, weather="rain", generations=[1, 2], force=True)
    assert record["rain_training"]["averaged_generations"] == "1, 2"
    record = ship("A", run, weights, generations=[1, 2], force=True)  # an average, evaluated as shipped
    assert record["training"]["averaged_generations"] == "1, 2" and record["training"]["eval_tracks"] == "900000-900001"
    assert np.isfinite(record["training"]["eval_mean"]) and "W_rain" in record["shape"]
    Wr, _, rain_meta = load_controller(weights / "controllerA.npz", z, hidden, weather="rain")
    assert np.allclose(Wr, (W1 + W2) / 2) and "averaged over generations 1, 2" in rain_meta["method"]


def test_controller_command_reads_a_config_and_flags_override(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("name: Y\npopulation: 4\nrollouts: 1\nmax_steps: 30\ngenerations: 1\neval_tracks: 1\n"
                      "workers: 0\nthreads: 1\n")  # fmt: skip
    cmd = [sys.executable, "-m", "vmc_duel.cli", "train", "controller", "--config", str(config),
           "--out", str(tmp_path / "runs"), "--population", "5"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((tmp_path / "runs" / "Y" / "config.json").read_text())
    assert saved["population"] == 5 and saved["rollouts"] == 1 and saved["name"] == "Y"
    config.write_text("populaton: 4\n")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown key 'populaton'" in result.stderr


def test_pipelined_rollouts_give_the_same_fitness_as_lockstep(tmp_path):
    """Two env workers pipeline the rollouts (one half steps while the model decides for the
    other); in-process, every car steps together: the same generation either way."""
    lockstep = train_controller(tiny(tmp_path, name="L", workers=0, max_steps=150))
    pipelined = train_controller(tiny(tmp_path, name="P", workers=2, max_steps=150))
    rows = [list(csv.DictReader((run / "log.csv").open()))[0] for run in (lockstep, pipelined)]
    keys = ["fitness_mean", "fitness_max", "fitness_min", "reward_mean", "off_track_s_mean", "steps_mean", "eval_mean"]
    assert [rows[0][k] for k in keys] == [rows[1][k] for k in keys]
    # the off-track count and the early cut (off_track_patience 20) were exercised
    assert float(rows[0]["off_track_s_mean"]) > 0 and float(rows[0]["steps_mean"]) < 150


def test_hard_tracks_pool_is_picked_from_tournaments_and_driven(tmp_path):
    """`vmc-duel train hard-tracks` keeps a tournament's tracks below the threshold, worst first,
    and refuses evaluation and held-out tracks; training then drives the pool's tracks in the
    last hard_fraction of each candidate's rollouts."""
    from train.controller import track_seed
    from train.hard_tracks import hard_tracks

    results = [{"seed": 2_000_004 + k, "A_reward": r, "B_reward": 900.0} for k, r in enumerate([910, 420, 830, 650])]
    results.append({"seed": 2_000_001, "A_reward": 300.0, "B_reward": 900.0})  # a knob-effects track: left out
    t = tmp_path / "t" / "tournament.json"
    t.parent.mkdir()
    t.write_text(json.dumps({"results": results}))
    pool = tmp_path / "hard.json"
    cmd = [sys.executable, "-m", "vmc_duel.cli", "train", "hard-tracks", str(t), "--below", "850", "--out", str(pool)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(pool.read_text())["seeds"] == [2_000_005, 2_000_007, 2_000_006]  # worst first
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "pass --force" in result.stderr
    t.write_text(json.dumps({"results": results + [{"seed": 1_000_005, "A_reward": 100.0, "B_reward": 1.0}]}))
    assert json.loads(pool.read_text())["weather"] == "clear"
    rain = tmp_path / "r" / "tournament.json"
    rain.parent.mkdir()
    rain.write_text(json.dumps({"weather": "rain", "results": results}))
    assert hard_tracks([rain], "A", 850.0)["weather"] == "rain"
    clear = tmp_path / "c.json"
    clear.write_text(json.dumps({"weather": "clear", "results": results}))
    with pytest.raises(ValueError, match="tournaments in clear and rain"):
        hard_tracks([clear, rain], "A", 850.0)
    with pytest.raises(ValueError, match="1000005 is a held-out track"):
        hard_tracks([t], "A", 850.0)

    cfg = tiny(tmp_path, rollouts=4, track_seed=500)
    assert [track_seed(cfg, [7, 8, 9], 2, g, r) for g in (0, 1) for r in range(4)] == [500, 501, 7, 8,
                                                                                      504, 505, 9, 7]  # fmt: skip
    # A pool holding exactly the fresh track it replaces drives the same generation as no pool;
    # a pool of other tracks does not.
    pool.write_text(json.dumps({"seeds": [10_001]}))
    plain = train_controller(tiny(tmp_path, name="N", track_seed=10_000, rain_fraction=0.0))
    same = train_controller(tiny(tmp_path, name="S", track_seed=10_000, rain_fraction=0.0, hard_tracks=str(pool),
                                 hard_fraction=0.5))  # fmt: skip
    pool.write_text(json.dumps({"seeds": [2_000_001]}))
    other = train_controller(tiny(tmp_path, name="O", track_seed=10_000, rain_fraction=0.0, hard_tracks=str(pool),
                                  hard_fraction=0.5))  # fmt: skip
    pool.write_text(json.dumps({"seeds": [10_001], "weather": "rain"}))  # the same track, screened in rain
    wet = train_controller(tiny(tmp_path, name="W", track_seed=10_000, rain_fraction=0.0, hard_tracks=str(pool),
                                hard_fraction=0.5))  # fmt: skip
    rows = [list(csv.DictReader((run / "log.csv").open()))[0] for run in (plain, same, other, wet)]
    assert rows[0]["fitness_mean"] == rows[1]["fitness_mean"] != rows[2]["fitness_mean"]
    assert rows[3]["fitness_mean"] != rows[1]["fitness_mean"]  # driven in its pool's weather
    with pytest.raises(ValueError, match="hard_fraction needs hard_tracks"):
        train_controller(tiny(tmp_path, name="X", hard_fraction=0.5))


def test_gains_subspace_searches_nine_numbers_around_its_base(tmp_path):
    from train.controller import Search

    sizes = load_manifest(verify=False)["sizes"]
    W0, b0, _ = load_controller(WEIGHTS_DIR / "controllerA.npz", sizes["z"], sizes["hidden"])
    search = Search("gains", sizes["z"], W0, b0)
    W, b = search.to_wb(search.x0)  # the base point is the base controller, bit for bit
    assert np.array_equal(W, W0) and np.array_equal(b, b0)
    x = search.x0.copy()
    x[1], x[5], x[7] = 1.5, 0.5, 0.2  # gas's z gain, brake's h gain, gas's bias shift
    W, b = search.to_wb(x)
    z = sizes["z"]
    assert np.array_equal(W[1, :z], W0[1, :z] * 1.5) and np.array_equal(W[1, z:], W0[1, z:])
    assert np.array_equal(W[2, z:], W0[2, z:] * 0.5) and np.array_equal(W[0], W0[0])
    assert b[1] == b0[1] + 0.2 and b[0] == b0[0] and b[2] == b0[2]

    with pytest.raises(ValueError, match="give it --init"):
        train_controller(tiny(tmp_path, subspace="gains"))
    with pytest.raises(ValueError, match="subspace .diagonal. is not one of full, gains, speed"):
        train_controller(tiny(tmp_path, subspace="diagonal", init=str(WEIGHTS_DIR / "controllerA.npz")))
    assert not (tmp_path / "runs").exists()  # refused before anything was written

    # a real run: its controllers are gains of the base, kept in the run, which a resume reads
    init = tmp_path / "start.npz"
    shutil.copyfile(WEIGHTS_DIR / "controllerA.npz", init)
    run = train_controller(tiny(tmp_path, subspace="gains", init=str(init), rain_fraction=0.0))
    init.unlink()  # the start file is gone: the run still resumes from its own base.npz
    run = train_controller(tiny(tmp_path, subspace="gains", init=str(init), rain_fraction=0.0, generations=2))
    W2, b2, meta = load_controller(run / "gen_0002.npz", sizes["z"], sizes["hidden"])
    gains = np.array([float(v) for v in meta["gains"].split()])
    assert meta["subspace"] == "gains" and gains.shape == (9,)
    Wg, bg = search.to_wb(gains)
    assert np.allclose(W2, Wg, rtol=1e-3, atol=1e-6) and np.allclose(b2, bg, atol=1e-3)  # gains printed to 6 places
    assert not np.array_equal(W2, W0)
    from train.controller import load_snapshots  # an average of snapshots is a point of the subspace too

    Wa, ba, meta = load_snapshots(run, [1, 2])
    Wg, bg = search.to_wb(np.array([float(v) for v in meta["gains"].split()]))
    assert np.allclose(Wa, Wg, rtol=1e-3, atol=1e-6) and np.allclose(ba, bg, atol=1e-3)
    with pytest.raises(ValueError, match="other .*subspace"):
        train_controller(tiny(tmp_path, subspace="full", init=str(WEIGHTS_DIR / "controllerA.npz"), generations=3,
                              rain_fraction=0.0))  # fmt: skip


def run_then_resume(tmp_path, **cfg):
    """A tiny run around the shipped A (cfg: its subspace and model settings) from a copy of A's file, the copy
    deleted after the first generation, then resumed to the second: the run fits its model once, keeps it in
    base.npz and a resume reads it from there. -> (run, base.npz's arrays, W, b and gains of generation 2)."""
    sizes = load_manifest(verify=False)["sizes"]
    init = tmp_path / "start.npz"
    shutil.copyfile(WEIGHTS_DIR / "controllerA.npz", init)
    cfg = dict(init=str(init), rain_fraction=0.0, **cfg)
    run = train_controller(tiny(tmp_path, **cfg))
    with np.load(run / "base.npz", allow_pickle=False) as f:
        base = {k: f[k] for k in f.files}
    init.unlink()
    run = train_controller(tiny(tmp_path, **{**cfg, "generations": 2}))
    W2, b2, meta = load_controller(run / "gen_0002.npz", sizes["z"], sizes["hidden"])
    assert meta["subspace"] == cfg["subspace"]
    return run, base, W2, b2, np.array([float(v) for v in meta["gains"].split()])


def test_speed_subspace_holds_a_speed_through_a_linear_speed_model(tmp_path):
    from train.controller import V_BRAKE_REF, V_GAS_REF, Search
    from train.speed_model import fit_speed_model

    sizes = load_manifest(verify=False)["sizes"]
    dims = sizes["z"] + sizes["hidden"]
    W0, b0, _ = load_controller(WEIGHTS_DIR / "controllerA.npz", sizes["z"], sizes["hidden"])
    w, w0, r2 = fit_speed_model(WEIGHTS_DIR / "controllerA.npz", tracks=1, max_steps=120)
    assert w.shape == (dims,) and np.isfinite(w0) and 0.5 < r2 <= 1.0  # the latent carries the speed
    with pytest.raises(ValueError, match="speed model"):
        Search("speed", sizes["z"], W0, b0)
    search = Search("speed", sizes["z"], W0, b0, (w, w0))
    assert search.x0.shape == (11,)
    W, b = search.to_wb(search.x0)  # k = 0: the base controller, bit for bit
    assert np.array_equal(W, W0) and np.array_equal(b, b0)
    x = search.x0.copy()
    x[9], x[10] = 0.1, 0.3  # k_gas, k_brake
    W, b = search.to_wb(x)
    zh = np.random.default_rng(0).normal(size=(5, dims))  # (5, dims)
    v = zh @ w + w0  # (5,) the model's speed
    base = zh @ W0.T + b0  # (5, 3)
    out = zh @ W.T + b
    assert np.allclose(out[:, 0], base[:, 0])  # steering untouched
    assert np.allclose(out[:, 1], base[:, 1] + 0.1 * (V_GAS_REF - v))
    assert np.allclose(out[:, 2], base[:, 2] + 0.3 * (v - V_BRAKE_REF))

    # a real run fits its init's speed model once, keeps it in base.npz, and a resume reads it from there
    run, base, W2, b2, gains = run_then_resume(tmp_path, subspace="speed", speed_tracks=1)
    assert base["speed_w"].shape == (dims,) and np.isfinite(float(base["speed_r2"]))
    assert gains.shape == (11,)
    fitted = Search("speed", sizes["z"], W0, b0, (base["speed_w"], float(base["speed_w0"])))
    Wg, bg = fitted.to_wb(gains)
    assert np.allclose(W2, Wg, rtol=1e-3, atol=1e-4) and np.allclose(b2, bg, atol=1e-3)  # printed to 6 places


def test_weave_penalty_takes_the_weave_off_the_fitness(tmp_path):
    """fitness = reward - off_track_penalty x seconds off - weave_penalty x steering reversals a second; linear, so
    the generation's mean fitness is the same combination of its means, all in log.csv."""
    run = train_controller(tiny(tmp_path, weave_penalty=2.0))
    row = {k: float(v) for k, v in next(csv.DictReader((run / "log.csv").open())).items() if v != ""}
    assert 0 < row["weave_mean"] < 25
    assert row["fitness_mean"] == pytest.approx(row["reward_mean"] - 5.0 * row["off_track_s_mean"]
                                                - 2.0 * row["weave_mean"])  # fmt: skip


def test_tail_weight_counts_a_crash_beyond_its_share_of_the_mean():
    """A candidate a point faster on 7 tracks and crashed on the 8th loses to a steady one once the worst quarter
    weighs in; at 0 the fitness is the plain mean, at 1 the worst quarter's mean alone."""
    from train.controller import candidate_fitness

    steady = np.full(8, 900.0)
    brave = np.array([901.0] * 7 + [500.0])
    f = np.stack([steady, brave])  # (2 candidates, 8 rollouts)
    assert np.array_equal(candidate_fitness(f), f.mean(axis=1))
    assert candidate_fitness(f, 1.0) == pytest.approx([900.0, (901.0 + 500.0) / 2])  # worst 2 of 8
    half = candidate_fitness(f, 0.5)
    assert half == pytest.approx(0.5 * f.mean(axis=1) + 0.5 * np.array([900.0, 700.5]))
    assert half[0] > half[1] and candidate_fitness(f)[0] > candidate_fitness(f)[1]
    assert candidate_fitness(np.array([[3.0, 1.0]]), 1.0) == pytest.approx([1.0])  # at least one rollout


def test_tail_weight_in_a_run_and_its_bounds(tmp_path):
    """A real run with the tail: every candidate's fitness is at most its plain mean, so the generation's mean
    fitness is at most the mean reward's combination; the option is refused outside [0, 1], naming it."""
    run = train_controller(tiny(tmp_path, tail_weight=0.5))
    row = {k: float(v) for k, v in next(csv.DictReader((run / "log.csv").open())).items() if v != ""}
    assert row["fitness_mean"] <= row["reward_mean"] - 5.0 * row["off_track_s_mean"] + 1e-9
    assert json.loads((run / "config.json").read_text())["tail_weight"] == 0.5
    res = subprocess.run([sys.executable, "-m", "vmc_duel", "train", "controller", "--tail-weight", "1.5",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode != 0 and "--tail-weight must be at most 1.0, got 1.5" in res.stderr


def test_a_run_all_in_rain_is_evaluated_in_rain(tmp_path):
    """No car of the generation drives in clear weather: the mean is evaluated in rain, on the wet-track sets'
    evaluation tracks (900100 on), not on an empty set."""
    run = train_controller(tiny(tmp_path, rain_fraction=1.0))
    with np.load(run / "best.npz", allow_pickle=False) as best:
        assert best["eval_tracks"].item() == "900100-900101" and np.isfinite(best["eval_mean"])


def test_damping_subspace_blends_the_last_steering_read_from_h(tmp_path):
    from train.controller import Search
    from train.steer_model import fit_steer_model

    sizes = load_manifest(verify=False)["sizes"]
    nz, dims = sizes["z"], sizes["z"] + sizes["hidden"]
    W0, b0, _ = load_controller(WEIGHTS_DIR / "controllerA.npz", sizes["z"], sizes["hidden"])
    m = fit_steer_model(WEIGHTS_DIR / "controllerA.npz", tracks=1, max_steps=120)
    assert m.pz.shape == m.ph.shape == (sizes["hidden"],) and 0.5 < m.r2 <= 1.0  # h remembers the last steering
    with pytest.raises(ValueError, match="steering model"):
        Search("damping", nz, W0, b0)
    search = Search("damping", nz, W0, b0, steer=m)
    assert search.x0.shape == (10,)
    W, b = search.to_wb(search.x0)  # k = 0: the base controller, bit for bit
    assert np.array_equal(W, W0) and np.array_equal(b, b0)
    x = search.x0.copy()
    x[0], x[3], x[6], x[9] = 0.9, 1.2, 0.05, 0.4  # steering's z gain, h gain, bias shift; k
    W, b = search.to_wb(x)
    zh = np.random.default_rng(0).normal(size=(5, dims))  # (5, dims)
    h = zh[:, nz:]
    s = 0.9 * zh[:, :nz] @ W0[0, :nz] + 1.2 * h @ W0[0, nz:] + b0[0] + 0.05  # the gains' steering
    s_prev = 0.9 * (h @ m.pz + m.pz0) + 1.2 * (h @ m.ph + m.ph0) + b0[0] + 0.05  # its last step's, from h
    out = zh @ W.T + b
    assert np.allclose(out[:, 0], 0.6 * s + 0.4 * s_prev)
    assert np.allclose(out[:, 1:], zh @ W0[1:].T + b0[1:])  # gas and brake untouched

    # a real run fits its init's steering model once, keeps it in base.npz, and a resume reads it from there
    run, base, W2, b2, gains = run_then_resume(tmp_path, subspace="damping", steer_tracks=1)
    assert base["steer_ph"].shape == (sizes["hidden"],) and np.isfinite(float(base["steer_r2"]))
    assert gains.shape == (10,)
    kept = type(m)(*(base[f"steer_{k}"] for k in ("pz", "pz0", "ph", "ph0", "r2")))
    Wg, bg = Search("damping", nz, W0, b0, steer=kept).to_wb(gains)
    assert np.allclose(W2, Wg, rtol=1e-3, atol=1e-4) and np.allclose(b2, bg, atol=1e-3)  # printed to 6 places


def test_corner_target_is_the_size_of_the_coming_steering():
    from train.corner_model import CORNER_FROM, CORNER_TO, corner_target

    steer = np.zeros(60)
    steer[30:40] = -0.5  # a left bend from step 30 to 39
    c = corner_target(steer)  # (40,)
    assert c.shape == (60 - CORNER_TO,)
    expected = np.array([abs(steer[t + CORNER_FROM : t + CORNER_TO].mean()) for t in range(60 - CORNER_TO)])
    assert np.allclose(c, expected)
    assert c[0] == 0.0 and c.max() == pytest.approx(0.5 * 10 / (CORNER_TO - CORNER_FROM))  # the side does not count
    assert np.allclose(corner_target(-steer), c)


def test_throttle_subspace_rebuilds_gas_and_brake_from_speed_and_the_bend_ahead(tmp_path):
    from train.controller import C_THROTTLE_REF, THROTTLE_STDS, THROTTLE_X0, V_THROTTLE_REF, Search
    from train.corner_model import fit_corner_model

    sizes = load_manifest(verify=False)["sizes"]
    nz, dims = sizes["z"], sizes["z"] + sizes["hidden"]
    W0, b0, _ = load_controller(WEIGHTS_DIR / "controllerA.npz", sizes["z"], sizes["hidden"])
    corner = fit_corner_model(WEIGHTS_DIR / "controllerA.npz", tracks=1, max_steps=120)
    assert corner.w.shape == (dims,) and np.isfinite(corner.w0) and 0.0 < corner.r2 <= 1.0
    rng = np.random.default_rng(0)
    speed = (rng.normal(size=dims), 40.0)  # any linear speed model: the algebra is what is checked here
    with pytest.raises(ValueError, match="corner model"):
        Search("throttle", nz, W0, b0, speed)
    with pytest.raises(ValueError, match="speed model"):
        Search("throttle", nz, W0, b0, corner=corner)
    search = Search("throttle", nz, W0, b0, speed, corner=corner)
    assert np.array_equal(search.x0, THROTTLE_X0) and np.array_equal(search.stds, THROTTLE_STDS)
    x = np.array([0.9, 1.2, 0.05, -1.5, 0.2, 3.0, -2.0, 0.1, 8.0])
    W, b = search.to_wb(x)
    zh = rng.normal(size=(5, dims))  # (5, dims)
    v = zh @ speed[0] + speed[1]  # (5,) the speed model's speed
    c = zh @ corner.w + corner.w0  # (5,) the bend ahead
    out = zh @ W.T + b  # (5, 3) pre-activations
    assert np.allclose(out[:, 0], 0.9 * zh[:, :nz] @ W0[0, :nz] + 1.2 * zh[:, nz:] @ W0[0, nz:] + b0[0] + 0.05)
    assert np.allclose(out[:, 1], -1.5 + 0.2 * (V_THROTTLE_REF - v) + 3.0 * (C_THROTTLE_REF - c))
    assert np.allclose(out[:, 2], -2.0 + 0.1 * (v - V_THROTTLE_REF) + 8.0 * (c - C_THROTTLE_REF))

    # a real run fits both models once, keeps them in base.npz, and a resume reads them from there
    run, base, W2, b2, gains = run_then_resume(tmp_path, subspace="throttle", speed_tracks=1)
    assert base["corner_w"].shape == base["speed_w"].shape == (dims,) and np.isfinite(float(base["corner_r2"]))
    assert gains.shape == (9,)
    kept = type(corner)(base["corner_w"], float(base["corner_w0"]), float(base["corner_r2"]))
    Wg, bg = Search("throttle", nz, W0, b0, (base["speed_w"], float(base["speed_w0"])), corner=kept).to_wb(gains)
    assert np.allclose(W2, Wg, rtol=1e-3, atol=1e-4) and np.allclose(b2, bg, atol=1e-3)  # printed to 6 places
