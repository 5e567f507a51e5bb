"""`vmc-duel web`'s /play: the real server, a real headless Chromium (Playwright, the system chromium), a person's
keys from the browser.

The page opens the play websocket; the test starts the race with Space, presses ArrowUp, ArrowLeft and
ArrowRight (each batch once the step counter has moved on, read from the canvas' pixels as in test_web.py),
quits with q, and checks the race record the tab wrote (--record-dir): player B marked as the person, their
gas and steering in it, and `vmc-duel replay` verifies it. Without its token a guarded server refuses /play
and its websocket as it refuses /.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from test_web import CHROMIUM, start_web, stop
from waiting import wait_for

from engine.race.race_log import RaceLog

pytest.importorskip("textual_serve", reason="vmc-duel web needs textual-serve (pip install -e '.[web]')")


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_play_route_is_guarded_by_the_token_like_the_rest():
    proc, port = start_web("--token", "s3cret", "--renderer", "fast")
    try:
        base = f"http://127.0.0.1:{port}"
        assert status(base + "/play") == 401 and status(base + "/ws/play") == 401
        assert status(base + "/play?token=wrong") == 403
        with urllib.request.urlopen(base + "/play?token=s3cret", timeout=10) as r:
            page = r.read().decode()
            assert r.status == 200 and "vmc_duel_token=s3cret" in r.headers.get("Set-Cookie", "")
        assert "/ws/play" in page and "VMC Duel: play" in page
    finally:
        stop(proc)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (apt-get install chromium): the browser test needs it")
def test_a_person_drives_in_a_real_browser_and_the_record_replays(tmp_path, monkeypatch):
    pytest.importorskip("playwright", reason="the browser test drives Chromium with playwright (pip install it)")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the tabs' leaderboard: here, not in the home

    records = tmp_path / "records"
    proc, port = start_web("--seed", "3", "--renderer", "fast", "--device", "cpu", "--record-dir", str(records))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            sockets = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.goto(f"http://127.0.0.1:{port}/play")
            page.wait_for_selector(".xterm-screen", timeout=30_000)
            assert sockets and "/ws/play" in sockets[0]
            cols, rows = (int(v) for v in re.search(r"width=(\d+)&height=(\d+)", sockets[0]).groups())
            box = page.locator(".xterm-screen").bounding_box()
            cell_w, cell_h = box["width"] / cols, box["height"] / rows

            def shot() -> np.ndarray:
                return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)

            def step_cells(img: np.ndarray) -> np.ndarray:
                # "VMC Duel  track 3  step    0/1000  READY": the step's digits are cells 25-28 of row 0
                x0, y0 = int(box["x"] + 25 * cell_w), int(box["y"])
                return img[y0 : int(y0 + cell_h), x0 : int(box["x"] + 29 * cell_w)]

            def until(condition, what: str) -> np.ndarray:
                """The screenshot once `condition(screenshot)` holds (tests/waiting.py's deadline)."""
                seen = []

                def check() -> bool:
                    seen[:] = [shot()]
                    return condition(seen[0])

                wait_for(check, what, every=0.3)
                return seen[0]

            until(lambda img: step_cells(img).max() >= 100, "the app's header")
            # settled before the start, as test_web.py waits: two screenshots in a row agree
            previous = [shot()]

            def settled(img: np.ndarray) -> bool:
                same, previous[0] = np.array_equal(img, previous[0]), img
                return same

            ready = until(settled, "a settled first screen")
            page.locator(".xterm-helper-textarea").focus()
            page.keyboard.press("Space")
            moved = until(lambda img: not np.array_equal(step_cells(img), step_cells(ready)), "the race to start")
            for key in ["ArrowUp"] * 4 + ["ArrowLeft"] * 2 + ["ArrowUp"] * 2 + ["ArrowRight"] * 2:
                for _ in range(3):
                    page.keyboard.press(key)
                before = moved
                moved = until(lambda img, b=before: not np.array_equal(step_cells(img), step_cells(b)),
                              f"the race to step on after {key}")  # fmt: skip
            page.keyboard.press("q")
            written = wait_for(lambda: sorted(records.glob("play-3-*.json")), "the tab's race record")
            browser.close()
    finally:
        stop(proc)
    log = RaceLog.load(written[0])
    assert log.human == "B" and log.header["seed"] == 3 and log.steps > 10
    b = log.actions[:, 1]
    assert b[:, 1].max() == 1.0 and b[:, 0].min() < 0 and b[:, 0].max() > 0  # gas, left and right from the browser
    replayed = subprocess.run([sys.executable, "-m", "vmc_duel", "replay", str(written[0]), "--json"],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
    assert replayed.returncode == 0 and json.loads(replayed.stdout)["ok"], replayed.stderr
