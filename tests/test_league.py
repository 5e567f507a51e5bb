"""Leagues: every pair of controllers on the same tracks, Bradley-Terry ratings whose order follows the win rates."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from engine.race.league import ELO_SCALE, PRIOR_DRAWS, bradley_terry, parse_entries, ratings, run_league, win_tensor
from engine.world_model.manifest import WEIGHTS_DIR


def test_bradley_terry_solves_its_score_equations():
    # two controllers: the fitted odds are the observed ones, with the virtual draw (half a win each) added
    wins = np.array([[0.0, 7.0], [3.0, 0.0]])
    log_p = bradley_terry(wins)
    assert log_p[0] - log_p[1] == pytest.approx(math.log((7 + PRIOR_DRAWS / 2) / (3 + PRIOR_DRAWS / 2)), abs=1e-8)
    # four: at the maximum, each controller's expected wins equal its wins (the MLE's score equations)
    wins = np.array([[0, 5, 6, 8], [3, 0, 4, 7], [2, 4, 0, 5], [0, 1, 3, 0]], dtype=float)
    log_p = bradley_terry(wins)
    w = wins + PRIOR_DRAWS / 2 * (1 - np.eye(4))
    n, p = w + w.T, np.exp(log_p)
    expected = (n * p[:, None] / (p[:, None] + p[None, :])).sum(axis=1)
    assert expected == pytest.approx(w.sum(axis=1), abs=1e-6) and log_p.sum() == pytest.approx(0.0, abs=1e-9)
    assert list(np.argsort(-log_p)) == [0, 1, 2, 3]
    # a controller that wins everything stays finite; the bootstrap is the same every run
    scores = win_tensor({(0, 1): ["A"] * 4}, 2, 4)
    first, second = ratings(scores, boot=200), ratings(scores, boot=200)
    assert np.isfinite(first["elo"]).all() and first["elo"][0] > 0
    assert np.array_equal(first["ci95"], second["ci95"])
    assert ELO_SCALE * math.log(10) == pytest.approx(400)


def test_entries_are_named_by_stem_or_label_and_must_be_distinct():
    assert [(n, str(p)) for n, p in parse_entries(["x/a.npz", "y/b.npz"])] == [("a", "x/a.npz"), ("b", "y/b.npz")]
    named = parse_entries(["x/best.npz", "y/best.npz", "early=z/gen_0010.npz"])
    assert [n for n, _ in named] == ["x/best", "y/best", "early"] and str(named[2][1]) == "z/gen_0010.npz"
    with pytest.raises(ValueError, match="given twice"):
        parse_entries(["a=x.npz", "a=y.npz"])
    with pytest.raises(ValueError, match="at least 2"):
        parse_entries(["x.npz"])


def crippled(path) -> None:
    """Shipped B with the gas bias far down: the car crawls at the strategy's minimum throttle."""
    with np.load(WEIGHTS_DIR / "controllerB.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["W"][1] = 0.0
    arrays["b"] = arrays["b"] + np.array([0.0, -8.0, 0.0])
    np.savez(path, **arrays)


def test_three_controllers_on_four_tracks_rated_in_the_order_of_their_win_rates(tmp_path):
    slow = tmp_path / "crawler.npz"
    crippled(slow)
    entries = [("A", WEIGHTS_DIR / "controllerA.npz"), ("crawler", slow), ("B", WEIGHTS_DIR / "controllerB.npz")]
    s = run_league(entries, tracks=4, seed_start=3_000_000, renderer="fast", device="cpu", precision="fp32",
                   workers=0, threads=1, max_steps=120)  # fmt: skip
    assert s["controllers"] == ["A", "crawler", "B"] and len(s["matches"]) == 3
    assert all(m["a_wins"] + m["b_wins"] + m["draws"] == 4 for m in s["matches"])
    assert all([r["seed"] for r in m["results"]] == [3_000_000 + k for k in range(4)] for m in s["matches"])
    rate = np.array([[np.nan if v is None else v for v in row] for row in s["win_rate"]])
    off_diagonal = ~np.eye(3, dtype=bool)
    assert np.allclose((rate + rate.T)[off_diagonal], 1.0)  # draws count half to each side
    elo = {r["name"]: r["elo"] for r in s["ratings"]}
    assert [r["name"] for r in s["ratings"]] == sorted(elo, key=lambda n: -elo[n])  # the table is in rating order
    names = s["controllers"]
    for i, j in ((i, j) for i in range(3) for j in range(3) if i != j):
        if rate[i, j] > 0.5:  # whoever wins more of a pair's duels is rated above
            assert elo[names[i]] > elo[names[j]], (names[i], names[j], rate[i, j], elo)
        elif rate[i, j] == 0.5:  # level, and (the crawler losing to both) level against the third: equal
            assert elo[names[i]] == pytest.approx(elo[names[j]], abs=1e-6)
    assert rate[1, 0] == 0 and rate[1, 2] == 0 and s["ratings"][-1]["name"] == "crawler"  # it loses every duel
    for r in s["ratings"]:
        lo, hi = r["elo_ci95"]
        assert lo <= r["elo"] + 1e-9 and r["elo"] <= hi + 1e-9
    assert s["ratings"][-1]["controller"]["file"] == str(slow)


def test_league_command_writes_json_and_png_and_refuses_a_bad_file(tmp_path):
    out = tmp_path / "league"
    cmd = [sys.executable, "-m", "vmc_duel.cli", "league", "weights/controllerA.npz", "weights/controllerB.npz",
           "--tracks", "2", "--steps", "40", "--renderer", "fast", "--device", "cpu", "--precision", "fp32",
           "--workers", "0", "--threads", "1", "--out", str(out), "--json"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=WEIGHTS_DIR.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    printed, saved = json.loads(r.stdout), json.loads((out / "league.json").read_text())
    assert printed["ratings"] == saved["ratings"] and len(saved["matches"]) == 1
    assert {x["name"] for x in saved["ratings"]} == {"controllerA", "controllerB"}
    assert (out / "league.png").stat().st_size > 10_000
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=WEIGHTS_DIR.parent)
    assert again.returncode == 2 and "pass --force" in again.stderr

    bad = tmp_path / "bad.npz"
    np.savez(bad, W=np.zeros((3, 5)), b=np.zeros(3))
    r = subprocess.run([*cmd[:4], str(bad), *cmd[5:-3], "--out", str(tmp_path / "other")], capture_output=True,
                       text=True, timeout=120, cwd=WEIGHTS_DIR.parent)  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip().startswith(f"vmc-duel league: {bad}: W (3, 5)"), r.stderr
    assert not (tmp_path / "other").exists()
