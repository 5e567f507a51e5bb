"""A tiny run of the environment benchmark: the script works end to end (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_env_quick_prints_table_and_json(tmp_path):
    out = tmp_path / "env.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_env.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "exact" in result.stdout and "workers" in result.stdout
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data == json.loads(out.read_text())
    assert data["quick"] is True
    for name in ("stock", "exact", "fast"):
        assert data["renderers"][name]["median"] > 0
    assert set(data["vector"]) >= {"workers_1", "workers_2"}
    # saved results are never overwritten without --force
    again = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_env.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 2 and "pass --force" in again.stderr
    assert json.loads(out.read_text()) == data
