"""The edge path: a fresh virtual environment with only the base dependencies (no torch,
no onnx) races a duel on the shipped weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_base_install_races_a_duel_without_torch(tmp_path):
    venv = tmp_path / "edge"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(ROOT)], capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    listed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=json"], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "onnxruntime" in installed and not installed & {"torch", "onnx", "matplotlib", "cma", "ray"}
    race = subprocess.run([str(venv / "bin" / "vmc-duel"), "race", "--seed", "7", "--steps", "200", "--renderer",
                           "fast", "--json"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert race.returncode == 0, race.stderr[-3000:]
    result = json.loads(race.stdout.splitlines()[-1])
    assert result["event"] == "result" and result["steps"] == 200
    assert all(p["step"] == 200 or p["done"] for p in result["players"].values())
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
