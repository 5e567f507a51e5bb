"""The real `vmc-duel` command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "vmc_duel.cli"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def json_lines(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_race_json_lines_name_a_winner():
    records = json_lines(run("race", "--seed", "1", "--renderer", "fast", "--json"))
    start, *steps, summary = records
    assert start["event"] == "start" and start["seed"] == 1 and start["device"] == "cpu"
    method = start["controllers"]["A"]  # how A was made: CMA-ES, perhaps its mean averaged over generations
    assert method == "PLACEHOLDER" or method.startswith("CMA-ES (train/controller.py)")
    assert [r["step"] for r in steps][:3] == [50, 100, 150] and all(r["event"] == "step" for r in steps)
    assert summary["event"] == "result" and summary["finished"] and summary["winner"] in ("A", "B", "draw")
    for p in ("A", "B"):
        t = summary["players"][p]
        assert t["done"] and t["step"] > 0 and 0 <= t["tiles_percent"] <= 100 and 0 <= t["risk"] <= 1
        assert set(t["regimes"]) == {"neutral", "straight", "drift", "rain"} and len(t["action"]) == 3
    a, b = summary["players"]["A"], summary["players"]["B"]
    key = (round(a["reward"], 6), -a["off_track_steps"]), (round(b["reward"], 6), -b["off_track_steps"])
    assert summary["winner"] == ("A" if key[0] > key[1] else "B" if key[1] > key[0] else "draw")


def test_race_is_reproducible_with_knob_files_and_steps(tmp_path):
    knobs = tmp_path / "careful.yaml"
    knobs.write_text("risk_aversion: 0.8\nlookahead_horizon: 5\ngating_bias:\n  rain: 1.5\n")
    args = ("race", "--seed", "4", "--renderer", "fast", "--steps", "300", "--weather", "rain", "--json")
    one = json_lines(run(*args, "--knobs-a", str(knobs)))
    two = json_lines(run(*args, "--knobs-a", str(knobs)))
    assert one[:-1] == two[:-1]  # start and every telemetry line
    assert one[-1]["players"] == two[-1]["players"] and one[-1]["steps"] == 300 and not one[-1]["finished"]
    assert one[0]["knobs"]["A"]["risk_aversion"] == 0.8 and one[0]["knobs"]["A"]["gating_bias"]["rain"] == 1.5
    assert one[0]["knobs"]["B"]["risk_aversion"] == 0.0
    plain = json_lines(run(*args))
    assert plain[-1]["players"]["A"] != one[-1]["players"]["A"]  # the knobs changed A's race
    assert plain[-1]["players"]["B"]["reward"] == one[-1]["players"]["B"]["reward"]  # and not B's


def test_race_prints_live_telemetry_and_a_table():
    result = run("race", "--seed", "2", "--renderer", "fast")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "track 2" in lines[0] and "controllers A:" in lines[0]
    assert sum(line.startswith("step ") for line in lines) >= 10
    assert any(line.split()[:1] == ["reward"] for line in lines) and lines[-2].startswith("winner: ")


def test_race_picks_and_reports_a_random_seed():
    records = json_lines(run("race", "--renderer", "fast", "--steps", "5", "--json"))
    assert isinstance(records[0]["seed"], int) and records[-1]["seed"] == records[0]["seed"]


def test_bad_knob_files_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk_aversion: 3\n")
    result = run("race", "--steps", "5", "--knobs-b", str(bad))
    assert result.returncode == 2 and f"{bad}: risk_aversion = 3 is outside [0.0, 1.0]" in result.stderr
    bad.write_text("gating_bias: {rain: 0.5, snow: 1}\n")
    result = run("race", "--steps", "5", "--knobs-a", str(bad))
    assert result.returncode == 2 and "unknown knob 'gating_bias.snow'" in result.stderr
    result = run("race", "--steps", "0")
    assert result.returncode == 2 and "argument --steps: must be in 1..1000, got 0" in result.stderr


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
    result = subprocess.run([exe, "race", "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "--seed" in result.stdout


def test_health_reports_weights_and_fails_on_broken_ones(tmp_path):
    result = run("health", "--json", timeout=120)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"] and report["environment"]["ok"]
    assert "CPUExecutionProvider" in report["providers"]
    assert report["weights"]["files"]["controllerA.npz"]["placeholder"] is False
    if report["session_provider"] == "CPUExecutionProvider":  # what computes the imagined rollout, said plainly
        assert report["lookahead"].startswith("numba on the CPU")
    broken = tmp_path / "weights"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"files": {"vae.pth": {"sha256": "0"}}, "sizes": {}}')
    result = run("health", "--weights", str(broken), timeout=120)
    assert result.returncode == 1
    assert "vae.pth: listed in" in result.stdout and "UNHEALTHY: weights" in result.stdout
