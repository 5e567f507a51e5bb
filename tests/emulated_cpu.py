"""Run Python on an emulated CPU (qemu user mode) to test what depends on the CPU's kind.

onnxruntime picks its kernels by the CPU's vector extensions, so the same model gives
other last bits on AVX2 than on AVX-512, and its int8 kernels saturate without VNNI. CI
may land on either kind of machine; `qemu-x86_64 -cpu Haswell` (AVX2 and FMA, no AVX-512,
no VNNI) lets one machine check both: onnxruntime, numba and LLVM read the emulated CPU's
cpuid and choose the AVX2 paths, exactly as on such a machine (measured: the random-model
int8 error of 78% reported from a real AVX2-only machine was reproduced to the digit).
Emulation is 20-80x slower, so the emulated side runs small, self-contained scripts.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys

import pytest

QEMU = shutil.which("qemu-x86_64")
AVX2_CPU = "Haswell"  # AVX2 + FMA, no AVX-512, no VNNI
EMULATION_TIMEOUT = 900  # s: numba compiles the renderer again for the emulated CPU (about a minute)



def _qemu_runs() -> bool:
    """qemu is there and can run a program on the emulated CPU here (a sandbox may forbid it)."""
    if QEMU is None or platform.machine() != "x86_64":
        return False
    try:
        probe = subprocess.run([QEMU, "-cpu", AVX2_CPU, sys.executable, "-c", "print(1)"], capture_output=True,
                               text=True, timeout=120)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "1"


AVAILABLE = _qemu_runs()
needs_qemu = pytest.mark.skipif(
    not AVAILABLE,
    reason="needs qemu-x86_64 able to run here, on an x86-64 machine (apt-get install qemu-user)",
)


def run_python(code: str, cpu: str | None = None, timeout: float = EMULATION_TIMEOUT) -> dict:
    """Run `code` with this interpreter, on the emulated `cpu` (None: natively); the code
    prints one JSON object as its last line, which is returned."""
    cmd = [sys.executable, "-c", code]
    if cpu is not None:
        cmd = [QEMU, "-cpu", cpu, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ},
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # fmt: skip
    if proc.returncode != 0:
        noise = "TCG doesn't support requested feature"  # qemu's notes on CPU flags it cannot emulate
        err = "\n".join(line for line in proc.stderr.splitlines() if noise not in line)
        raise AssertionError(f"{' '.join(cmd[:3])} ... exited {proc.returncode}:\n{err[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
