"""The ARM64 check, tools/arm64_check.sh: the project's wheel installed with pip into an aarch64
Python (under qemu-user on an x86-64 machine, natively on an aarch64 one) resolves to the same
gymnasium as on x86-64, `vmc-duel health` is healthy there and a 50-step race runs.

It takes minutes (about 20 under emulation with an empty cache, tools/README.md), so it runs only
when asked: VMC_ARM64_CHECK=1 (.ci/run asks, best effort). It skips where this machine cannot run
it (the script's exit 77: no qemu-user, no arm64 packages, no compiler), with the script's reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "arm64_check.sh"
SKIPPED = 77  # the script's "cannot check ARM64 on this machine"
TIMEOUT = 3600  # s: the script's emulated commands have their own limits (VMC_ARM64_TIMEOUT)

pytestmark = pytest.mark.skipif(
    os.environ.get("VMC_ARM64_CHECK") != "1",
    reason="the ARM64 check takes minutes under emulation: VMC_ARM64_CHECK=1 runs it (tools/README.md)",
)


def test_the_wheel_installs_and_races_on_aarch64():
    env = {**os.environ}
    env.setdefault("VMC_ARM64_HOST_PYTHON", sys.executable)  # the dev install: builds the wheel
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=TIMEOUT)
    if proc.returncode == SKIPPED:
        pytest.skip(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "arm64_check.sh skipped")
    assert proc.returncode == 0, (
        f"tools/arm64_check.sh exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    summary = proc.stdout[proc.stdout.index("ARM64 check passed"):]
    print(summary)  # the versions, health, the race and the int8 z error, for the CI log (pytest -s / -rA)
    assert "health:              healthy" in summary
