"""Run Python on an emulated CPU (qemu user mode) to test what depends on the CPU's kind.

onnxruntime picks its kernels by the CPU's vector extensions, so the same model gives
other last bits on AVX2 than on AVX-512, and its int8 kernels saturate without VNNI. CI
may land on either kind of machine; `qemu-x86_64 -cpu Haswell` (AVX2 and FMA, no AVX-512,
no VNNI) lets one machine check both: onnxruntime, numba and LLVM read the emulated CPU's
cpuid and choose the AVX2 paths, exactly as on such a machine (measured: the random-model
int8 error of 78% reported from a real AVX2-only machine was reproduced to the digit).
Emulation is 20-80x slower, so the emulated side runs small, self-contained scripts.

The slow ones (numba compiles the renderers again for the emulated CPU: 1-2 minutes each)
start in the background when the suite's collection ends, at low priority, and run beside
the rest of the suite on the machine's other core; their tests run last and collect the
results (`start_background`, `background_result`; tests/conftest.py starts them).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO

import pytest

QEMU = shutil.which("qemu-x86_64")
AVX2_CPU = "Haswell"  # AVX2 + FMA, no AVX-512, no VNNI
EMULATION_TIMEOUT = 900  # s: numba compiles the renderer again for the emulated CPU (about a minute)
BACKGROUND_NICENESS = 10  # the background runs give way to the tests in the foreground



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
    return _parse(cmd, proc.returncode, proc.stdout, proc.stderr)


def _parse(cmd: list[str], returncode: int, stdout: str, stderr: str) -> dict:
    if returncode != 0:
        noise = "TCG doesn't support requested feature"  # qemu's notes on CPU flags it cannot emulate
        err = "\n".join(line for line in stderr.splitlines() if noise not in line)
        raise AssertionError(f"{' '.join(cmd[:3])} ... exited {returncode}:\n{err[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


@dataclass
class _Run:
    """A background run: its command, process, start time and output files."""

    cmd: list[str]
    proc: subprocess.Popen
    started: float
    out: IO[str]
    err: IO[str]


_BACKGROUND: dict[str, _Run] = {}


def start_background(key: str, code: str, cpu: str) -> None:
    """Start `code` on the emulated `cpu` now, niced, its output to temporary files; `background_result(key)`
    waits for it. Once per key."""
    if key in _BACKGROUND:
        return
    cmd = [QEMU, "-cpu", cpu, sys.executable, "-c", code]
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env={**os.environ},
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            preexec_fn=lambda: os.nice(BACKGROUND_NICENESS))  # fmt: skip
    _BACKGROUND[key] = _Run(cmd, proc, time.monotonic(), out, err)


def background_result(key: str) -> dict:
    """The JSON object the background run `key` printed last (it must have been started)."""
    run = _BACKGROUND[key]
    try:
        run.proc.wait(timeout=max(1.0, EMULATION_TIMEOUT - (time.monotonic() - run.started)))
    except subprocess.TimeoutExpired:
        run.proc.kill()
        run.proc.wait()
        raise AssertionError(f"{' '.join(run.cmd[:3])} ... ({key}) did not end in {EMULATION_TIMEOUT} s") from None
    run.out.seek(0)
    run.err.seek(0)
    return _parse(run.cmd, run.proc.returncode, run.out.read(), run.err.read())


def stop_background() -> None:
    """Kill the background runs still going (the session ends: their tests were deselected or failed early)."""
    for run in _BACKGROUND.values():
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
        run.out.close()
        run.err.close()
    _BACKGROUND.clear()
