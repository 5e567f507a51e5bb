"""Rules of the test suite itself, read from its source: a test waits for what another process or thread has
done (tests/waiting.py polls a condition with a generous deadline; a program is held at a progress point), never
for a stretch of time after which it asserts what happened meanwhile. A slow, loaded or fast machine then gives
the same verdict."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# sleeping for a while: time.sleep, a Pilot pause of a set length, a browser's fixed wait
SLEEP = re.compile(r"time\.sleep\(|pilot\.pause\(\s*[\d.]|wait_for_timeout\(")
ALLOWED = ("# poll", "# pacing")  # a poll inside a loop with a deadline, or a load generator's pacing
HOME = "waiting.py"  # where the waiting is done


def test_tests_wait_for_conditions_not_for_time():
    bad = [f"{path.name}:{n}: {line.strip()}"
           for path in sorted(ROOT.glob("*.py")) if path.name not in (HOME, Path(__file__).name)
           for n, line in enumerate(path.read_text().splitlines(), 1)
           if SLEEP.search(line) and not any(mark in line for mark in ALLOWED)]  # fmt: skip
    assert not bad, "sleeping in a test (use tests/waiting.py: wait for a condition, or hold at a point):\n" + \
        "\n".join(bad)  # fmt: skip
