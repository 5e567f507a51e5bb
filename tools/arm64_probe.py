"""Helpers of tools/arm64_check.sh, run by the aarch64 Python (under emulation or natively) or by
the host's. Each subcommand prints one JSON object.

  needs-box2d-py WHEEL   whether WHEEL's requirements ask for box2d-py on this interpreter (pip's
                         own marker evaluation: pip._vendor.packaging; no other package needed)
  observations OUT       (host, the project's dev venv) the int8 check observations of the export,
                         export.variants.policy_observations((CHECK_SEED,), 64), saved to OUT (.npy),
                         and the z error of int8 against fp32 on them on this CPU (export.variants.compare)
  z-error WEIGHTS OBS    the z error of WEIGHTS/world_model.int8.onnx against world_model.onnx on OBS,
                         as export.variants.compare measures it, with onnxruntime and numpy only
"""

from __future__ import annotations

import json
import platform
import sys
import zipfile
from importlib.metadata import version

CHECK_STEPS = 64  # observations of the export's check track (export/onnx_export.py: requantise_int8)


def needs_box2d_py(wheel: str) -> dict:
    from pip._vendor.packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    reqs = [Requirement(line.split(":", 1)[1].strip()) for line in lines if line.startswith("Requires-Dist:")]
    wanted = [f"{r.name}{r.specifier}" for r in reqs
              if r.name.lower() == "box2d-py" and (r.marker is None or r.marker.evaluate())]  # fmt: skip
    return {"needs_box2d_py": bool(wanted), "requirement": wanted[0] if wanted else None}


def _z_error(fp32: str, int8: str, obs) -> dict:
    """export.variants.compare's error figures (without its latency), on one thread."""
    import numpy as np
    import onnxruntime as ort

    from engine.world_model.frames import model_input

    b = len(obs)
    zeros = np.zeros((b, 256), np.float32)
    feed = {"frame": model_input(obs), "prev_action": np.zeros((b, 3), np.float32), "h": zeros, "c": zeros}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    z_ref = ort.InferenceSession(fp32, opts, providers=["CPUExecutionProvider"]).run(["z"], feed)[0]
    z_var = ort.InferenceSession(int8, opts, providers=["CPUExecutionProvider"]).run(["z"], feed)[0]
    err = np.abs(z_ref - z_var)
    return {"z_mean_abs_err": float(err.mean()), "z_max_abs_err": float(err.max()),
            "z_err_over_spread": float(err.mean() / z_ref.std(axis=0).mean())}  # fmt: skip


# aarch64 AT_HWCAP / AT_HWCAP2 bits that decide onnxruntime's int8 kernels (Linux's asm/hwcap.h)
ARM_HWCAP = {"asimd": (16, 1), "asimddp": (16, 20), "sve": (16, 22), "i8mm": (26, 13)}


def cpu_features() -> str:
    """The CPU's vector extensions as programs see them: on aarch64 from AT_HWCAP (which qemu's
    -cpu sets), else engine.hardware's names."""
    if platform.machine() == "aarch64":
        import ctypes

        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype = ctypes.c_ulong
        have = [name for name, (at, bit) in ARM_HWCAP.items() if getauxval(at) >> bit & 1]
        return "aarch64 " + ", ".join(have)
    from engine.hardware import hardware_info

    info = hardware_info()
    return f"{info['vector_isa']}: {', '.join(info['vector_extensions'])}"


def z_error(weights: str, obs_path: str) -> dict:
    import numpy as np

    obs = np.load(obs_path)
    return {**_z_error(f"{weights}/world_model.onnx", f"{weights}/world_model.int8.onnx", obs),
            "observations": len(obs), "machine": platform.machine(), "cpu": cpu_features(),
            "onnxruntime": version("onnxruntime")}  # fmt: skip


def observations(out: str) -> dict:
    import numpy as np

    from engine.world_model.manifest import WEIGHTS_DIR
    from export.variants import CHECK_SEED, policy_observations

    obs = policy_observations((CHECK_SEED,), CHECK_STEPS)
    np.save(out, obs)
    here = _z_error(str(WEIGHTS_DIR / "world_model.onnx"), str(WEIGHTS_DIR / "world_model.int8.onnx"), obs)
    return {**here, "observations": len(obs), "seed": CHECK_SEED, "machine": platform.machine(), "cpu": cpu_features()}


def main(argv: list[str]) -> int:
    commands = {"needs-box2d-py": (needs_box2d_py, 1), "observations": (observations, 1), "z-error": (z_error, 2)}
    if not argv or argv[0] not in commands or len(argv) - 1 != commands[argv[0]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    func, _ = commands[argv[0]]
    print(json.dumps(func(*argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
