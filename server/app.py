"""`vmc-duel serve`: the live duel over HTTP (FastAPI + uvicorn, the optional `serve` extra).

    vmc-duel serve [--host 127.0.0.1] [--port 8000] [--seed N] [--device auto|cpu|cuda] [--weather clear|rain]
                   [--renderer exact|fast|stock] [--speed realtime|max|X] [--token T] [--start]
                   [--controller-a FILE] [--controller-b FILE] [--weights DIR]

Endpoints (the schema is at /openapi.json, interactive docs at /docs):

    GET  /health               environment, onnxruntime providers, weights and their sha256 (503 when unhealthy)
    POST /control              {"action": "start"|"pause"|"reset", "seed": N}  (seed: reset only)
    POST /update_knobs         {"player": "A"|"B", "knobs": {...}}  (partial, gating_bias nested or dotted)
    GET  /telemetry            seed, step, status, leader, winner, weather and per player telemetry, knobs,
                               the latest frame as base64 PNG (?frames=false leaves it out), rewards (?history=true)
    GET  /frame/{A|B}.png      what that car sees now

Design:

* One engine. The API drives the same `engine.race.live.RaceRunner` as the terminal app: the duel steps in the
  runner's worker thread at race speed, requests are answered from uvicorn's event loop and thread pool.
  Readers only ever see a `Snapshot` (immutable, built under the runner's lock), and every command goes through
  the runner's own locked methods, so a request lands between two steps and nobody sees a half-updated state.
  The runner's `toggle` is the only way to start, so "start" and "pause" are made idempotent here, under a lock
  of this module that serialises the check-then-toggle of concurrent control requests.
* Knob updates use the same validation (`engine.policy.knobs.Knobs.update`) and messages as the TUI: all the changes
  of a request apply together or none do. Each key is checked first so that the 422 names it in `loc`
  (["body", "knobs", "gating_bias", "rain"]) with the TUI's message in `msg`; every 422 has FastAPI's shape.
* Cheap reads. A telemetry body (and each frame's PNG) is built once per snapshot version and served from a
  small cache to every poller of that version: a few hundred polls a second cost about as much as 50.
* Security. Binds 127.0.0.1 by default; any other address needs a token (--token or VMC_DUEL_TOKEN). With a
  token, every request that can change state (anything but GET, HEAD and OPTIONS) needs
  `Authorization: Bearer <token>`: 401 without it, 403 with a wrong one (compared in constant time, on
  digests, so not even the length leaks). The check runs in an ASGI middleware before the body is read, with
  the body-size limit (16 KiB: 413), so an unauthenticated or oversized request never reaches the JSON parser.
  GET endpoints stay open: anyone who can reach the port can watch.
* Optional dependency. This module imports FastAPI, pydantic and uvicorn only inside functions, so
  `vmc_duel.cli` can register `serve` (and show its --help) on the base install; `main` says what to install.
* PNG without Pillow: a 20-line encoder (zlib + struct, RGB8, filter 0) keeps the base install small.
"""

import argparse
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import struct
import sys
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.env.racing_env import RENDERERS, WEATHERS
from engine.race.selection import add_controller_arguments
from engine.world_model.runtime import DEVICES

if TYPE_CHECKING:  # only for annotations: FastAPI is an optional extra
    from fastapi import FastAPI

    from engine.race.live import RaceRunner, Snapshot

INSTALL_HINT = "vmc-duel serve needs FastAPI and uvicorn: pip install -e '.[serve]'"
TOKEN_ENV = "VMC_DUEL_TOKEN"
MAX_BODY = 16 * 1024  # bytes; larger request bodies get 413
HEALTH_TTL = 10.0  # seconds a health report is reused (it builds and steps an environment)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # never change state: no token needed
PLAYER_NAMES = ("A", "B")  # engine.race.duel.PLAYERS, without importing the engine at import time
SEED_MAX = 2**32 - 1

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


# -- PNG -----------------------------------------------------------------------------------------
def encode_png(rgb: np.ndarray, level: int = 6) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes (8-bit RGB, no interlace, filter 0 on every row)."""
    a = np.ascontiguousarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"encode_png wants (H, W, 3) uint8, got {a.shape} {a.dtype}")
    h, w, _ = a.shape
    rows = np.zeros((h, 1 + 3 * w), np.uint8)  # each scanline: its filter byte (0: none), then the pixels
    rows[:, 1:] = a.reshape(h, 3 * w)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # width, height, bit depth 8, colour type 2 (RGB)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) \
        + chunk(b"IEND", b"")  # fmt: skip


# -- security ------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def resolve_token(host: str, token: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The token to require (--token, else $VMC_DUEL_TOKEN, else None); ValueError when `host` is not a
    loopback address and there is no token, or the token is blank."""
    if token is None:
        token = environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise ValueError(f"the token (--token or {TOKEN_ENV}) is empty")
    if token is None and not is_loopback(host):
        raise ValueError(f"--host {host} is reachable from other machines: give a token with --token or "
                         f"{TOKEN_ENV} (clients then send 'Authorization: Bearer <token>')")  # fmt: skip
    return token


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def auth_problem(authorization: str | None, token_digest: bytes) -> tuple[int, str] | None:
    """None when `authorization` is 'Bearer <the token>'; else (401, why) without credentials, (403, why)
    with wrong ones. The tokens are compared as sha256 digests with hmac.compare_digest: constant time."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return 401, "this request needs 'Authorization: Bearer <token>'"
    if not hmac.compare_digest(_digest(given.strip()), token_digest):
        return 403, "wrong token"
    return None


class RequestGuard:
    """ASGI middleware in front of the app: the token (on state-changing methods) and the body-size limit.

    Both are checked before the app parses anything: the token from the headers, the size from
    Content-Length and then from the bytes actually received (a chunked body has no length), buffering at
    most `limit` bytes; the body is then replayed to the app.
    """

    def __init__(self, app: ASGIApp, token: str | None = None, limit: int = MAX_BODY):
        self.app, self.limit = app, limit
        self.token_digest = None if token is None else _digest(token)

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:  # fmt: skip
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token_digest is not None and scope["method"] not in SAFE_METHODS:
            problem = auth_problem(headers.get("authorization"), self.token_digest)
            if problem is not None:
                await _reply(send, problem[0], problem[1], ((b"www-authenticate", b"Bearer"),))
                return
        try:
            declared = int(headers.get("content-length", "0"))
        except ValueError:  # the HTTP server rejects these first; be safe anyway
            declared = 0
        if declared > self.limit:
            await _reply(send, 413, f"request body over {self.limit} bytes", ((b"connection", b"close"),))
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _reply(send, 413, f"request body over {self.limit} bytes", ((b"connection", b"close"),))
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)


async def _reply(send: Callable[[dict], Awaitable[None]], status: int, detail: str,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:  # fmt: skip
    """A JSON error {"detail": ...} in FastAPI's shape, straight from the middleware."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


# -- state helpers ---------------------------------------------------------------------------------
def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'gating_bias.rain': 1} -> {'gating_bias': {'rain': 1}} (as engine.policy.knobs.Knobs.nested)."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        *groups, leaf = name.split(".")
        node = out
        for g in groups:
            node = node.setdefault(g, {})
        node[leaf] = value
    return out


class Controls:
    """Idempotent start and pause over `RaceRunner.toggle`, and reset; one control command at a time.

    The runner's worker only ever stops a race (when it finishes), never starts one, so under `lock` the
    check "not running" stays true until our own toggle.
    """

    def __init__(self, runner: "RaceRunner"):
        self.runner = runner
        self.lock = threading.Lock()

    def start(self) -> "Snapshot":
        with self.lock:
            if self.runner.snapshot().status in ("ready", "paused"):
                self.runner.toggle()
            return self.runner.snapshot()

    def pause(self) -> "Snapshot":
        with self.lock:
            self.runner.pause()
            return self.runner.snapshot()

    def reset(self, seed: int | None) -> "Snapshot":
        with self.lock:
            self.runner.reset(seed)
            return self.runner.snapshot()


class _PerVersion:
    """A value computed once per snapshot version and key, shared by every request that asks for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Any, tuple[int, Any]] = {}

    def get(self, key: Any, version: int, build: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = build()  # outside the lock: two requests may both build the same version, which is harmless
        with self._lock:
            latest = self._entries.get(key)
            if latest is None or latest[0] < version:  # a slow build of an older version never wins
                self._entries[key] = (version, value)
        return value


# -- the app ---------------------------------------------------------------------------------------
def _knob_schema(bounds: Any) -> dict[str, Any]:
    """JSON schema of a knob update, from configs/bounds.yaml: each knob optional, with its range and meaning;
    a group such as gating_bias nested or dotted (gating_bias.rain)."""

    def leaf(spec: Any) -> dict[str, Any]:
        return {"type": "integer" if spec.type is int else "number", "minimum": spec.min, "maximum": spec.max,
                "default": spec.default, "description": spec.meaning}  # fmt: skip

    props: dict[str, Any] = {}
    for name, spec in bounds.knobs.items():
        props[name] = leaf(spec)
        *groups, last = name.split(".")
        node = props
        for g in groups:
            node = node.setdefault(g, {"type": "object", "additionalProperties": False, "properties": {}})
            node = node["properties"]
        if groups:
            node[last] = leaf(spec)
    return {"type": "object", "additionalProperties": False, "properties": props,
            "description": "knob -> new value; only the knobs given change (see configs/bounds.yaml)"}  # fmt: skip


def make_api(
    runner: "RaceRunner", token: str | None = None, max_body: int = MAX_BODY, close_runner: bool = False
) -> "FastAPI":
    """The FastAPI app serving `runner`, whose thread it starts on startup.

    token: required as 'Authorization: Bearer <token>' on every request but GET, HEAD and OPTIONS (None: open).
    max_body: request bodies over this many bytes get 413.
    close_runner: close the runner on shutdown (`main`: uvicorn re-raises SIGTERM once it has shut down, which
        ends the process before a `finally` could free the environment's shared memory); False leaves it open.
    """
    from contextlib import asynccontextmanager
    from typing import Annotated, Literal

    from fastapi import Depends, FastAPI, HTTPException, Query, Response
    from fastapi import Path as PathParam
    from fastapi.exceptions import RequestValidationError
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

    from engine.policy.knobs import KnobError, Knobs, flatten

    bounds = runner.duel.bounds
    controls = Controls(runner)
    cache = _PerVersion()
    health_cache: dict[str, Any] = {"at": -HEALTH_TTL, "report": None}
    health_lock = threading.Lock()

    # -- models ------------------------------------------------------------------------------------
    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)  # no unknown fields, no "1" for 1

    class ControlRequest(Strict):
        action: Literal["start", "pause", "reset"] = Field(
            description="start (or resume) the race, pause it, or reset it to the start of a track"
        )
        seed: int | None = Field(
            None, ge=0, le=SEED_MAX, description="reset only: the track to race (default: the same track again)"
        )

        @model_validator(mode="after")
        def seed_only_with_reset(self) -> "ControlRequest":
            if self.seed is not None and self.action != "reset":
                raise ValueError(f"seed is only used with action 'reset', not {self.action!r}")
            return self

    class KnobUpdate(Strict):
        player: Literal["A", "B"]
        # Validated by engine.policy.knobs (the TUI's checks and messages); the schema documents the knobs.
        knobs: Annotated[dict[str, Any], WithJsonSchema(_knob_schema(bounds))]

    class Out(BaseModel):
        model_config = ConfigDict(extra="allow")  # fields the engine adds later still get through

    class ControlResult(Out):
        action: str
        status: Literal["ready", "running", "paused", "finished", "error"]
        seed: int
        step: int
        version: int

    class KnobsResult(Out):
        player: Literal["A", "B"]
        knobs: dict[str, Any] = Field(description="all of the player's knobs now (gating_bias nested)")

    class PlayerTelemetry(Out):
        step: int
        reward: float
        speed: float = Field(description="m/s")
        off_track_steps: int
        off_track_seconds: float
        tiles_visited: int
        track_tiles: int
        tiles_percent: float
        action: list[float] = Field(description="steer, gas, brake given to the car")
        risk: float = Field(description="predicted risk in [0, 1]")
        regimes: dict[str, float] = Field(description="gate weight per driving regime")
        done: bool
        lap_finished: bool
        distance: float = Field(description="m driven this episode")
        mean_speed: float = Field(description="m/s over the episode so far")
        steer_reversals: int = Field(description="times the steering changed sign (|steer| > 0.05)")
        weave: float = Field(description="steering reversals per second of race time")

    class PlayerState(Out):
        controller: str = Field(description="PLACEHOLDER, or how the controller was trained")
        controller_file: dict[str, Any] | None = Field(None, description="which controller drives: name, file, "
                                                      "sha256, run, generation, origin (absent for the autopilot)")
        telemetry: PlayerTelemetry
        knobs: dict[str, Any]
        rewards: list[float] | None = Field(None, description="reward after each step (with ?history=true)")
        frame_png: str | None = Field(None, description="what the car sees: 96x96 RGB PNG, base64 "
                                      "(left out with ?frames=false)")  # fmt: skip

    class Players(Out):
        A: PlayerState
        B: PlayerState

    class Telemetry(Out):
        version: int = Field(description="increases with every change of state")
        seed: int
        step: int
        status: Literal["ready", "running", "paused", "finished", "error"]
        error: str | None = Field(None, description="why the race stopped (status error), e.g. an environment "
                                  "worker process died; POST /control reset starts a fresh duel")  # fmt: skip
        leader: str | None
        winner: str | None = Field(description="A, B or draw once finished")
        weather: str
        players: Players

    class Health(Out):
        ok: bool
        problems: list[str]
        python: str
        hardware: dict[str, Any] = Field(description="CPU, vector ISA and extensions, onnxruntime version: what "
                                         "decides whether a race recorded elsewhere replays here bit for bit")
        packages: dict[str, str | None]
        environment: dict[str, Any]
        providers: list[str]
        weights: dict[str, Any]
        precision_auto_cpu: dict[str, Any] | None = Field(None, description="what --precision auto picks on CPU, "
                                                          "and why (the int8 driving gate)")
        race: dict[str, Any]

    class Detail(BaseModel):
        detail: str

    # -- helpers -------------------------------------------------------------------------------------
    def pngs(snap: "Snapshot") -> tuple[bytes, bytes]:
        return cache.get("png", snap.version, lambda: tuple(encode_png(f) for f in snap.frames))

    def telemetry_body(snap: "Snapshot", frames: bool, history: bool) -> bytes:
        def build() -> bytes:
            images = pngs(snap) if frames else (None, None)
            players = {
                name: {"controller": snap.controllers[p] if p < len(snap.controllers) else "",
                       "controller_file": snap.controller_info[p] if p < len(snap.controller_info) else None,
                       "telemetry": snap.telemetry[p], "knobs": nest(snap.knobs[p]),
                       "rewards": snap.rewards[p].tolist() if history else None,
                       "frame_png": base64.b64encode(images[p]).decode("ascii") if frames else None}
                for p, name in enumerate(PLAYER_NAMES)
            }  # fmt: skip
            doc = Telemetry(version=snap.version, seed=snap.seed, step=snap.step, status=snap.status,
                            error=snap.error, leader=snap.leader, winner=snap.winner, weather=snap.weather,
                            players=players)  # fmt: skip
            return doc.model_dump_json().encode()

        return cache.get(("telemetry", frames, history), snap.version, build)

    def invalid_knob(loc: tuple[str, ...], error: KnobError, value: Any) -> RequestValidationError:
        """A 422 in FastAPI's shape whose `loc` names the knob and `msg` is the TUI's message."""
        return RequestValidationError([{"type": "knob_error", "loc": ("body", *loc), "msg": str(error),
                                        "input": value}])  # fmt: skip

    bearer = HTTPBearer(auto_error=False, description="the server's --token / VMC_DUEL_TOKEN")

    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        """Documents the bearer scheme in the schema; checks again what RequestGuard already checked."""
        if token is None:
            return
        header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
        problem = auth_problem(header, _digest(token))
        if problem is not None:
            raise HTTPException(problem[0], problem[1], headers={"WWW-Authenticate": "Bearer"})

    guarded = [Depends(require_token)] if token is not None else []
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": Detail, "description": "the body could not be read (not UTF-8)"},
        413: {"model": Detail, "description": "request body too large"},
    }
    if token is not None:
        errors |= {401: {"model": Detail, "description": "no bearer token"},
                   403: {"model": Detail, "description": "wrong token"}}  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.start_thread()
        yield
        if close_runner:
            runner.close()  # after the last request: uvicorn drains connections before the lifespan ends

    app = FastAPI(title="VMC Duel", version="1", lifespan=lifespan,
                  description="Two World Models controllers race head to head in CarRacing-v3: watch the duel, "
                  "start, pause or reset it, and tune each player's strategy knobs while it runs.")  # fmt: skip

    # -- endpoints -------------------------------------------------------------------------------------
    @app.get("/health", response_model=Health, responses={503: {"model": Health, "description": "unhealthy"}})
    def health(response: Response) -> Any:
        """The environment steps, onnxruntime's providers, every shipped file's sha256 against
        weights/manifest.json (placeholders flagged), and the race; 503 when something needed is broken.
        Reused for 10 s (it builds and steps an environment)."""
        from engine.health import check

        with health_lock:
            if time.monotonic() - health_cache["at"] > HEALTH_TTL:
                health_cache["report"], health_cache["at"] = check(runner.weights_dir), time.monotonic()
            report = dict(health_cache["report"])
        snap = runner.snapshot()
        world = getattr(getattr(runner.duel, "players", None), "world", None)
        report["race"] = {"status": snap.status, "seed": snap.seed, "step": snap.step, "weather": snap.weather,
                          "renderer": getattr(runner.duel, "renderer", None), "speed": runner.speed,
                          "device": getattr(world, "device", None), "precision": getattr(world, "precision", None),
                          "controllers": list(snap.controllers),
                          "controller_files": list(snap.controller_info), "error": snap.error}  # fmt: skip
        if snap.error is not None:  # the race stopped on a failure: unhealthy until reset
            report["ok"], report["problems"] = False, [*report["problems"], "race"]
        if not report["ok"]:
            response.status_code = 503
        return report

    @app.post(
        "/control",
        response_model=ControlResult,
        dependencies=guarded,
        responses={**errors, 409: {"model": Detail, "description": "start: the race is finished or stopped on an "
                                   "error, reset first"}},  # fmt: skip
    )
    def control(req: ControlRequest) -> Any:
        """start (idempotent; a paused race resumes), pause (idempotent), or reset: back to the start of track
        `seed`, or of the same track without one; a reset race waits for start."""
        if req.action == "start":
            snap = controls.start()
            if snap.status == "finished":
                raise HTTPException(409, "the race is finished: reset it first")
            if snap.status == "error":
                raise HTTPException(409, f"the race stopped on an error ({snap.error}): reset it first")
        elif req.action == "pause":
            snap = controls.pause()
        else:
            snap = controls.reset(req.seed)
        return {"action": req.action, "status": snap.status, "seed": snap.seed, "step": snap.step,
                "version": snap.version}  # fmt: skip

    @app.post("/update_knobs", response_model=KnobsResult, dependencies=guarded, responses=errors)
    def update_knobs(req: KnobUpdate) -> Any:
        """Change some of a player's knobs from the next step on: all the given knobs change, or none (422,
        naming the knob in `loc`, with the same message as the terminal app)."""
        p = PLAYER_NAMES.index(req.player)
        where = f"player {req.player}"
        scratch = Knobs(bounds)  # each key alone through the engine's own check, so the 422 can point at it
        for name, value in flatten(req.knobs, where).items():
            try:
                scratch.update({name: value}, where=where)
            except KnobError as e:
                raise invalid_knob(("knobs", *name.split(".")), e, value) from None
        try:
            runner.set_knobs(p, req.knobs, where=where)  # all of them again, then applied together (or none)
        except KnobError as e:
            raise invalid_knob(("knobs",), e, req.knobs) from None
        return {"player": req.player, "knobs": nest(runner.snapshot().knobs[p])}

    @app.get("/telemetry", response_model=Telemetry)
    def telemetry(frames: Annotated[bool, Query(description="include each car's frame as base64 PNG")] = True,
                  history: Annotated[bool, Query(description="include each player's reward history")] = False,
                  ) -> Any:  # fmt: skip
        """The race as of the latest step: one consistent snapshot (never half a step, never half a knob
        update). `version` increases with every change."""
        body = telemetry_body(runner.snapshot(), frames, history)
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})

    @app.get("/frame/{player}.png", response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "96x96 RGB PNG"},
                        404: {"model": Detail, "description": "no such player"}})  # fmt: skip
    def frame(
        player: Annotated[str, PathParam(description="A or B", json_schema_extra={"enum": ["A", "B"]})],
    ) -> Response:
        """What player A or B sees now (96x96 RGB)."""
        if player not in PLAYER_NAMES:
            raise HTTPException(404, f"no player {player!r}: A or B")
        snap = runner.snapshot()
        png = pngs(snap)[PLAYER_NAMES.index(player)]
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    # Outermost: nothing (not even the JSON parser) sees a request without its token or with a large body.
    app.add_middleware(RequestGuard, token=token, limit=max_body)
    return app


# -- command line ----------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `vmc-duel serve` (no FastAPI needed to list them)."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; any other needs a token)")  # fmt: skip
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--seed", type=int, default=None, help="first track seed (default: a random one)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--weather", choices=WEATHERS, default="clear", help="clear (default) or rain")
    parser.add_argument("--renderer", choices=RENDERERS, default="exact", help="observation renderer (default exact)")
    parser.add_argument(
        "--speed", default="realtime", help="realtime (50 steps/s, default), max, or a factor such as 2"
    )
    parser.add_argument("--token", default=None,
                        help=f"bearer token required on POST requests (default ${TOKEN_ENV}; needed unless the host "
                        "is loopback; prefer the variable: a command line is visible to other users)")  # fmt: skip
    parser.add_argument("--start", action="store_true", help="start racing at once (default: wait for POST /control)")
    parser.add_argument("--access-log", action="store_true", help="log every request (default: errors only)")
    add_controller_arguments(parser)


def check_args(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> tuple[float | None, str | None]:
    """(speed, token) from the parsed options; ValueError for a bad value or a non-loopback host without a token."""
    from engine.race.headless import parse_speed

    speed = parse_speed(args.speed)
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    if args.seed is not None and not 0 <= args.seed <= SEED_MAX:
        raise ValueError(f"--seed must be in 0..{SEED_MAX}, got {args.seed}")
    return speed, resolve_token(args.host, args.token, environ)


def main(args: argparse.Namespace) -> int:
    """Serve until interrupted. ValueError (a usage error) for bad options."""
    speed, token = check_args(args)
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ModuleNotFoundError:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    from engine.policy.controller import ControllerError
    from engine.policy.knobs import KnobError
    from engine.race.live import RaceRunner
    from engine.race.selection import resolve_controllers
    from engine.world_model.manifest import WeightsError

    try:
        controllers, weights_dir = resolve_controllers(getattr(args, "controller_a", None),
                                                       getattr(args, "controller_b", None),
                                                       getattr(args, "weights", None))  # fmt: skip
        runner = RaceRunner(seed=args.seed, speed=speed, device=args.device, weather=args.weather,
                            renderer=args.renderer, controllers=controllers, weights_dir=weights_dir)  # fmt: skip
    except (KnobError, WeightsError, ControllerError) as e:
        print(f"vmc-duel serve: {e}", file=sys.stderr)
        return 2
    try:
        if args.start:
            runner.toggle()
        app = make_api(runner, token=token, close_runner=True)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"vmc-duel serve: track {runner.snapshot().seed} on http://{host}:{args.port} (docs: /docs)"
              + ("; POST needs 'Authorization: Bearer <token>'" if token else ""), file=sys.stderr)  # fmt: skip
        uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="warning")
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised the ctrl-c
        return 130
    finally:
        runner.close()  # no-op when the app's shutdown closed it already
    return 0


__all__ = ["INSTALL_HINT", "MAX_BODY", "RequestGuard", "add_arguments", "auth_problem", "check_args", "encode_png",
           "is_loopback", "main", "make_api", "nest", "resolve_token"]  # fmt: skip
