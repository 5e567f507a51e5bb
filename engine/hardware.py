"""What hardware a figure came from: the CPU, its vector extensions, onnxruntime's version.

onnxruntime picks its kernels by the CPU's vector extensions (AVX2, AVX-512, VNNI, NEON):
the same model gives floats that differ in the last bits between them, and int8 kernels
without VNNI behave differently again. A race, benchmark or tournament figure is only
read correctly next to these facts, so `vmc-duel health` and every JSON the project
writes carry `hardware_info()`.

The extensions come from LLVM's view of the host (llvmlite, which numba brings): it asks
the CPU itself (cpuid on x86, the kernel's hwcaps on ARM), so it also tells the truth
under an emulator such as `qemu-x86_64 -cpu Haswell`, where /proc/cpuinfo still shows
the real host.
"""

from __future__ import annotations

import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# LLVM feature name -> the name people know, in the order they are printed. x86 first, then ARM.
VECTOR_EXTENSIONS = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx512bw": "AVX-512BW",
    "avx512vnni": "AVX-512 VNNI",
    "avxvnni": "AVX-VNNI",
    "avx512bf16": "AVX-512 BF16",
    "amx-int8": "AMX-INT8",
    "neon": "NEON",
    "dotprod": "DOTPROD",
    "i8mm": "I8MM",
    "sve": "SVE",
}
INT8_DOT_PRODUCT = ("AVX-512 VNNI", "AVX-VNNI", "AMX-INT8", "DOTPROD", "I8MM")  # int8 sums without saturation


@cache
def cpu_features() -> tuple[str, ...]:
    """The CPU's vector extensions that change onnxruntime's kernels, e.g. ("AVX2", "FMA",
    "AVX-512", "AVX-512BW", "AVX-512 VNNI"); () when they cannot be read."""
    try:
        from llvmlite import binding as llvm

        host = llvm.get_host_cpu_features()
        have = {name for name, on in host.items() if on}
    except Exception:  # an unknown platform: report nothing rather than fail a diagnostic
        return ()
    if platform.machine().lower() in ("aarch64", "arm64") and "neon" not in have:
        have.add("neon")  # NEON (ASIMD) is part of every AArch64 CPU; LLVM may not list it
    return tuple(label for name, label in VECTOR_EXTENSIONS.items() if name in have)


def vector_isa() -> str:
    """The widest float SIMD onnxruntime's CPU kernels use here, and whether int8 dot
    products saturate: e.g. "AVX-512 + VNNI", "AVX2 (no VNNI)", "NEON + DOTPROD"."""
    feats = cpu_features()
    wide = next((f for f in ("AVX-512", "AVX2", "SVE", "NEON") if f in feats), None)
    if wide is None:
        return "unknown" if not feats else "SSE"
    dot = [f for f in INT8_DOT_PRODUCT if f in feats]
    if wide in ("AVX-512", "AVX2"):
        return f"{wide} + VNNI" if any("VNNI" in f or f == "AMX-INT8" for f in dot) else f"{wide} (no VNNI)"
    return f"{wide} + {dot[0]}" if dot else wide


@cache
def cpu_model() -> str:
    """The CPU's marketing name ("AMD EPYC 9654 ..."), or the architecture when unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def hardware_info() -> dict[str, Any]:
    """{cpu, arch, vector_isa, vector_extensions, onnxruntime}: the facts a figure depends on."""
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "vector_isa": vector_isa(),
        "vector_extensions": list(cpu_features()),
        "onnxruntime": package_version("onnxruntime") or package_version("onnxruntime-gpu"),
    }
