"""The int8 recipe and its driving gate, end to end on a copy of the shipped weights (a
short gate: one evaluation track on the fast renderer; the shipped gate races 20 on exact)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("onnx")

from engine.world_model.manifest import WEIGHTS_DIR, load_manifest  # noqa: E402
from engine.world_model.runtime import WorldModel  # noqa: E402
from export.onnx_export import requantise_int8  # noqa: E402
from export.variants import GATE_TOLERANCE, INT8_OPS  # noqa: E402


def test_requantise_checks_races_and_records_the_gate(tmp_path):
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, copy, ignore=shutil.ignore_patterns("cma", "*.png", "*.csv"))
    meta = requantise_int8(copy, gate_tracks=1, calibration_steps=40, gate_renderer="fast")
    manifest = load_manifest(copy)  # the new file's sha256 is recorded
    assert manifest["files"]["world_model.int8.onnx"] == meta
    assert meta["quantised_ops"] == INT8_OPS and meta["reduce_range"] is True
    assert meta["calibration"]["observations"] == 4 * 2 * 10  # 4 tracks x 2 cars x every 4th of 40 steps
    gate = meta["gate"]
    assert gate["tracks"] == "900000-900000" and gate["tolerance"] == GATE_TOLERANCE
    assert set(gate["reward_mean"]) == {"fp32", "int8"} and 0 <= gate["action_mean_abs_err"] < 0.2
    gaps_ok = all(abs(g) <= GATE_TOLERANCE for g in gate["relative_gap"].values())
    assert gate["passed"] == gaps_ok
    expected = "int8" if gate["passed"] else "fp32"
    assert WorldModel(1, device="cpu", weights_dir=copy).precision == expected
    manifest["files"]["world_model.int8.onnx"]["gate"]["passed"] = not gate["passed"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert WorldModel(1, device="cpu", weights_dir=copy).precision != expected
