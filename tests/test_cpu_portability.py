"""What holds on every CPU, and what is reported so that figures are read with their hardware.

The determinism contract (docs/determinism.md): on one machine with the same library
versions a race is bit-identical; across CPU instruction sets the model's floats differ in
the last bits and model-driven races may diverge; the simulator, the renderers and the
scripted autopilot do not depend on the CPU. The emulated-CPU tests check the latter on an
AVX2-only CPU (tests/emulated_cpu.py) and that int8 stays within its bound there.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
from emulated_cpu import AVX2_CPU, background_result, needs_qemu, run_python

from engine.hardware import cpu_features, hardware_info, vector_isa
from engine.health import check, format_report
from export.variants import MAX_Z_ERR_OVER_SPREAD

# /proc/cpuinfo flag -> engine.hardware's name, for the extensions that change onnxruntime's kernels
CPUINFO_FLAGS = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512bw": "AVX-512BW",
                 "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI"}  # fmt: skip


def test_hardware_info_names_the_vector_extensions_and_onnxruntime():
    info = hardware_info()
    assert info["onnxruntime"] == onnxruntime.__version__
    assert info["arch"] == platform.machine() and info["cpu"]
    feats = set(info["vector_extensions"])
    assert info["vector_isa"] == vector_isa() and list(cpu_features()) == info["vector_extensions"]
    if "AVX-512" in feats:
        assert info["vector_isa"].startswith("AVX-512")
    elif "AVX2" in feats:
        assert info["vector_isa"].startswith("AVX2")
    if info["vector_isa"].endswith("(no VNNI)"):
        assert not feats & {"AVX-512 VNNI", "AVX-VNNI"}
    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() == "x86_64" and cpuinfo.exists():
        flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
        # What LLVM reads from cpuid is what the kernel lists (an emulator may hide some, never add).
        assert {name for flag, name in CPUINFO_FLAGS.items() if flag in flags} >= feats & set(CPUINFO_FLAGS.values())
        assert ("AVX2" in feats) == ("avx2" in flags) or "avx2" in flags


def test_health_names_the_hardware():
    report = check()
    assert report["hardware"] == hardware_info()
    assert f"vector ISA {vector_isa()}" in format_report(report)


@needs_qemu
def test_the_emulated_cpu_is_an_avx2_cpu_without_vnni():
    info = run_python("import json; from engine.hardware import hardware_info; print(json.dumps(hardware_info()))",
                      cpu=AVX2_CPU)  # fmt: skip
    assert info["vector_isa"] == "AVX2 (no VNNI)" and "AVX-512" not in info["vector_extensions"]


AUTOPILOT_RACE = """
import hashlib, json
from engine.race.duel import Duel
with Duel(renderer="fast", device="cpu", driver="autopilot") as duel:
    duel.reset(__SEED__)
    digest = hashlib.sha256()
    for _ in range(__STEPS__):
        duel.step()
        digest.update(duel.frames.tobytes())
    print(json.dumps({"frames": digest.hexdigest(), "telemetry": [t.as_dict() for t in duel.telemetry]}))
"""
AUTOPILOT_CODE = AUTOPILOT_RACE.replace("__SEED__", "11").replace("__STEPS__", "150")


@needs_qemu
def test_an_autopilot_race_is_the_same_race_on_an_avx2_cpu():
    """Box2D, the numba renderer and the autopilot give the same frames and telemetry on any
    CPU: what the screen snapshots rely on."""
    native = run_python(AUTOPILOT_CODE)
    emulated = background_result("test_an_autopilot_race_is_the_same_race_on_an_avx2_cpu")
    assert native["telemetry"][0]["step"] == 150
    assert emulated == native


EXACT_FRAMES = """
import hashlib, json, os
os.environ["VMC_DUEL_EXACT_KERNEL"] = "inline"  # the kernel from the first frame, not the pygame tier
import numpy as np
from engine import make_env
envs = [make_env("exact"), make_env("stock")]
frames = [[env.reset(seed=__SEED__)[0]] for env in envs]
for t in range(__STEPS__):
    action = np.array([0.6 * np.sin(t / 4.0), 1.0, 0.0])
    for env, seen in zip(envs, frames):
        seen.append(env.step(action)[0])
exact, stock = (np.stack(f) for f in frames)
print(json.dumps({"exact": hashlib.sha256(exact.tobytes()).hexdigest(), "equal": bool(np.array_equal(exact, stock))}))
"""
EXACT_CODE = EXACT_FRAMES.replace("__SEED__", "3").replace("__STEPS__", "8")


@needs_qemu
def test_the_exact_renderer_gives_stocks_bytes_on_an_avx2_cpu():
    """The exact renderer's kernel (integer raster and smoothscale, compiled by numba for the
    CPU it runs on) gives gymnasium's own frames on an AVX2-only CPU too."""
    native = run_python(EXACT_CODE)
    emulated = background_result("test_the_exact_renderer_gives_stocks_bytes_on_an_avx2_cpu")
    assert native["equal"] and emulated["equal"]
    assert emulated["exact"] == native["exact"]


Z_ERROR = """
import json, numpy as np, onnxruntime as ort
opts = ort.SessionOptions(); opts.intra_op_num_threads = 1
obs = np.load("__OBS__", allow_pickle=False)
zeros = np.zeros((len(obs), 256), np.float32)
feed = {"frame": obs, "prev_action": np.zeros((len(obs), 3), np.float32), "h": zeros, "c": zeros}
cpu = ["CPUExecutionProvider"]
z = {k: ort.InferenceSession(f"__DIR__/world_model{k}.onnx", opts, providers=cpu).run(["z"], feed)[0]
     for k in ("", ".int8")}
print(json.dumps({"z_err_over_spread": float(np.abs(z[".int8"] - z[""]).mean() / z[""].std(axis=0).mean())}))
"""


def int8_error_on(cpu: str | None, weights: Path, obs: np.ndarray, tmp_path: Path) -> float:
    """int8 vs fp32 z error of `weights`' world model on `obs`, as a share of z's spread."""
    from engine.world_model.frames import model_input

    np.save(tmp_path / "obs.npy", model_input(obs))  # the graphs' input: frames, made here
    code = Z_ERROR.replace("__OBS__", str(tmp_path / "obs.npy")).replace("__DIR__", str(weights.resolve()))
    return run_python(code, cpu=cpu)["z_err_over_spread"]


@needs_qemu
def test_the_shipped_int8_model_is_within_its_bound_on_an_avx2_cpu(tmp_path):
    from test_runtime import observations

    obs = observations(2, 16).reshape(-1, 96, 96, 3)
    native = int8_error_on(None, Path("weights"), obs, tmp_path)
    emulated = int8_error_on(AVX2_CPU, Path("weights"), obs, tmp_path)
    assert native <= MAX_Z_ERR_OVER_SPREAD and emulated <= MAX_Z_ERR_OVER_SPREAD
    # Without saturation the two kernels differ only by rounding: a few percent of the error itself.
    assert abs(native - emulated) <= 0.25 * native, (native, emulated)


INT8_VERDICT = """
import json, os
os.environ["VMC_DUEL_CACHE"] = "__CACHE__"
from engine.world_model.int8_kind import int8_verdict
from engine.world_model.manifest import WEIGHTS_DIR, load_manifest
from engine.world_model.runtime import WorldModel
v = int8_verdict(load_manifest(WEIGHTS_DIR), WEIGHTS_DIR)
print(json.dumps({"use": v.use, "kind": v.kind, "why": v.why, "z_err_over_spread": v.z_err_over_spread,
                  "auto": WorldModel(1, device="cpu").precision}))
"""
INT8_CACHE = Path(tempfile.mkdtemp(prefix="vmc-duel-int8-avx2-"))  # the emulated run's int8 verdict cache


@needs_qemu
def test_int8_is_the_default_on_an_avx2_cpu_only_as_measured_there():
    """The shipped int8 model passed its driving gate on an AVX-512 VNNI CPU. On an AVX2-only CPU
    (no VNNI) the runtime measures its z error there before it makes int8 the default."""
    from engine.world_model.int8_kind import gate_kind
    from engine.world_model.manifest import load_manifest

    entry = load_manifest(Path("weights"), verify=False)["files"]["world_model.int8.onnx"]
    assert gate_kind(entry) != "x86_64 AVX2 (no VNNI)", "the gate ran on an AVX2 CPU: this test checks nothing"
    got = background_result("test_int8_is_the_default_on_an_avx2_cpu_only_as_measured_there")
    assert got["kind"] == "x86_64 AVX2 (no VNNI)" and got["z_err_over_spread"] is not None
    assert got["use"] and got["auto"] == "int8", got["why"]
    assert abs(got["z_err_over_spread"] - entry["z_err_over_spread"]) <= 0.25 * entry["z_err_over_spread"], got
    assert len(list((INT8_CACHE / "int8").iterdir())) == 1  # measured once, kept for the next start
    shutil.rmtree(INT8_CACHE)


# The slow emulated runs, started in the background when collection ends (tests/conftest.py).
EMULATED_BACKGROUND = {
    "test_an_autopilot_race_is_the_same_race_on_an_avx2_cpu": (AUTOPILOT_CODE, AVX2_CPU),
    "test_the_exact_renderer_gives_stocks_bytes_on_an_avx2_cpu": (EXACT_CODE, AVX2_CPU),
    "test_int8_is_the_default_on_an_avx2_cpu_only_as_measured_there":
        (INT8_VERDICT.replace("__CACHE__", str(INT8_CACHE)), AVX2_CPU),
}
