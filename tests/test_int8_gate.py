"""The int8 recipe and its driving gate, end to end on a copy of the shipped weights (a
short gate: one evaluation track on the fast renderer; the shipped gate races 20 on exact)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnx")

from engine.world_model.manifest import WEIGHTS_DIR, load_manifest  # noqa: E402
from engine.world_model.runtime import WorldModel  # noqa: E402
from export.onnx_export import rebuild_world_model, requantise_int8  # noqa: E402
from export.variants import GATE_TOLERANCE, INT8_OPS  # noqa: E402


def test_requantise_checks_races_and_records_the_gate(tmp_path):
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, copy, ignore=shutil.ignore_patterns("cma", "*.png", "*.csv"))
    meta = requantise_int8(copy, gate_tracks=1, calibration_steps=40, gate_renderer="fast")
    manifest = load_manifest(copy)  # the new file's sha256 is recorded
    assert manifest["files"]["world_model.int8.onnx"] == meta
    assert meta["quantised_ops"] == INT8_OPS and meta["reduce_range"] is True
    assert manifest["files"]["int8_check.npz"]["frames"] == 64  # what another CPU kind is checked on
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


def test_rebuild_replaces_the_three_world_model_graphs_and_keeps_the_rest(tmp_path):
    """`vmc-duel export --world-model-only`: the step's graphs again from the directory's own
    vae.pth and mdnrnn.pth (fp32 checked against torch, fp16 against fp32, int8 re-quantised
    and gated); every other file and manifest entry as it was."""
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, copy, ignore=shutil.ignore_patterns("cma", "*.png", "*.csv"))
    before = json.loads((copy / "manifest.json").read_text())
    with pytest.raises(ValueError, match="pass --force"):
        rebuild_world_model(copy)
    (copy / "world_model.onnx").write_bytes(b"not a graph")  # what a rebuild must not read
    rebuild_world_model(copy, force=True, gate_tracks=1, calibration_steps=40, gate_renderer="fast")
    after = load_manifest(copy)  # every sha256 checks out
    rebuilt = {"world_model.onnx", "world_model.fp16.onnx", "world_model.int8.onnx"}
    assert {k: v for k, v in after["files"].items() if k not in rebuilt} == {
        k: v for k, v in before["files"].items() if k not in rebuilt}
    for name in rebuilt:
        meta = after["files"][name]
        assert [i["name"] for i in meta["inputs"]] == ["frame", "prev_action", "h", "c"]
    assert after["files"]["world_model.onnx"]["parity_max_abs_diff"] < 1e-3
    assert after["files"]["world_model.fp16.onnx"]["z_err_over_spread"] < 0.01
    assert after["risk"] == before["risk"] and after["sizes"] == before["sizes"]
    assert WorldModel(2, device="cpu", precision="fp32", weights_dir=copy).step(
        np.zeros((2, 96, 96, 3), np.uint8))["z"].shape == (2, 32)
