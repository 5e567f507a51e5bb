"""benchmarks/compare_tournaments.py on the committed tournaments: the paired report agrees with the JSON it
reads, and tournaments that did not race the same tracks are refused with a message naming why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "compare_tournaments.py"
RESULTS = ROOT / "benchmarks" / "results"
CLEAR_100 = RESULTS / "tournament_exact_100" / "tournament.json"
CLEAR_40 = RESULTS / "tournament_exact_40_fp32" / "tournament.json"
RAIN_50 = RESULTS / "tournament_exact_rain_50" / "tournament.json"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_b_against_a_on_the_same_tracks_matches_the_tournament(tmp_path):
    res = run(f"{CLEAR_100}:A", f"{CLEAR_100}:B", "--json", "--png", str(tmp_path / "diff.png"))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    t = json.loads(CLEAR_100.read_text())["results"]
    a = np.array([r["A_reward"] for r in t])
    b = np.array([r["B_reward"] for r in t])
    assert rep["old"]["mean"] == pytest.approx(a.mean()) and rep["new"]["mean"] == pytest.approx(b.mean())
    assert rep["old"]["laps"] == sum(r["A_lap_finished"] for r in t)
    assert rep["better"] + rep["worse"] + rep["equal"] == len(t) == rep["old"]["tracks"]
    assert rep["better"] == int((b - a > 0.05).sum())
    assert rep["mean_difference"] == pytest.approx(b.mean() - a.mean())
    lo, hi = rep["mean_difference_ci95"]
    assert lo < rep["mean_difference"] < hi
    assert rep["median_difference"] == pytest.approx(np.median(b - a))
    assert {c["seed"] for c in rep["big_changes"]} == {r["seed"] for r in t if abs(r["B_reward"] - r["A_reward"]) > 50}
    assert (tmp_path / "diff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_driver_against_itself_is_equal_everywhere():
    res = run(str(CLEAR_100), str(CLEAR_100), "--player", "B")
    assert res.returncode == 0, res.stderr
    assert "better on 0, worse on 0, equal on 100 tracks; median +0.00, mean +0.00" in res.stdout
    assert "changes beyond" not in res.stdout


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (CLEAR_100, RAIN_50, "differ in weather: 'clear' against 'rain'"),
        (CLEAR_100, CLEAR_40, "raced different tracks (60 seeds in one only, first [1000040, 1000041, 1000042])"),
        (ROOT / "no_such.json", CLEAR_100, "no_such.json: no such file"),
        (f"{CLEAR_100}:C", CLEAR_100, "player 'C' is neither A nor B"),
    ],
)
def test_tracks_or_settings_that_differ_are_refused(old, new, message):
    res = run(str(old), str(new))
    assert res.returncode != 0
    assert message in res.stderr


def test_a_file_that_is_not_a_tournament_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tracks": 3}))
    res = run(str(bad), str(CLEAR_100))
    assert res.returncode != 0 and f"{bad}: no per-track 'results'" in res.stderr
