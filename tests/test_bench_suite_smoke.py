"""A --quick run of the whole benchmark suite (`vmc-duel bench`): it works end to end and
writes its three result files; saved results are never overwritten without --force.
No timing is asserted: a quick run measures nothing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "benchmarks" / "run_all.py"
SUITE_TIMEOUT = 240  # s: a safety net; the quick run takes seconds


def run_all(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUN_ALL), "--quick", *args], capture_output=True, text=True,
                          timeout=SUITE_TIMEOUT, cwd=ROOT)  # fmt: skip


def test_bench_suite_quick_writes_json_markdown_png_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "results"
    result = run_all("--json", "--out-dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # --json: stdout is the summary alone
    assert "World model" in result.stderr  # the tables went to stderr

    paths = {ext: Path(p) for ext, p in summary["files"].items()}
    assert set(paths) >= {"json", "md"}
    for p in paths.values():
        assert p.parent == out and p.name.startswith("bench_cpu_") and p.exists()
    assert json.loads(paths["json"].read_text()) == summary

    assert summary["device"] == "cpu" and summary["quick"] is True
    machine = summary["machine"]
    assert {"cpu", "cores", "gpus", "onnxruntime_providers", "versions", "date"} <= set(machine)
    assert {"python", "numpy", "onnxruntime", "numba", "gymnasium"} <= set(machine["versions"])

    model = summary["model"]
    assert model["flop_per_player_step"]["total"] > model["flop_per_player_step"]["encoder_conv"] > 29e6
    assert model["rows"] and not model["skipped"]
    assert {(r["precision"], r["io_binding"]) for r in model["rows"]} == {
        (p, b) for p in ("fp32", "int8") for b in (False, True)
    }
    for row in model["rows"]:
        assert {"threads", "batch", "player_steps_per_s", "latency_ms", "gflops_per_core", "peak_fraction"} <= set(row)
        assert row["player_steps_per_s"]["min"] <= row["player_steps_per_s"]["median"] <= row[
            "player_steps_per_s"]["max"]  # fmt: skip
    assert model["best_fp32"]["precision"] == "fp32"

    duel = summary["duel"]
    assert {"engine_exact", "engine_fast", "engine_exact_2lanes", "engine_fast_2lanes"} <= set(duel["duel_steps_per_s"])
    if importlib.util.find_spec("torch") is not None:
        assert duel["baseline_skipped"] is None and "baseline" in duel["duel_steps_per_s"]
        assert {"exact", "fast", "exact_2lanes", "fast_2lanes"} <= set(duel["speedup_vs_baseline"])
    else:
        assert "torch" in duel["baseline_skipped"]

    tour = summary["tournament"]
    assert {r["workers"] for r in tour["rows"]} >= {0, 1}
    assert all(r["player_steps_per_s"]["median"] > 0 for r in tour["rows"])

    md = paths["md"].read_text()
    for heading in ("# vmc-duel benchmarks", "## World-model step", "## Duel loop", "## Tournament", "FLOP per"):
        assert heading in md
    if importlib.util.find_spec("matplotlib") is not None:
        assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Again without --force: refused, exit status 2, the files untouched.
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths.values()}
    again = run_all("--out-dir", str(out))
    assert again.returncode == 2 and "pass --force" in again.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths.values()} == before
    assert sorted(out.iterdir()) == sorted(paths.values())  # no temporary files left behind
