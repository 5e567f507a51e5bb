"""Whether the int8 world model is the CPU default here: by CPU kind, never by hope.

onnxruntime picks its int8 kernels by the CPU's vector extensions: VNNI (AVX-512 or AVX)
sums u8 x s8 products in 32 bits, plain AVX2 pairs them in 16 bits first (where full-range
weights saturate: `reduce_range` is why the shipped model does not), ARM uses NEON with or
without dot products. So a model that passed the driving gate (export.variants.int8_gate,
20 tracks, both controllers, within 2% of fp32) passed it on *that* kind of CPU only.

`int8_verdict` decides, for the CPU it runs on:

- the gate's own kind (the manifest records the gate's hardware): int8, as gated;
- another kind: the int8 graph's z error against fp32 is measured here on the export's
  check observations (weights/int8_check.npz: 64 frames of track 1005, the frames the
  manifest's own error figure was measured on). int8 when it is at most
  KIND_MARGIN x the gate's error: the same latent to within rounding, so the gate's
  driving result carries over. Otherwise fp32, and health says why. The measurement takes
  two small sessions and one batch (a fraction of a second) and is kept in the user's
  cache per model, kind and onnxruntime version, so it runs once per machine;
- no gate, a failed gate, or weights without the check file: fp32.
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.files import WriteError, write_atomic
from engine.hardware import vector_isa
from engine.world_model.frames import model_input

INT8_FILE = "world_model.int8.onnx"
CHECK_FILE = "int8_check.npz"  # (64, 96, 96, 3) uint8 frames under key "frames"
KIND_MARGIN = 1.25  # another CPU kind's z error may exceed the gated one by 25% (rounding differs, saturation does not)
CACHE_ENV = "VMC_DUEL_CACHE"  # where verdicts are kept (default $XDG_CACHE_HOME/vmc-duel, else ~/.cache/vmc-duel)


@dataclass(frozen=True)
class Int8Verdict:
    """use: whether `precision="auto"` takes int8 on this CPU; why: one line for health."""

    use: bool
    kind: str
    why: str
    z_err_over_spread: float | None = None  # measured here (None: not measured here)
    gate_z_err_over_spread: float | None = None


def cpu_kind() -> str:
    """The CPU kind int8 kernels depend on: architecture and vector ISA, e.g. "x86_64 AVX2 (no VNNI)"."""
    return f"{platform.machine()} {vector_isa()}"


def gate_kind(entry: dict) -> str | None:
    """The CPU kind the manifest's int8 gate ran on, or None when it did not record one."""
    hw = entry.get("gate", {}).get("hardware") or {}
    return f"{hw['arch']} {hw['vector_isa']}" if hw.get("arch") and hw.get("vector_isa") else None


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vmc-duel"


def z_error(weights_dir: Path, frames: np.ndarray) -> float:
    """Mean |z_int8 - z_fp32| over `frames` (N, 96, 96, 3) uint8, as a share of z's spread
    (export.variants.compare's figure), on this CPU, one thread."""
    from engine.world_model.runtime import make_session

    n = len(frames)
    zeros = np.zeros((n, 256), np.float32)  # (N, H) a fresh LSTM state, as export measured it
    feed = {"frame": model_input(frames), "prev_action": np.zeros((n, 3), np.float32), "h": zeros, "c": zeros}
    z = [make_session(Path(weights_dir) / name, "cpu", 1).run(["z"], feed)[0]  # (N, 32)
         for name in ("world_model.onnx", INT8_FILE)]  # fmt: skip
    return float(np.abs(z[1] - z[0]).mean() / z[0].std(axis=0).mean())


def _cache_file(entry: dict, kind: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", kind).strip("-")
    return cache_dir() / "int8" / f"{entry['sha256'][:16]}-{slug}-ort{ort.__version__}.json"


def int8_verdict(manifest: dict, weights_dir: Path, kind: str | None = None) -> Int8Verdict:
    """Whether int8 is the CPU default for `manifest`'s weights on this CPU (kind: this CPU's
    unless given, for reports about another). See the module docstring for the rules."""
    kind = kind or cpu_kind()
    entry = manifest["files"].get(INT8_FILE)
    if entry is None:
        return Int8Verdict(False, kind, "no int8 variant in the manifest")
    gate = entry.get("gate", {})
    if not gate.get("passed"):
        return Int8Verdict(False, kind, "the int8 variant has not passed its driving gate")
    gated = gate_kind(entry)
    gate_err = entry.get("z_err_over_spread")
    if gated == kind:
        return Int8Verdict(True, kind, f"passed its driving gate on this CPU kind ({kind})",
                           gate_z_err_over_spread=gate_err)  # fmt: skip
    check = Path(weights_dir) / CHECK_FILE
    if gate_err is None or not check.exists() or CHECK_FILE not in manifest["files"]:
        return Int8Verdict(False, kind, f"gated on {gated}, not on this CPU kind ({kind}), and the weights carry no "
                           f"{CHECK_FILE} to check it here")  # fmt: skip
    cached = _cache_file(entry, kind)
    try:
        err = float(json.loads(cached.read_text())["z_err_over_spread"])
    except (OSError, ValueError, KeyError, TypeError):
        with np.load(check, allow_pickle=False) as data:
            err = z_error(weights_dir, data["frames"])
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cached, json.dumps({"kind": kind, "z_err_over_spread": err}) + "\n")
        except (OSError, WriteError):
            pass  # no writable cache: measured again next time, nothing lost
    use = err <= KIND_MARGIN * gate_err
    how = "within" if use else "over"
    why = (f"gated on {gated}; on this CPU kind ({kind}) its z error is {100 * err:.2f}% of z's spread, {how} "
           f"{KIND_MARGIN:g}x the gated {100 * gate_err:.2f}%")  # fmt: skip
    return Int8Verdict(use, kind, why, err, gate_err)

