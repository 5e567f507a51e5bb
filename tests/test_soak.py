"""The soak's short version (200 duels): the real script, its leak checks and its outputs.

The full soak (10,000 duels, docs/reliability.md) runs apart from the suite; this one keeps the checks
themselves honest on every commit: RSS within 5% of the baseline sample, no file descriptor, thread, worker
process or shared-memory segment more at the end than at the baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_short_soak_finds_no_leak(tmp_path):
    out = tmp_path / "soak"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--duels", "200", "--steps", "10",
                             "--batch", "20", "--workers", "2", "--sample-every", "40", "--baseline", "40",
                             "--fresh-every", "100", "--out-dir", str(out)], capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    report = json.loads((out / "soak.json").read_text())
    assert result.returncode == 0 and report["ok"], result.stderr + "\n" + "\n".join(report["leaks"])
    assert [s["duels"] for s in report["samples"]] == [0, 40, 80, 120, 160, 200]
    assert all(s["children"] >= 2 and s["shm_segments"] == 1 for s in report["samples"][1:])  # a Duel was open
    assert report["rss_growth_percent"] < 5 and (out / "soak.png").read_bytes()[:4] == b"\x89PNG"
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--duels", "200",
                            "--out-dir", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr  # nothing saved is overwritten without it
