"""The one gate in front of every route of ``ganscope serve`` (a pure ASGI middleware).

All request checks live here, not in the routes, so no route can forget one: the Host header
must name this machine unless a token is set (DNS rebinding); with a token every ``/api``
request needs it (``?token=`` or ``Authorization: Bearer``, compared in constant time); bodies
over :data:`MAX_BODY` bytes (:data:`BODY_LIMITS` for the routes that take point sets) and
query strings over :data:`MAX_QUERY` get 413/414, a body not all
sent within :data:`BODY_TIMEOUT_S` 408; POST bodies must be JSON (no cross-site form posts).
Every reply, the routes' too, gets the security headers.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from ganscope.serve.responses import error

MAX_BODY = 16 * 1024
# the few routes that take point sets (a drawn target, a dropped points file) take more
BODY_LIMITS = {"/api/lab/target": 1024 * 1024, "/api/lab/target/file": 2 * 1024 * 1024}
MAX_QUERY = 4096
BODY_TIMEOUT_S = 10.0  # for the whole body (at most MAX_BODY bytes)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", CSP.encode()),
                    (b"referrer-policy", b"no-referrer")]


def _host_of(header: str) -> str:
    header = header.strip().lower()
    if header.startswith("["):
        return header[:header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """Pure ASGI middleware: host check, token, request-size bounds, JSON-only POSTs."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def _reply(self, send: Any, status: int, message: str) -> None:
        resp = error(status, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": resp.raw_headers})
        await send({"type": "http.response.body", "body": resp.body})

    def _authorized(self, scope: dict, headers: dict[bytes, bytes]) -> bool:
        given = ""
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        else:
            q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (q.get("token") or [""])[0]
        return secrets.compare_digest(given.encode(), self.token.encode())  # type: ignore[union-attr]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg = {**msg, "headers": [*msg.get("headers", []),
                                          *(h for h in SECURITY_HEADERS if h[0] not in have)]}
            await send(msg)

        await self._guarded(scope, receive, send_with_headers)

    async def _guarded(self, scope: dict, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        path = scope.get("path", "")
        if self.token is None:
            host = _host_of(headers.get(b"host", b"").decode("latin-1"))
            if host not in LOCAL_HOSTS:
                await self._reply(send, 403, f"host {host[:60]!r} refused: this server only "
                                  "answers requests for localhost (start it with --host to "
                                  "share it, with a token)")
                return
        if len(scope.get("query_string", b"")) > MAX_QUERY:
            await self._reply(send, 414, f"query string too long: at most {MAX_QUERY} bytes")
            return
        if self.token is not None and path.startswith("/api") and not self._authorized(
                scope, headers):
            await self._reply(send, 401, "missing or wrong token: open the URL that "
                              "`ganscope serve` printed (it ends in ?token=...)")
            return
        method = scope.get("method", "GET")
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
            limit = BODY_LIMITS.get(path, MAX_BODY)
            length = headers.get(b"content-length")
            try:
                declared = int(length) if length is not None else 0
            except ValueError:
                declared = limit + 1
            if declared > limit:
                await self._reply(send, 413, f"request body too large: at most {limit} bytes")
                return
            body, more = b"", True
            deadline = time.monotonic() + BODY_TIMEOUT_S
            while more:
                try:  # a body that stops half way must not hold the request open forever
                    msg = await asyncio.wait_for(receive(), deadline - time.monotonic())
                except TimeoutError:
                    await self._reply(send, 408, "request body not received in time: send it "
                                      f"within {BODY_TIMEOUT_S:g} s")
                    return
                if msg["type"] == "http.disconnect":
                    return
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
                if len(body) > limit:
                    await self._reply(send, 413,
                                      f"request body too large: at most {limit} bytes")
                    return
            if ctype != "application/json":  # no cross-site form posts (JSON needs CORS)
                await self._reply(send, 415, "send the request body as application/json")
                return
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)
