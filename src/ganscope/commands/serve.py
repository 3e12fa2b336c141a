"""``ganscope serve``: the parser and the command.

FastAPI and uvicorn (the ``serve`` extra) load only when the command runs, so the CLI and every
other command work without them.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import sys

import torch

from ganscope.errors import UserError
from ganscope.training.run import runs_root

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# The web server (fastapi, uvicorn and what they pull in) is the `serve` extra, not a core
# dependency: without it every other command works and this one says what to install.
SERVE_MISSING = "ganscope serve needs the web server packages: pip install 'ganscope[serve]'"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    s = sub.add_parser("serve", help="the browser view: runs, live curves, latent sliders, a "
                                     "live 2-D lab")
    s.add_argument("--runs", "--runs-dir", dest="runs_dir", metavar="DIR",
                   help="where runs live (default: $GANSCOPE_RUNS, else ./runs)")
    s.add_argument("--host", default=DEFAULT_HOST,
                   help="address to listen on (default 127.0.0.1: this machine only; any other "
                        "address prints a warning and requires a token)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    s.add_argument("--token", help="require this token on every API request (default: none on "
                                   "localhost, a random one otherwise)")
    return s


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port, or one line saying why not."""
    if not 0 <= port <= 65535:
        raise UserError(f"bad --port {port}: give a port from 1 to 65535 (or 0 for any free one)")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise UserError(f"cannot resolve --host {host!r}: give an address such as 127.0.0.1"
                        ) from None
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for
    # sockets that say they are TCP; without it a kept-alive connection waits ~40 ms for the
    # peer's delayed ACK on every reply (Nagle), which a slider would feel.
    sock = socket.socket(info[0], socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}): pick another --port, "
                        "or stop what uses it") from None
    return sock


def url_for(host: str, port: int, token: str | None) -> str:
    h = f"[{host}]" if ":" in host else host
    return f"http://{h}:{port}/" + (f"?token={token}" if token else "")


def run_serve(a: argparse.Namespace) -> int:
    """Start the app and block until Ctrl-C; prints the address (with the token, if any)."""
    try:  # the optional `serve` extra: imported here so the CLI works without it
        import uvicorn

        from ganscope.serve.app import create_app
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "ganscope":
            raise  # our own bug, not a missing extra
        raise UserError(SERVE_MISSING) from None

    token = a.token
    if token is not None and len(token) < 8:
        raise UserError("--token is too short: use at least 8 characters (or leave it out for a "
                        "random one)")
    if a.host not in LOCAL_HOSTS:
        token = token or secrets.token_urlsafe(24)
        print(f"warning: listening on {a.host} makes ganscope reachable from other machines; "
              "every API request needs the token in the URL below", file=sys.stderr)
    root = runs_root(a.runs_dir)
    sock = bind(a.host, a.port)

    # One intra-op thread: a slider's few images and the live lab's small nets gain nothing
    # from two, and on a busy 2-core machine a second OpenMP thread waiting for a taken core
    # made 8-image updates 5-10x slower (benchmarks/serve_latency.py).
    torch.set_num_threads(1)
    port = sock.getsockname()[1]
    app = create_app(root, token)
    print(f"ganscope serve: {url_for(a.host, port, token)}  (runs: {root}; Ctrl-C to stop)",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=5))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
