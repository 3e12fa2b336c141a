"""The FastAPI app behind ``ganscope serve``: JSON and PNG routes, server-sent events, the page.

Routes (all JSON unless said otherwise; errors are ``{"error": "<one line>"}``)::

    GET  /                                  the page (static/index.html; plain JS, no CDN)
    GET  /api/info                          version, runs dir, limits
    GET  /api/runs                          the run list (damaged runs carry "error")
    GET  /api/runs/{name}                   one run: summary, config, metrics, samples, flags
    GET  /api/runs/{name}/events?after=N    curve columns after step N
    GET  /api/runs/{name}/stream?after=N    SSE: new curve points while the run trains
    GET  /api/runs/{name}/samples/epoch-NNNN.png, /figures/NAME.png   (PNG, whitelisted)
    GET  /api/runs/{name}/latent            z size, checkpoints, directions, probe sentences
    GET  /api/runs/{name}/latent/image?epoch=&seed=&n=&shift=D:V,..&dirs=NAME:V,..   (PNG)
    GET  /api/lab/options                   data sets, losses, optimisers, each cell's settings
    POST /api/lab/start                     start a live 2-D run (JSON body: LabParams)
    POST /api/lab/pause | play | step | stop
    GET  /api/lab/state?since=I             the live run's state, snapshot, curve rows
    GET  /api/lab/stream?since=I            SSE: scene, then updates while it trains

Guards, before any route: the Host header must name this machine unless a token is set (DNS
rebinding); with a token every ``/api`` request needs it (``?token=`` or ``Authorization:
Bearer``, compared in constant time); bodies over :data:`MAX_BODY` bytes and query strings over
:data:`MAX_QUERY` get 413/414, a body not all sent within :data:`BODY_TIMEOUT_S` 408; POST
bodies must be JSON (no cross-site form posts).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

import ganscope
from ganscope.errors import UserError
from ganscope.serve import latent as latent_mod
from ganscope.serve import runs as runs_mod
from ganscope.serve.common import ApiError, dumps, parse_int, sse
from ganscope.serve.lab import LabManager, LabParams
from ganscope.serve.lab import options as lab_options

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 16 * 1024
MAX_QUERY = 4096
BODY_TIMEOUT_S = 10.0  # for the whole body (at most MAX_BODY bytes)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
LAB_POLL_S = 0.1
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", CSP.encode()),
                    (b"referrer-policy", b"no-referrer")]


class SafeJSON(JSONResponse):
    """JSON whose NaN/inf become null (a diverged run must not turn into a 500)."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> SafeJSON:
    return SafeJSON({"error": message}, status_code=status, headers=headers)


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
        resp = _error(status, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": resp.raw_headers})
        await send({"type": "http.response.body", "body": resp.body})

    def _authorized(self, scope: dict, headers: dict[bytes, bytes]) -> bool:
        from urllib.parse import parse_qs

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
            length = headers.get(b"content-length")
            try:
                declared = int(length) if length is not None else 0
            except ValueError:
                declared = MAX_BODY + 1
            if declared > MAX_BODY:
                await self._reply(send, 413, f"request body too large: at most {MAX_BODY} bytes")
                return
            body, more = b"", True
            deadline = time.monotonic() + BODY_TIMEOUT_S
            while more:
                try:  # a body that stops half way must not hold the request open forever
                    msg = await asyncio.wait_for(receive(), deadline - time.monotonic())
                except asyncio.TimeoutError:
                    await self._reply(send, 408, "request body not received in time: send it "
                                      f"within {BODY_TIMEOUT_S:g} s")
                    return
                if msg["type"] == "http.disconnect":
                    return
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
                if len(body) > MAX_BODY:
                    await self._reply(send, 413,
                                      f"request body too large: at most {MAX_BODY} bytes")
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


def create_app(runs_dir: str | Path, token: str | None = None, *, poll_s: float = 0.5,
               stream_lifetime_s: float = 1800.0, lab_plots: bool = True,
               generator_cache: int = latent_mod.CACHE_SIZE) -> FastAPI:
    """The app for one runs dir. ``token``: required on every API request (use it whenever
    the server listens beyond localhost). ``poll_s``/``stream_lifetime_s``: how often a run
    stream looks for new events and how long it lives; ``lab_plots``: write a live run's
    curves and GIF when it ends, as ``ganscope train`` does."""
    root = Path(runs_dir)
    lab = LabManager(root, plots=lab_plots)
    cache = latent_mod.GeneratorCache(generator_cache)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await asyncio.to_thread(lab.shutdown)  # the live run checkpoints and ends

    app = FastAPI(title="ganscope", version=ganscope.__version__, docs_url=None,
                  redoc_url=None, openapi_url=None, default_response_class=SafeJSON,
                  lifespan=lifespan)
    app.state.lab = lab
    app.state.cache = cache
    app.state.root = root

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> SafeJSON:
        return _error(getattr(exc, "status", 400), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> SafeJSON:
        errs = exc.errors()
        if errs:
            e = errs[0]
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "request"
            return _error(422, f"bad request: {where}: {e.get('msg', 'invalid')}")
        return _error(422, "bad request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> SafeJSON:
        return _error(exc.status_code, str(exc.detail))

    app.add_middleware(Guard, token=token)

    # --- the page ---

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info")
    async def info() -> SafeJSON:
        return SafeJSON({"version": ganscope.__version__, "runs_dir": str(root), "auth": token is not None,
                "limits": {"max_shift": latent_mod.MAX_SHIFT, "max_dims": latent_mod.MAX_TERMS,
                           "max_body": MAX_BODY}})

    # --- runs ---

    def _run(name: str):
        return runs_mod.open_run(root, name)

    @app.get("/api/runs")
    def list_runs() -> SafeJSON:
        return SafeJSON({"runs_dir": str(root), "runs": runs_mod.list_runs(root)})

    @app.get("/api/runs/{name}")
    def run_detail(name: str) -> SafeJSON:
        return SafeJSON(runs_mod.run_detail(_run(name)))

    @app.get("/api/runs/{name}/events")
    def run_events(name: str, after: str | None = None, max_points: str | None = None
                   ) -> SafeJSON:
        a = parse_int(after, "after", 0, 10**12, 0)
        m = parse_int(max_points, "max_points", 10, runs_mod.MAX_CURVE_POINTS,
                      runs_mod.MAX_CURVE_POINTS)
        return SafeJSON(runs_mod.read_curves(_run(name), a or 0,
                                             m or runs_mod.MAX_CURVE_POINTS))

    @app.get("/api/runs/{name}/stream")
    async def run_stream(name: str, request: Request, after: str | None = None
                         ) -> StreamingResponse:
        run = _run(name)
        a = parse_int(after, "after", 0, 10**12, 0) or 0
        gen = runs_mod.stream_run(run, a, poll_s, stream_lifetime_s, request.is_disconnected)
        return StreamingResponse(gen, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # --- latent explorer ---

    @app.get("/api/runs/{name}/latent")
    def latent_info(name: str) -> SafeJSON:
        return SafeJSON(latent_mod.latent_info(_run(name)))

    @app.get("/api/runs/{name}/latent/image")
    def latent_image(name: str, epoch: str | None = None, seed: str | None = None,
                     n: str | None = None, shift: str | None = None,
                     dirs: str | None = None) -> Response:
        t0 = time.perf_counter()
        s = parse_int(seed, "seed", 0, latent_mod.MAX_SEED, 0)
        k = parse_int(n, "n", 1, latent_mod.MAX_SAMPLES, 1)
        png, headers = latent_mod.latent_image(
            cache, _run(name), epoch=latent_mod.parse_epoch(epoch), seed=s or 0, n=k or 1,
            shift=shift, dirs=dirs)
        headers["Server-Timing"] = f"gen;dur={1000 * (time.perf_counter() - t0):.2f}"
        headers["Cache-Control"] = "private, max-age=60"
        return Response(png, media_type="image/png", headers=headers)

    @app.get("/api/runs/{name}/{kind}/{filename}")
    def run_file(name: str, kind: str, filename: str) -> FileResponse:
        if kind not in ("samples", "figures"):
            raise ApiError(404, f"no such file {kind[:40]}/{filename[:100]}: only "
                                "samples/epoch-NNNN.png and figures/*.png are served")
        path = runs_mod.run_file(_run(name), kind, filename)
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})

    # --- live 2-D lab ---

    @app.get("/api/lab/options")
    def lab_opts() -> SafeJSON:
        return SafeJSON(lab_options())

    @app.post("/api/lab/start")
    def lab_start(body: dict[str, Any]) -> SafeJSON:
        known = {f.name for f in fields(LabParams)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ApiError(400, f"unknown lab setting {unknown[0][:40]!r}: use "
                                f"{', '.join(sorted(known))}")
        try:
            params = LabParams(**{k: _typed(k, v) for k, v in body.items()})
        except (TypeError, ValueError) as e:
            raise ApiError(400, str(e)) from None
        s = lab.start(params)
        return SafeJSON({**s.state(since=0), **s.scene()})

    @app.post("/api/lab/{action}")
    def lab_control(action: str) -> SafeJSON:
        if action not in ("pause", "play", "step", "stop"):
            raise ApiError(404, f"unknown lab action '{action[:20]}': use pause, play, step, "
                                "stop or start")
        return SafeJSON(lab.control(action).state(snapshot=False))

    @app.get("/api/lab/state")
    def lab_state(since: str | None = None) -> SafeJSON:
        s = lab.current()
        i = parse_int(since, "since", 0, 10**9, None)
        return SafeJSON({**s.state(since=i), **s.scene()} if i == 0 else s.state(since=i))

    @app.get("/api/lab/stream")
    async def lab_stream(request: Request, since: str | None = None) -> StreamingResponse:
        s = lab.current()
        i = parse_int(since, "since", 0, 10**9, 0) or 0

        async def gen():
            yield sse("scene", {**s.scene(), "run": s.name})
            idx, seen_snap, seen_metrics, seen_version = i, -1, -1, -1
            t0 = time.monotonic()
            while True:
                if await request.is_disconnected():
                    return
                if lab.session is not s:
                    yield sse("end", {"run": s.name, "reason": "replaced"})
                    return
                finished = s.finished.is_set()
                if s.version != seen_version or finished or idx < len(s.curve):
                    seen_version = s.version
                    st = s.state(since=idx, snapshot=s.snap_version != seen_snap)
                    seen_snap = s.snap_version
                    idx += len(st["curve"])
                    if len(st["metrics"]) == seen_metrics:
                        st.pop("metrics")
                    else:
                        seen_metrics = len(st["metrics"])
                    yield sse("update", st)
                    if finished and idx >= st["curve_len"]:
                        yield sse("end", {"run": s.name, "status": s.status})
                        return
                if time.monotonic() - t0 > stream_lifetime_s:
                    yield sse("end", {"run": s.name, "status": s.status, "reason": "lifetime"})
                    return
                await asyncio.sleep(LAB_POLL_S)

        return StreamingResponse(gen(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


_LAB_TYPES = {f.name: f.type for f in fields(LabParams)}


def _typed(key: str, value: Any) -> Any:
    """A JSON value as the LabParams field wants it; wrong types get a one-line 400."""
    kind = str(_LAB_TYPES[key])
    if value is None and "None" in kind:
        return None
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise ApiError(400, f"lab setting {key} must be a string")
        return value
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise ApiError(400, f"lab setting {key} must be true or false")
        return value
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(400, f"lab setting {key} must be a whole number")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"lab setting {key} must be a number")
    return float(value)
