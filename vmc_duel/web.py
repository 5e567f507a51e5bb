"""`vmc-duel web`: the terminal app in a web browser, through textual-serve.

textual-serve (the `web` extra: pip install -e '.[web]') runs one `vmc-duel tui` process per
browser tab and shows it with xterm.js. Like `serve`, it binds 127.0.0.1 unless given a token
(--token or $VMC_DUEL_TOKEN): on any other address the page, its websocket and downloads need
the token, given once as `?token=...` in the address and then kept in a same-site, HTTP-only
cookie (compared as sha256 digests in constant time). Static files (the page's JavaScript and
fonts) are public.

`/play` serves `vmc-duel play` the same way (a person drives car B against controller A, keys from
the browser; xterm.js reports no key releases, so the keys repeat and fade): its page opens the
websocket `/ws/play`, whose tabs run the play command. With --record-dir every race driven there
is written to that directory.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shlex
import socket
import sys
from pathlib import Path

from engine.env.racing_env import RENDERERS, WEATHERS
from engine.world_model.runtime import DEVICES
from server.app import TOKEN_ENV, is_loopback  # the same rule as `serve` (FastAPI is imported only when serving)

DEFAULT_PORT = 8001
COOKIE = "vmc_duel_token"
GUARDED = ("/", "/ws", "/download", "/play")  # path prefixes that need the token (everything but /static)
WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")  # every interface: the public address is this machine's name


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "web",
        help="open the terminal app in a web browser (textual-serve); loopback unless given a token",
        description="Serve the same Textual app over HTTP with textual-serve (pip install -e '.[web]'): every browser "
        "tab gets its own race. Binds 127.0.0.1 by default; any other address needs a token (--token or "
        f"${TOKEN_ENV}), which the browser gives once as http://HOST:PORT/?token=TOKEN.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--token", default=None,
                   help=f"token the browser must give (default ${TOKEN_ENV}; needed unless the host is loopback; "
                   "prefer the variable: a command line is visible to other users)")  # fmt: skip
    p.add_argument("--public-url", default=None, metavar="URL",
                   help="the address browsers use, when it is not http://HOST:PORT (behind a proxy; default for "
                   "--host 0.0.0.0: http://THIS-MACHINE'S-NAME:PORT)")
    p.add_argument("--seed", type=int, default=None, help="track seed of each new tab (default: a random one)")
    p.add_argument("--renderer", choices=RENDERERS, default="exact", help="observation renderer (default exact)")
    p.add_argument("--weather", choices=WEATHERS, default="clear", help="clear (default) or rain")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--record-dir", type=Path, metavar="DIR", default=None,
                   help="/play: write every race driven to a new file in DIR (vmc-duel play --record-dir)")
    p.set_defaults(handler=_web)


def app_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs per tab: this Python's `vmc-duel tui` with the race options."""
    cmd = [sys.executable, "-m", "vmc_duel", "tui", "--renderer", args.renderer, "--weather", args.weather,
           "--device", args.device, "--graphics", "halfblock"]  # fmt: skip
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    return shlex.join(cmd)


def play_command(args: argparse.Namespace) -> str:
    """The shell command a /play tab runs: this Python's `vmc-duel play` with the race options."""
    cmd = [sys.executable, "-m", "vmc_duel", "play", "--renderer", args.renderer, "--weather", args.weather,
           "--device", args.device, "--graphics", "halfblock"]  # fmt: skip
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    if args.record_dir is not None:
        cmd += ["--record-dir", str(Path(args.record_dir).resolve())]
    return shlex.join(cmd)


def make_server(args: argparse.Namespace, token: str | None):
    """A textual-serve Server for `args`, guarded by `token` (None: open, loopback only)."""
    import aiohttp_jinja2
    from aiohttp import web
    from textual_serve.server import Server

    class GuardedServer(Server):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            # /play's tabs: textual-serve runs one command per server, so a second one (never served by
            # itself) answers /ws/play; it shares the downloads
            self.play = Server(play_command(args), host=self.host, port=self.port, title="VMC Duel: play",
                               public_url=self.public_url)  # fmt: skip
            self.play.download_manager = self.download_manager

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.add_routes([web.get("/play", self.handle_play_index, name="play"),
                            web.get("/ws/play", self.play.handle_websocket, name="play_websocket")])  # fmt: skip
            if token is not None:
                app.middlewares.append(_token_middleware(_digest(token)))
            return app

        async def handle_play_index(self, request: web.Request) -> web.StreamResponse:
            """The page of "/" (textual-serve's template and context), opening the play websocket."""
            context = await Server.handle_index.__wrapped__(self, request)
            url = f"{self.public_url}{request.app.router['play_websocket'].url_for()}"
            context["app_websocket_url"] = ("wss:" if url.startswith("https") else "ws:") + url.split(":", 1)[1]
            context["application"] = {"name": "VMC Duel: play"}
            return aiohttp_jinja2.render_template("app_index.html", request, context)

    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    host = args.host
    if host in WILDCARD_HOSTS:  # the page's websocket address must be one browsers can reach
        host = socket.getfqdn()
    public = (args.public_url or f"http://{host}:{args.port}").rstrip("/")
    return GuardedServer(app_command(args), host=args.host, port=args.port, title="VMC Duel", public_url=public)


def _token_middleware(digest: bytes):
    from aiohttp import web

    @web.middleware
    async def guard(request: web.Request, handler):
        path = request.path
        if path.startswith("/static/") or not any(path == g or path.startswith(g + "/") for g in GUARDED):
            return await handler(request)
        given = request.query.get("token") or request.cookies.get(COOKIE)
        if not given:
            raise web.HTTPUnauthorized(text="this server needs its token: open /?token=TOKEN once\n")
        if not hmac.compare_digest(_digest(given), digest):
            raise web.HTTPForbidden(text="wrong token\n")
        response = await handler(request)
        if "token" in request.query and path in ("/", "/play"):
            response.set_cookie(COOKIE, given, httponly=True, samesite="Strict")
        return response

    return guard


def _web(args: argparse.Namespace) -> int:
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise ValueError(f"the token (--token or {TOKEN_ENV}) is empty")
    if token is None and not is_loopback(args.host):
        raise ValueError(f"--host {args.host} is reachable from other machines: give a token with --token or "
                         f"{TOKEN_ENV} (browsers then open http://HOST:PORT/?token=TOKEN once)")  # fmt: skip
    if args.record_dir is not None:
        try:
            Path(args.record_dir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"--record-dir {args.record_dir}: cannot create it ({e.strerror})") from None
    try:
        server = make_server(args, token)
    except ModuleNotFoundError as e:
        print(f"vmc-duel web: {e.name} is missing: pip install -e '.[web]' (textual-serve)", file=sys.stderr)
        return 2
    print(f"VMC Duel in the browser: {server.public_url}/" + ("?token=..." if token else "") + "  (drive a car "
          f"yourself: {server.public_url}/play" + ("?token=...)" if token else ")"), file=sys.stderr)
    server.serve()
    return 0
