"""The real `vmc-duel` command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.duel import Duel

CLI = [sys.executable, "-m", "engine.cli"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def test_race_json_summary_names_a_winner():
    result = run("race", "--seed", "1", "--renderer", "fast", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["seed"] == 1 and summary["winner"] in ("A", "B", "draw")
    for p in ("A", "B"):
        t = summary["players"][p]
        assert t["done"] and t["step"] > 0 and 0 <= t["tiles_fraction"] <= 1
    a, b = summary["players"]["A"]["reward"], summary["players"]["B"]["reward"]
    assert summary["winner"] == ("A" if a > b else "B" if b > a else "draw")


def test_race_is_reproducible():
    one = json.loads(run("race", "--seed", "4", "--renderer", "fast", "--json").stdout)
    two = json.loads(run("race", "--seed", "4", "--renderer", "fast", "--json").stdout)
    assert one["players"] == two["players"]


def test_race_prints_live_telemetry():
    result = run("race", "--seed", "2", "--renderer", "fast")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "track 2" in lines[0] and "placeholder" in lines[0]
    assert sum(line.startswith("step ") for line in lines) >= 10
    assert lines[-1].startswith("Finished: winner")


def test_bad_options_are_explained():
    result = run("race", "--renderer", "pretty")
    assert result.returncode == 2 and "invalid choice: 'pretty'" in result.stderr
    result = run("race", "--speed", "-3")
    assert result.returncode == 2 and "--speed" in result.stderr
    result = run("--help")
    assert result.returncode == 0 and "race" in result.stdout


def test_console_script_is_installed():
    exe = shutil.which("vmc-duel", path=str(Path(sys.executable).parent))
    assert exe is not None
    result = subprocess.run([exe, "race", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--seed" in result.stdout


def test_duel_cars_end_on_their_own():
    duel = Duel(renderer="fast", max_episode_steps=30)
    obs = duel.reset(5)
    assert np.array_equal(obs[0], obs[1])  # same track, same start
    for _ in range(30):
        duel.step(np.array([[0.0, 1.0, 0.0], [0.0, 0.2, 0.0]]))
    a, b = duel.telemetry
    assert a.done and b.done and a.step == b.step == 30
    assert a.speed > b.speed
    assert duel.winner() in ("A", "B", None)


def test_health_reports_weights_and_fails_on_broken_ones(tmp_path):
    result = run("health", "--json", timeout=120)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"] and report["environment"]["ok"]
    assert "CPUExecutionProvider" in report["providers"]
    assert report["weights"]["files"]["controllerA.npz"]["placeholder"] is True
    broken = tmp_path / "weights"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"files": {"vae.pth": {"sha256": "0"}}, "sizes": {}}')
    result = run("health", "--weights", str(broken), timeout=120)
    assert result.returncode == 1
    assert "vae.pth: listed in" in result.stdout and "UNHEALTHY: weights" in result.stdout
