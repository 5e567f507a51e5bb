"""The HTTP API (server/app.py) against a real uvicorn server on loopback, the duel racing in its thread.

Skipped without the `serve` extra and the test clients (fastapi, uvicorn, httpx, schemathesis). The load test
prints its figures: pytest tests/test_api.py -k load -s
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from waiting import DEADLINE_S, wait_for

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
schemathesis = pytest.importorskip("schemathesis")

from engine.policy.knobs import KnobError, Knobs  # noqa: E402
from engine.race.live import RaceRunner  # noqa: E402
from server.app import MAX_BODY, add_arguments, check_args, encode_png, is_loopback, make_api  # noqa: E402

TOKEN = "s3cret-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Server:
    """uvicorn serving `app` in a thread, on a loopback socket with a free port."""

    def __init__(self, app) -> None:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (with proto 0,
        # every keep-alive response waits ~40 ms on Nagle + delayed ACK), as it does for the ones it creates.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        def started() -> bool:
            assert self.thread.is_alive(), "uvicorn's thread ended before it started serving"
            return self.server.started

        wait_for(started, "uvicorn to start serving")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="module")
def runner() -> Iterator[RaceRunner]:
    r = RaceRunner(seed=7, speed=1.0, device="cpu", renderer="fast")
    yield r
    r.close()


@pytest.fixture(scope="module")
def server(runner: RaceRunner) -> Iterator[str]:
    """The API with a token (POST needs it), as `vmc-duel serve --token` runs it."""
    with Server(make_api(runner, token=TOKEN)) as s:
        yield s.url


@pytest.fixture(scope="module")
def open_server(runner: RaceRunner) -> Iterator[str]:
    """The same runner served without a token (the loopback default)."""
    with Server(make_api(runner)) as s:
        yield s.url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers=AUTH, timeout=DEADLINE_S) as c:
        yield c


def control(client: httpx.Client, action: str, **extra) -> dict:
    r = client.post("/control", json={"action": action, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


# -- PNG, options --------------------------------------------------------------------------------------
def test_png_encoder_round_trips() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    data = encode_png(rgb)
    assert png_size(data) == (80, 96)
    # decode by hand: IDAT inflated is, per row, filter byte 0 then the pixels
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(96, 1 + 80 * 3)
    assert (rows[:, 0] == 0).all()
    np.testing.assert_array_equal(rows[:, 1:].reshape(96, 80, 3), rgb)
    image = pytest.importorskip("PIL.Image")
    import io

    np.testing.assert_array_equal(np.asarray(image.open(io.BytesIO(data)).convert("RGB")), rgb)
    with pytest.raises(ValueError):
        encode_png(rgb.astype(np.float32))


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


def test_public_host_needs_a_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert check_args(parse([]), environ={}) == (1.0, None)  # loopback: open
    assert check_args(parse(["--host", "::1", "--speed", "max"]), environ={}) == (None, None)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(ValueError, match="token"):
            check_args(parse(["--host", host]), environ={})
    assert check_args(parse(["--host", "0.0.0.0", "--token", "t"]), environ={})[1] == "t"
    assert check_args(parse(["--host", "0.0.0.0"]), environ={"VMC_DUEL_TOKEN": "env"})[1] == "env"
    assert check_args(parse(["--token", "cli"]), environ={"VMC_DUEL_TOKEN": "env"})[1] == "cli"
    with pytest.raises(ValueError, match="empty"):
        check_args(parse(["--host", "0.0.0.0", "--token", " "]), environ={})
    with pytest.raises(ValueError, match="port"):
        check_args(parse(["--port", "70000"]), environ={})
    # and through the command line: a usage error before anything is loaded
    from vmc_duel.cli import main as cli_main

    monkeypatch.delenv("VMC_DUEL_TOKEN", raising=False)
    with pytest.raises(SystemExit) as e:
        cli_main(["serve", "--host", "0.0.0.0"])
    assert e.value.code == 2
    assert "VMC_DUEL_TOKEN" in capsys.readouterr().err


# -- endpoints -----------------------------------------------------------------------------------------
def test_health(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] is True and report["problems"] == []
    assert report["environment"]["ok"] and "CPUExecutionProvider" in report["providers"]
    assert report["weights"]["ok"] and all(f["sha256_ok"] for f in report["weights"]["files"].values())
    assert report["race"]["device"] == "cpu" and report["race"]["renderer"] == "fast"
    assert report["hardware"]["vector_isa"] and report["hardware"]["onnxruntime"]  # figures read with their CPU
    assert report["precision_auto_cpu"]["precision"] in ("fp32", "int8")


def test_control(client: httpx.Client, runner: RaceRunner) -> None:
    got = control(client, "reset", seed=11)
    assert (got["seed"], got["step"], got["status"]) == (11, 0, "ready")
    assert control(client, "start")["status"] == "running"
    assert control(client, "start")["status"] == "running"  # idempotent: a second start does not pause
    wait_for(lambda: runner.snapshot().step >= 5, "5 steps raced", seen=lambda: runner.snapshot().step)
    assert control(client, "pause")["status"] == "paused"
    assert control(client, "pause")["status"] == "paused"  # idempotent
    step = client.get("/telemetry", params={"frames": False}).json()["step"]
    turns = runner.turns
    wait_for(lambda: runner.turns >= turns + 5, "the race worker to go round 5 times")
    assert client.get("/telemetry", params={"frames": False}).json()["step"] == step  # paused means paused
    got = control(client, "reset")  # no seed: the same track again
    assert (got["seed"], got["step"], got["status"]) == (11, 0, "ready")
    runner.step_n(1000)  # race to the end here and now
    assert runner.snapshot().status == "finished"
    r = client.post("/control", json={"action": "start"})
    assert r.status_code == 409 and "reset" in r.json()["detail"]
    assert control(client, "reset", seed=12)["status"] == "ready"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "jump"},
        {"action": "START"},
        {},
        {"seed": 3},
        {"action": "start", "seed": 3},  # a seed means nothing to start
        {"action": "reset", "seed": -1},
        {"action": "reset", "seed": 2**32},
        {"action": "reset", "seed": "5"},
        {"action": "reset", "seed": 5.5},
        {"action": "reset", "seed": True},
        {"action": "reset", "colour": "red"},
        ["reset"],
        "reset",
    ],
)
def test_control_rejects_bad_bodies(client: httpx.Client, body) -> None:
    before = client.get("/telemetry", params={"frames": False}).json()
    r = client.post("/control", json=body)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    after = client.get("/telemetry", params={"frames": False}).json()
    assert (after["seed"], after["status"]) == (before["seed"], before["status"])


@pytest.mark.parametrize(
    ("content", "status"), [(b"", 422), (b"{", 422), (b"action=start", 422), (b"null", 422), (b"\x8b\x1f\xf0", 400)]
)
def test_control_rejects_non_json(client: httpx.Client, content: bytes, status: int) -> None:
    r = client.post("/control", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    r = client.post("/control", content=b'{"action": "pause"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 422, r.text  # not declared JSON: not parsed as JSON


def test_update_knobs(client: httpx.Client, runner: RaceRunner) -> None:
    control(client, "pause")
    r = client.post("/update_knobs", json={"player": "A", "knobs": {"risk_aversion": 0.5, "gating_bias": {"rain": 1}}})
    assert r.status_code == 200, r.text
    assert r.json()["knobs"]["risk_aversion"] == 0.5 and r.json()["knobs"]["gating_bias"]["rain"] == 1.0
    r = client.post("/update_knobs", json={"player": "A", "knobs": {"gating_bias.drift": -0.5, "lookahead_horizon": 3}})
    assert r.status_code == 200, r.text
    players = client.get("/telemetry", params={"frames": False}).json()["players"]
    a, b = players["A"]["knobs"], players["B"]["knobs"]
    assert (a["risk_aversion"], a["lookahead_horizon"]) == (0.5, 3)
    assert a["gating_bias"] == {"rain": 1.0, "drift": -0.5, "straight": 0.0}
    assert b == Knobs(runner.duel.bounds).nested()  # B untouched
    r = client.post("/update_knobs", json={"player": "A", "knobs": {}})  # nothing to change
    assert r.status_code == 200 and r.json()["knobs"] == a


BAD_KNOBS = [  # (knobs, loc after "knobs", the offending key's value)
    ({"risk_aversion": 5}, ["risk_aversion"], 5),
    ({"risk_aversion": -0.01}, ["risk_aversion"], -0.01),
    ({"risk_aversion": "0.5"}, ["risk_aversion"], "0.5"),
    ({"risk_aversion": True}, ["risk_aversion"], True),
    ({"risk_aversion": None}, ["risk_aversion"], None),
    ({"risk_aversion": [0.5]}, ["risk_aversion"], [0.5]),
    ({"lookahead_horizon": 2.5}, ["lookahead_horizon"], 2.5),
    ({"lookahead_horizon": 31}, ["lookahead_horizon"], 31),
    ({"gating_bias": {"rain": 9}}, ["gating_bias", "rain"], 9),
    ({"gating_bias.rain": -9}, ["gating_bias", "rain"], -9),
    ({"gating_bias": {"snow": 0}}, ["gating_bias", "snow"], 0),
    ({"gating_bias": 1}, ["gating_bias"], 1),
    ({"turbo": 1}, ["turbo"], 1),
]


@pytest.mark.parametrize(("bad", "loc", "value"), BAD_KNOBS)
def test_update_knobs_rejects_and_applies_nothing(client: httpx.Client, runner: RaceRunner, bad, loc, value) -> None:
    before = client.get("/telemetry", params={"frames": False}).json()["players"]
    knobs = {"alpha_action_smoothing": 0.3, **bad, "emergency_brake_threshold": 0.4}  # valid ones around it
    r = client.post("/update_knobs", json={"player": "B", "knobs": knobs})
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "knobs", *loc]
    with pytest.raises(KnobError) as tui:  # the very message the terminal app shows
        Knobs(runner.duel.bounds).update({".".join(loc): value}, where="player B")
    assert err["msg"] == str(tui.value)
    after = client.get("/telemetry", params={"frames": False}).json()["players"]
    assert after["A"]["knobs"] == before["A"]["knobs"] and after["B"]["knobs"] == before["B"]["knobs"]


@pytest.mark.parametrize(
    "body",
    [
        {"player": "C", "knobs": {"risk_aversion": 0.1}},
        {"player": "a", "knobs": {"risk_aversion": 0.1}},
        {"player": 0, "knobs": {"risk_aversion": 0.1}},
        {"knobs": {"risk_aversion": 0.1}},
        {"player": "A"},
        {"player": "A", "knobs": [1]},
        {"player": "A", "knobs": "risk_aversion=1"},
        {"player": "A", "knobs": {}, "extra": 1},
    ],
)
def test_update_knobs_rejects_bad_bodies(client: httpx.Client, body) -> None:
    r = client.post("/update_knobs", json=body)
    assert r.status_code == 422, r.text


def test_telemetry_and_frames(client: httpx.Client) -> None:
    control(client, "pause")
    t = client.get("/telemetry").json()
    assert {"version", "seed", "step", "status", "leader", "winner", "weather", "players"} <= set(t)
    assert t["status"] in ("ready", "paused") and t["weather"] == "clear"
    for name in ("A", "B"):
        p = t["players"][name]
        assert {"speed", "reward", "risk", "regimes", "action", "tiles_percent"} <= set(p["telemetry"])
        png = base64.b64decode(p["frame_png"])
        assert png_size(png) == (96, 96)
        assert p["rewards"] is None
        r = client.get(f"/frame/{name}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == png  # paused: the same snapshot, the same bytes
    t = client.get("/telemetry", params={"frames": "false", "history": "true"}).json()
    assert all(t["players"][n]["frame_png"] is None for n in "AB")
    assert all(len(t["players"][n]["rewards"]) == t["players"][n]["telemetry"]["step"] for n in "AB")
    assert client.get("/frame/C.png").status_code == 404
    assert client.get("/telemetry", params={"frames": "maybe"}).status_code == 422


def test_docs_and_schema(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/health", "/control", "/update_knobs", "/telemetry", "/frame/{player}.png"} <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


# -- security ------------------------------------------------------------------------------------------
def test_token_required_on_post(server: str, open_server: str) -> None:
    with httpx.Client(base_url=server, timeout=DEADLINE_S) as c:
        r = c.post("/control", json={"action": "pause"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.post("/control", content=b"{not json").status_code == 401  # refused before the body is read
        assert (
            c.post("/control", json={"action": "pause"}, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        )
        assert c.post("/control", json={"action": "pause"}, headers={"Authorization": "Bearer"}).status_code == 401
        for wrong in ("nope", TOKEN + "x", TOKEN[:-1], TOKEN.upper()):
            r = c.post("/update_knobs", json={"player": "A", "knobs": {}}, headers={"Authorization": f"Bearer {wrong}"})
            assert r.status_code == 403, wrong
        assert (
            c.post("/control", json={"action": "pause"}, headers={"Authorization": f"bearer {TOKEN}"}).status_code
            == 200
        )
        assert c.get("/telemetry", params={"frames": False}).status_code == 200  # reading needs no token
    with httpx.Client(base_url=open_server, timeout=DEADLINE_S) as c:  # no token configured: POST is open
        assert c.post("/control", json={"action": "pause"}).status_code == 200
        assert "HTTPBearer" not in c.get("/openapi.json").json().get("components", {}).get("securitySchemes", {})


def test_body_size_limit(client: httpx.Client) -> None:
    big = {"player": "A", "knobs": {"risk_aversion": 0.1}, "pad": "x" * MAX_BODY}
    r = client.post("/update_knobs", json=big)
    assert r.status_code == 413, r.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"action": "pause", "pad": "'
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    r = client.post("/control", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    r = client.post("/control", json={"action": "pause", "pad": "x" * (MAX_BODY - 100)})  # under: parsed, then 422
    assert r.status_code == 422


# -- concurrency, fuzzing, load -------------------------------------------------------------------------
def test_no_half_updated_state(client: httpx.Client, server: str) -> None:
    """A writer sets two knobs to the same value, over and over; readers must never see them differ."""
    control(client, "reset")
    control(client, "start")
    # equal before any reader starts (other tests leave them apart: the defaults are 0 and 1)
    equal = {"risk_aversion": 0.0, "emergency_brake_threshold": 0.0}
    r = client.post("/update_knobs", json={"player": "A", "knobs": equal})
    assert r.status_code == 200
    stop, seen, bad = threading.Event(), [0], []

    def read() -> None:
        with httpx.Client(base_url=server, timeout=DEADLINE_S) as c:
            while not stop.is_set():
                k = c.get("/telemetry", params={"frames": False}).json()["players"]["A"]["knobs"]
                seen[0] += 1
                if k["risk_aversion"] != k["emergency_brake_threshold"]:
                    bad.append(k)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(60):
        v = (i % 20) / 20
        r = client.post(
            "/update_knobs", json={"player": "A", "knobs": {"risk_aversion": v, "emergency_brake_threshold": v}}
        )
        assert r.status_code == 200
    stop.set()
    for t in readers:
        t.join()
    client.post(
        "/update_knobs", json={"player": "A", "knobs": {"risk_aversion": 0.0, "emergency_brake_threshold": 1.0}}
    )
    assert seen[0] > 0 and not bad


def test_schemathesis(server: str) -> None:
    """Generated requests (valid and invalid) from the app's own OpenAPI schema: never a 5xx, and every
    response documented and matching its schema."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis import checks as st_checks  # the public registry of built-in checks

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    strategy = st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))
    names = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance")
    checks = [getattr(st_checks, name) for name in names]
    calls = []

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=strategy)
    def fuzz(case) -> None:
        response = case.call_and_validate(base_url=server, headers=AUTH, checks=checks, timeout=DEADLINE_S)
        calls.append((case.method, case.path, response.status_code))

    start = time.perf_counter()
    fuzz()
    print(f"\nschemathesis: {len(calls)} requests in {time.perf_counter() - start:.1f}s, "
          f"(method, path, status) seen: {sorted(set(calls))}")  # fmt: skip
    assert len({(m, p) for m, p, status in calls if status == 200}) == 5  # every operation answered a valid request


LOAD_CLIENT = r"""
import json, sys, threading, time
import httpx
url, requests, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[4])
threads, every = int(sys.argv[3]), int(sys.argv[5])
results = []
def worker(i):
    out = []
    with httpx.Client(base_url=url, timeout=120) as c:
        c.get("/telemetry", params={"frames": "false"})  # connect first
        gap = threads / rate
        start = time.perf_counter()
        for n in range(requests // threads):
            frames = (n * threads + i) % every == 0
            t0 = time.perf_counter()
            r = c.get("/telemetry", params={"frames": "true" if frames else "false"})
            out.append((time.perf_counter() - t0, r.status_code, frames, len(r.content), r.json()["step"]))
            wait = start + (n + 1) * gap - time.perf_counter()
            if wait > 0:
                time.sleep(wait)  # pacing the load, not waiting on it
    results.extend(out)
ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
t0 = time.perf_counter()
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps({"elapsed": time.perf_counter() - t0, "results": results}))
"""


def test_load_telemetry_while_racing(client: httpx.Client, server: str, runner: RaceRunner) -> None:
    """Several client threads (another process, as real clients are) poll /telemetry, 1 in 10 with frames, at up
    to a few hundred requests a second while the duel races at real time: every request is answered (200, a
    whole document), and the race goes on under the load (it steps while the requests are being answered).

    The figures (requests a second, latency, the race's pace) are printed, not asserted: they measure the
    machine as much as the server (`benchmarks/api_soak.py` measures them at length)."""
    requests, threads, rate, every = 900, 6, 300.0, 10
    control(client, "reset", seed=21)
    control(client, "start")
    proc = subprocess.Popen([sys.executable, "-c", LOAD_CLIENT, server, str(requests), str(threads), str(rate),
                             str(every)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0
    report = json.loads(out)
    control(client, "pause")
    results = report["results"]
    lat = np.array([r[0] for r in results]) * 1000
    with_frames = np.array([r[0] for r in results if r[2]]) * 1000
    steps = [r[4] for r in results]
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    print(f"\nload: {len(lat)} telemetry requests in {report['elapsed']:.2f}s = {len(lat) / report['elapsed']:.0f}/s "
          f"from {threads} threads ({len(with_frames)} with frames); latency ms p50 {p50:.1f} p95 {p95:.1f} "
          f"p99 {p99:.1f} max {lat.max():.1f} (with frames p50 {np.percentile(with_frames, 50):.1f}); "
          f"race {(max(steps) - min(steps)) / report['elapsed']:.1f} steps/s (target 50)")  # fmt: skip
    assert len(results) == requests - requests % threads and {r[1] for r in results} == {200}
    # the frames came with the documents that asked for them, and only with those
    assert min(r[3] for r in results if r[2]) > max(r[3] for r in results if not r[2])
    assert max(steps) > min(steps), "the race did not step while the requests were being answered"
