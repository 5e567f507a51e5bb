"""The onnxruntime side of the engine on the shipped weights (no torch involved)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from engine import make_env
from engine.world_model.manifest import WEIGHTS_DIR, WeightsError
from engine.world_model.runtime import WorldModel, make_session, providers_for

pytestmark = pytest.mark.skipif(not (WEIGHTS_DIR / "manifest.json").exists(), reason="no weights shipped")


def observations(n_players: int, steps: int) -> np.ndarray:
    """(steps, n_players, 96, 96, 3): players driving the same track differently."""
    envs = [make_env("fast") for _ in range(n_players)]
    frames = np.zeros((steps, n_players, 96, 96, 3), np.uint8)
    for p, env in enumerate(envs):
        frames[0, p], _ = env.reset(seed=3)
        for t in range(1, steps):
            frames[t, p], *_ = env.step(np.array([0.3 * (p - 0.5), 1.0, 0.0]))
    return frames


def test_batched_step_equals_one_player_at_a_time():
    frames = observations(2, 12)
    batch = WorldModel(2, device="cpu")
    singles = [WorldModel(1, device="cpu") for _ in range(2)]
    for t in range(len(frames)):
        out = batch.step(frames[t])
        for p, wm in enumerate(singles):
            one = wm.step(frames[t, p : p + 1])
            # Bit-identical where measured (AVX-512 and emulated AVX2); 1e-5 (about 100 float32 ulps of
            # z ~ 1) leaves room for kernels that block a batch differently from a single row.
            assert np.allclose(out["z"][p], one["z"][0], atol=1e-5)
            assert np.allclose(batch.h[p], wm.h[0], atol=1e-5)
        batch.set_actions(np.array([[0.1, 0.5, 0.0], [-0.2, 1.0, 0.0]]))
        for p, wm in enumerate(singles):
            wm.set_actions(batch.prev_action[p : p + 1])
    assert out["z"].shape == (2, 32) and out["mdn_mu"].shape == (2, 32, 5)
    assert ((out["off_track_prob"] >= 0) & (out["off_track_prob"] <= 1)).all()


def test_io_binding_and_subset_steps_give_the_same_numbers():
    frames = observations(3, 8)
    plain, bound = WorldModel(3, device="cpu", io_binding=False), WorldModel(3, device="cpu", io_binding=True)
    assert bound.io_binding and not plain.io_binding
    for t in range(len(frames)):
        idx = np.array([0, 2]) if t % 3 == 2 else None  # player 1 sits some steps out
        obs = frames[t] if idx is None else frames[t, idx]
        a, b = plain.step(obs, idx), bound.step(obs, idx)
        for name in WorldModel.OUTPUTS:
            assert np.array_equal(a[name], b[name]), name
        actions = np.full((3 if idx is None else 2, 3), 0.1 * t, np.float32)
        plain.set_actions(actions, idx)
        bound.set_actions(actions, idx)
    assert np.array_equal(plain.h, bound.h) and np.array_equal(plain.c, bound.c)


def test_state_is_kept_and_reset_per_player():
    frames = observations(2, 3)
    wm = WorldModel(2, device="cpu")
    wm.step(frames[0])
    wm.step(frames[1])
    assert np.abs(wm.h).sum() > 0
    wm.reset([1])
    assert np.abs(wm.h[1]).sum() == 0 and np.abs(wm.h[0]).sum() > 0
    with pytest.raises(ValueError, match=r"obs must be \(2, 96, 96, 3\) uint8"):
        wm.step(frames[0, :1])


def test_precision_variants_agree_with_fp32():
    frames = observations(1, 4)
    # Mean |z - z_fp32|: shipped int8 measured 0.0153 with AVX-512 VNNI, 0.0155 on an emulated AVX2
    # CPU (tests/test_cpu_portability.py), fp16 0.0001; the bounds are 6x and 100x that, far below
    # the 0.2-0.8 of a broken variant (saturated int8 kernels, a wrong scale).
    for precision, tolerance in (("int8", 0.1), ("fp16", 0.01)):
        ref = WorldModel(1, device="cpu", precision="fp32")
        wm = WorldModel(1, device="cpu", precision=precision)
        for t in range(len(frames)):
            z_ref = ref.step(frames[t])["z"]
            z = wm.step(frames[t])["z"]
            assert np.abs(z - z_ref).mean() < tolerance, precision
        assert wm.precision == precision



def test_auto_precision_on_cpu_is_int8_only_where_it_passed_on_this_cpu_kind(tmp_path, monkeypatch):
    import json

    from engine.hardware import hardware_info
    from engine.world_model.int8_kind import CHECK_FILE, KIND_MARGIN, cpu_kind, int8_verdict

    monkeypatch.setenv("VMC_DUEL_CACHE", str(tmp_path / "cache"))  # the verdicts measured here go there
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, copy, ignore=shutil.ignore_patterns("cma", "init", "*.png", "*.csv"))
    manifest = json.loads((copy / "manifest.json").read_text())
    int8 = manifest["files"]["world_model.int8.onnx"]
    shipped_err = int8["z_err_over_spread"]

    def auto(**gate) -> str:
        int8["gate"] = gate
        (copy / "manifest.json").write_text(json.dumps(manifest))
        assert WorldModel(1, device="cpu", precision="fp32", weights_dir=copy).precision == "fp32"
        return WorldModel(1, device="cpu", weights_dir=copy).precision

    here = {k: hardware_info()[k] for k in ("arch", "vector_isa")}
    other = {"arch": "x86_64", "vector_isa": "some other ISA"}
    assert auto(passed=False, hardware=here) == "fp32"
    # Gated on this CPU's kind: int8, and nothing is measured.
    assert auto(passed=True, hardware=here) == "int8"
    assert int8_verdict(manifest, copy).why == f"passed its driving gate on this CPU kind ({cpu_kind()})"
    assert not (tmp_path / "cache").exists()
    # Gated on another kind: measured here, on the shipped check frames, and kept.
    assert auto(passed=True, hardware=other) == "int8"
    verdict = int8_verdict(manifest, copy)
    assert verdict.use and verdict.kind == cpu_kind() and "within" in verdict.why
    assert verdict.z_err_over_spread <= KIND_MARGIN * shipped_err
    (kept,) = (tmp_path / "cache" / "int8").iterdir()
    assert json.loads(kept.read_text())["z_err_over_spread"] == verdict.z_err_over_spread
    # The kept figure is what decides next time (a saturating CPU would have measured this much).
    kept.write_text(json.dumps({"z_err_over_spread": 0.78}))
    assert auto(passed=True, hardware=other) == "fp32"
    assert "78.00% of z's spread, over" in int8_verdict(manifest, copy).why
    # Weights without the check frames cannot be checked on another kind: fp32, saying why.
    kept.unlink()
    (copy / CHECK_FILE).unlink()
    del manifest["files"][CHECK_FILE]
    assert auto(passed=True, hardware=other) == "fp32"
    assert CHECK_FILE in int8_verdict(manifest, copy).why
    del int8["gate"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert WorldModel(1, device="cpu", weights_dir=copy).precision == "fp32"


def test_shipped_int8_keeps_the_recurrent_part_in_float_and_tracks_fp32_over_a_drive():
    """Only the encoder's convolutions are int8: the LSTM and the heads read float weights, so
    h stays with fp32's over a closed-loop drive (with them in int8 it drifted 0.14)."""
    import onnx

    graph = onnx.load(str(WEIGHTS_DIR / "world_model.int8.onnx")).graph
    dequantised = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            assert not dequantised & set(node.input), f"{node.name} reads int8 values"
    assert sum(n.op_type == "Conv" and bool(dequantised & set(n.input)) for n in graph.node) == 4
    frames = observations(2, 100)
    ref, wm = WorldModel(2, device="cpu", precision="fp32"), WorldModel(2, device="cpu", precision="int8")
    drift = []
    for t in range(len(frames)):
        ref.step(frames[t])
        wm.step(frames[t])
        drift.append(np.abs(wm.h - ref.h).mean())
        actions = np.array([[0.3, 1.0, 0.0], [-0.3, 1.0, 0.0]], np.float32)
        ref.set_actions(actions)
        wm.set_actions(actions)
    # measured 0.004 (mean over the drive) on AVX-512 VNNI; the integer sums of 7-bit weights
    # are the same without VNNI, so the bound holds on AVX2 as well
    assert np.mean(drift) < 0.02, np.mean(drift)


def test_devices_and_bad_files(tmp_path):
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="device='tpu'"):
        providers_for("tpu")
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        with pytest.raises(ValueError, match="onnxruntime-gpu"):
            providers_for("cuda")
    with pytest.raises(ValueError, match="precision='fp8'"):
        WorldModel(1, precision="fp8")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="broken.onnx: onnxruntime cannot load it"):
        make_session(broken)
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, copy)
    (copy / "world_model.onnx").write_bytes((copy / "world_model.onnx").read_bytes()[:-1] + b"x")
    with pytest.raises(WeightsError, match="world_model.onnx: sha256 does not match"):
        WorldModel(1, weights_dir=copy)


def test_shipped_controllers_are_the_trained_ones():
    from engine.policy.controller import load_controller
    from engine.world_model.manifest import load_manifest

    manifest = load_manifest(WEIGHTS_DIR)
    sizes = manifest["sizes"]
    for name in ("controllerA.npz", "controllerB.npz"):
        meta = manifest["files"][name]
        assert meta["placeholder"] is False and meta["method"].startswith("CMA-ES")
        assert meta["training"]["generations_run"] > 0 and meta["training"]["eval_mean"] > 0
        W, b, file_meta = load_controller(WEIGHTS_DIR / name, sizes["z"], sizes["hidden"])
        assert W.shape == (3, sizes["z"] + sizes["hidden"]) and file_meta["placeholder"] is False
        Wr, _, rain_meta = load_controller(WEIGHTS_DIR / name, sizes["z"], sizes["hidden"], weather="rain")
        if "rain_training" in meta:  # a wet-track set, trained or chosen in rain, is what drives in rain
            rain = meta["rain_training"]
            assert rain["generations_run"] > 0 and (rain["rain_fraction"] > 0 or rain["eval_weather"] == "rain")
            assert not np.array_equal(Wr, W) and rain_meta["name"] == meta["rain_training"]["run"].split("/")[-1]
        else:
            assert np.array_equal(Wr, W)


def test_no_silent_fallback_to_the_cpu():
    """A session that asked for CUDA but runs on the CPU (what onnxruntime does when its CUDA
    libraries do not load) fails for device=cuda and warns for device=auto, naming both."""
    from engine.health import check
    from engine.world_model.runtime import check_provider

    path = WEIGHTS_DIR / "dream.onnx"
    sess = make_session(path, device="cpu")
    asked = [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}), "CPUExecutionProvider"]
    with pytest.raises(WeightsError, match="asked for CUDAExecutionProvider, onnxruntime runs CPUExecutionProvider"):
        check_provider(sess, asked, "cuda", path)
    with pytest.warns(RuntimeWarning, match="preload_dlls"):
        check_provider(sess, asked, "auto", path)
    check_provider(sess, ["CPUExecutionProvider"], "cpu", path)  # what was asked runs: silent
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    assert check()["session_provider"] == ("CUDAExecutionProvider" if cuda else "CPUExecutionProvider")
