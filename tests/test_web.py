"""`vmc-duel web`: the real server (textual-serve) and a real headless Chromium driven by Playwright.

The browser test needs Debian's `chromium` (apt-get install chromium; .ci/run installs it where it
can) and the `playwright` package; Playwright drives the system Chromium (executable_path), it
never downloads browsers. xterm.js draws the terminal on a canvas, so what the browser shows is
checked in pixels: the screen settles before the start, the step counter's cells change once the race
runs (the test waits for each change with a generous deadline, never for a fixed time), the status turns
green (RUNNING), and both players' frames show grass and road.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from waiting import wait_for

pytest.importorskip("textual_serve", reason="vmc-duel web needs textual-serve (pip install -e '.[web]')")

CHROMIUM = next((p for p in (os.environ.get("VMC_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p), None)  # fmt: skip
CLI = [sys.executable, "-m", "vmc_duel.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(*args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([*CLI, "web", "--port", str(port), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip

    def listening() -> bool:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    try:
        wait_for(listening, f"vmc-duel web to listen on port {port}", every=0.2)
    except AssertionError:
        proc.kill()
        raise
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_web_refuses_other_hosts_without_a_token():
    result = subprocess.run([*CLI, "web", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=300,
                            env={k: v for k, v in os.environ.items() if k != "VMC_DUEL_TOKEN"})  # fmt: skip
    assert result.returncode == 2 and "give a token" in result.stderr and "Traceback" not in result.stderr


def test_web_with_a_token_needs_it_on_the_page_and_the_websocket():
    proc, port = start_web("--token", "s3cret", "--renderer", "fast")
    try:
        base = f"http://127.0.0.1:{port}"

        def status(url: str, headers: dict | None = None) -> tuple[int, dict]:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
                    return r.status, dict(r.headers)
            except urllib.error.HTTPError as e:
                return e.code, dict(e.headers)

        assert status(base + "/")[0] == 401
        assert status(base + "/?token=wrong")[0] == 403
        assert status(base + "/ws")[0] == 401
        code, headers = status(base + "/?token=s3cret")
        assert code == 200 and "vmc_duel_token=s3cret" in headers.get("Set-Cookie", "")
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        assert status(base + "/", {"Cookie": "vmc_duel_token=s3cret"})[0] == 200
        assert status(base + "/static/js/textual.js")[0] == 200  # the page's own files are public
    finally:
        stop(proc)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (apt-get install chromium): the browser test needs it")
def test_the_app_runs_in_a_real_browser(tmp_path):
    pytest.importorskip("playwright", reason="the browser test drives Chromium with playwright (pip install it)")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    proc, port = start_web("--seed", "3", "--renderer", "fast", "--device", "cpu")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            sockets = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector(".xterm-screen", timeout=30_000)
            cols, rows = (int(v) for v in re.search(r"width=(\d+)&height=(\d+)", sockets[0]).groups())
            box = page.locator(".xterm-screen").bounding_box()
            cell_w, cell_h = box["width"] / cols, box["height"] / rows

            def shot() -> np.ndarray:
                return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)

            def cells(img: np.ndarray, col0: int, col1: int, row: int) -> np.ndarray:
                x0, y0 = int(box["x"] + col0 * cell_w), int(box["y"] + row * cell_h)
                return img[y0 : int(y0 + cell_h), x0 : int(box["x"] + col1 * cell_w)]

            # "VMC Duel  track 3  step    0/1000  READY": the step's digits are cells 25-28 of row 0
            digits = (25, 29)

            def until(condition, what: str) -> np.ndarray:
                """Screenshots every half second until `condition(screenshot)` holds (generous deadline)."""
                seen = [shot()]
                while not condition(seen[-1]):
                    page.wait_for_timeout(500)  # poll: the next screenshot
                    seen.append(shot())
                    assert len(seen) < 240, f"the browser never showed {what} (120 s of screenshots)"
                return seen[-1]

            until(lambda img: cells(img, *digits, 0).max() >= 100, "the app's header")
            # settled before the start: two screenshots in a row agree (nothing moves before the start)
            previous = [shot()]

            def settled(img: np.ndarray) -> bool:
                same, previous[0] = np.array_equal(img, previous[0]), img
                return same

            ready = until(settled, "a settled first screen")
            page.locator(".xterm-helper-textarea").focus()
            page.keyboard.press("Space")

            def step_moved_from(before: np.ndarray):
                return lambda img: not np.array_equal(cells(img, *digits, 0), cells(before, *digits, 0))

            first = until(step_moved_from(ready), "the step counter moving after Space")
            second = until(step_moved_from(first), "the step counter moving on")
            Image.fromarray(second.astype(np.uint8)).save(tmp_path / "browser.png")
            if os.environ.get("VMC_WEB_SCREENSHOT"):  # to refresh the README's picture
                shutil.copyfile(tmp_path / "browser.png", os.environ["VMC_WEB_SCREENSHOT"])
            browser.close()
    finally:
        stop(proc)
    step_cells = [cells(img, *digits, 0) for img in (ready, first, second)]
    assert not np.array_equal(step_cells[0], step_cells[1]) and not np.array_equal(step_cells[1], step_cells[2])
    status = cells(second, 36, 43, 0)  # RUNNING, in green
    green = (status[..., 1] > 120) & (status[..., 0] < 120) & (status[..., 2] < 120)
    assert green.sum() > 20
    # both frames, stacked on the left: grass (green) and road (grey) in each player's half
    frame_w = int(box["x"] + cols * cell_w * 0.2)
    mid = int(box["y"] + rows * cell_h / 2)
    for half in (second[int(box["y"] + 2 * cell_h) : mid, :frame_w], second[mid + int(cell_h) :, :frame_w]):
        grass = (half[..., 1] > 170) & (half[..., 0] < 150) & (half[..., 2] < 150)
        road = (np.abs(half[..., 0] - half[..., 1]) < 8) & (np.abs(half[..., 1] - half[..., 2]) < 8) & \
               (half[..., 0] > 80) & (half[..., 0] < 140)  # fmt: skip
        assert grass.mean() > 0.15 and road.mean() > 0.05, (grass.mean(), road.mean())
    assert Path(tmp_path / "browser.png").stat().st_size > 10_000
