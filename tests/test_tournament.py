"""Tournaments: batched duels give each duel's own result; the statistics and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.race.tournament import run_tournament, wilson_interval


def test_wilson_interval():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_weave_counts_reversals_of_the_steering_beyond_the_dead_band():
    from engine.race.duel import STEER_DEAD_BAND, PlayerTelemetry

    t = PlayerTelemetry()
    steer = [0.3, 0.01, -0.2, -0.5, -STEER_DEAD_BAND, 0.04, 0.1, 0.0, 0.2, -0.06]
    for s in steer:
        t.count_steer(s)
        t.step += 1
    assert t.steer_reversals == 3  # + to -, - to +, + to -: the small values in between are straight ahead
    assert t.as_dict()["weave"] == pytest.approx(3 / (len(steer) / 50)) and "last_steer_sign" not in t.as_dict()


def test_tournament_batches_and_cli_agree(tmp_path):
    here = run_tournament(tracks=3, seed_start=5, renderer="fast", batch=3, workers=0, threads=1, device="cpu")
    assert [r["seed"] for r in here["results"]] == [5, 6, 7] and here["tracks"] == 3
    wins = sum(r["winner"] == "A" for r in here["results"])
    draws = sum(r["winner"] == "draw" for r in here["results"])
    assert here["a_wins"] == wins and here["a_win_rate"] == pytest.approx((wins + 0.5 * draws) / 3)
    lo, hi = here["a_win_rate_ci95"]
    assert 0 <= lo <= here["a_win_rate"] <= hi <= 1
    rewards = [r["A_reward"] for r in here["results"]]
    assert here["players"]["A"]["reward_mean"] == pytest.approx(sum(rewards) / 3)
    for name in "AB":  # how each drives: its weave (steering reversals a second) and mean speed, per track too
        weave = [r[f"{name}_weave"] for r in here["results"]]
        assert all(0 < w < 25 for w in weave) and here["players"][name]["weave_mean"] == pytest.approx(sum(weave) / 3)
        assert all(20 < r[f"{name}_mean_speed"] < 100 for r in here["results"])  # m/s, a lap's average

    cmd = [sys.executable, "-m", "vmc_duel.cli", "tournament", "--tracks", "3", "--seed-start", "5", "--renderer",
           "fast", "--batch", "2", "--workers", "2", "--threads", "1", "--device", "cpu", "--out", str(tmp_path),
           "--json"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    saved = json.loads((tmp_path / "tournament.json").read_text())
    assert saved["results"] == here["results"]  # batches of 2 over worker processes = one batch of 3 in-process
    assert printed["a_win_rate_ci95"] == here["a_win_rate_ci95"]
    assert (tmp_path / "tournament.png").stat().st_size > 10_000
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "pass --force" in again.stderr


def test_pipelined_and_process_parallel_tournaments_give_the_same_per_track_results():
    """Two env workers: one half of the cars steps while the model decides for the other
    (Duel.run); two processes: each races its share of the tracks; in-process: every car
    steps together. Lookahead on, so lookahead.onnx runs on a subset of players too."""
    from engine.policy.knobs import Knobs, load_bounds

    careful = Knobs(load_bounds())
    careful.update({"lookahead_horizon": 8, "risk_aversion": 0.6})
    common = dict(tracks=4, seed_start=2_000_000, renderer="fast", batch=4, threads=1, device="cpu",
                  knobs=(careful, Knobs(load_bounds())))  # fmt: skip
    pipelined = run_tournament(workers=2, **common)
    together = run_tournament(workers=0, **common)
    shared = run_tournament(processes=2, **common)
    assert pipelined["results"] == together["results"] == shared["results"]
    assert len({r["A_reward"] for r in pipelined["results"]}) == 4  # four different races
