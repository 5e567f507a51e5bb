"""`vmc-duel web`: the terminal app in a web browser, through textual-serve.

textual-serve (the `web` extra: pip install -e '.[web]') runs one `vmc-duel tui` process per
browser tab and shows it with xterm.js. Like `serve`, it binds 127.0.0.1 unless given a token
(--token or $VMC_DUEL_TOKEN): on any other address the page, its websocket and downloads need
the token, given once as `?token=...` in the address and then kept in a same-site, HTTP-only
cookie (compared as sha256 digests in constant time). Static files (the page's JavaScript and
fonts) are public.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shlex
import socket
import sys

from engine.env.racing_env import RENDERERS, WEATHERS
from engine.world_model.runtime import DEVICES
from server.app import TOKEN_ENV, is_loopback  # the same rule as `serve` (FastAPI is imported only when serving)

DEFAULT_PORT = 8001
COOKIE = "vmc_duel_token"
GUARDED = ("/", "/ws", "/download")  # path prefixes that need the token (everything but /static)
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
    p.set_defaults(handler=_web)


def app_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs per tab: this Python's `vmc-duel tui` with the race options."""
    cmd = [sys.executable, "-m", "vmc_duel", "tui", "--renderer", args.renderer, "--weather", args.weather,
           "--device", args.device, "--graphics", "halfblock"]  # fmt: skip
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    return shlex.join(cmd)


def make_server(args: argparse.Namespace, token: str | None):
    """A textual-serve Server for `args`, guarded by `token` (None: open, loopback only)."""
    from aiohttp import web
    from textual_serve.server import Server

    class GuardedServer(Server):
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            if token is not None:
                app.middlewares.append(_token_middleware(_digest(token)))
            return app

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
        if "token" in request.query and path == "/":
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
    try:
        server = make_server(args, token)
    except ModuleNotFoundError as e:
        print(f"vmc-duel web: {e.name} is missing: pip install -e '.[web]' (textual-serve)", file=sys.stderr)
        return 2
    print(f"VMC Duel in the browser: {server.public_url}/" + ("?token=..." if token else ""), file=sys.stderr)
    server.serve()
    return 0
