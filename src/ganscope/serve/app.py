"""The FastAPI app behind ``ganscope serve``: JSON and PNG routes, server-sent events, the page.

Routes (all JSON unless said otherwise; errors are ``{"error": "<one line>"}``)::

    GET  /                                  the page (static/index.html; plain JS, no CDN)
    GET  /api/info                          version, runs dir, limits
    GET  /api/metrics/labels                every metric's labels and formats (one table)
    GET  /api/runs                          the run list (damaged runs carry "error")
    GET  /api/runs/{name}                   one run: summary, config, metrics, samples, flags
    GET  /api/runs/{name}/events?after=N    curve columns after step N
    GET  /api/runs/{name}/stream?after=N    SSE: new curve points while the run trains
    GET  /api/runs/{name}/samples/epoch-NNNN.png, /figures/NAME.png   (PNG, whitelisted)
    GET  /api/runs/{name}/latent            z size, checkpoints, directions, probe sentences
    GET  /api/runs/{name}/latent/image?epoch=&seed=&n=&shift=D:V,..&dirs=NAME:V,..   (PNG)
    GET  /api/lab/options                   data sets, losses, optimisers, each cell's settings
    POST /api/lab/start                     start a live 2-D run (JSON body: LabParams) or a
                                            race (``runs``: [{loss, optim, lr_g, lr_d, n_critic}])
    POST /api/lab/pause | play | step | stop
    POST /api/lab/speed                     {"speed": steps a second, or null: as fast as it goes}
    POST /api/lab/target, GET /api/lab/target   the drawn target ({"points": [[x, y], ...]})
    POST /api/lab/target/file               a dropped points file ({"name", "content": base64})
    GET  /api/lab/state?since=I             the race's clock, each lane's state, snapshot, curve
    GET  /api/lab/frame?index=I | step=S    the scrubber: kept snapshots of every lane
    GET  /api/lab/stream?since=I            SSE: scene, then updates while it trains

The routes live in :mod:`ganscope.serve.routes` (one router per area), the guards before them
in :mod:`ganscope.serve.guard` (host check, token, body/query limits, body timeout, JSON-only
POSTs), the reply shapes in :mod:`ganscope.serve.responses` and what the routes share in
:mod:`ganscope.serve.state`; this module only puts them together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import ganscope
from ganscope.serve import latent as latent_mod
from ganscope.serve.guard import BODY_TIMEOUT_S, MAX_BODY, MAX_QUERY, Guard
from ganscope.serve.lab import LabManager
from ganscope.serve.responses import EXCEPTION_HANDLERS, SafeJSON
from ganscope.serve.routes import lab, latent, page, runs
from ganscope.serve.routes.page import STATIC
from ganscope.serve.state import ServeState

# The limits and the reply class keep their old address here (callers and tests read them).
__all__ = ["BODY_TIMEOUT_S", "MAX_BODY", "MAX_QUERY", "STATIC", "Guard", "SafeJSON",
           "create_app"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await asyncio.to_thread(app.state.serve.lab.shutdown)  # the live run checkpoints and ends


def create_app(runs_dir: str | Path, token: str | None = None, *, poll_s: float = 0.5,
               stream_lifetime_s: float = 1800.0, lab_plots: bool = True,
               generator_cache: int = latent_mod.CACHE_SIZE) -> FastAPI:
    """The app for one runs dir. ``token``: required on every API request (use it whenever
    the server listens beyond localhost). ``poll_s``/``stream_lifetime_s``: how often a run
    stream looks for new events and how long it lives; ``lab_plots``: write a live run's
    curves and GIF when it ends, as ``ganscope train`` does."""
    root = Path(runs_dir)
    state = ServeState(root=root, token=token, poll_s=poll_s,
                       stream_lifetime_s=stream_lifetime_s,
                       lab=LabManager(root, plots=lab_plots),
                       cache=latent_mod.GeneratorCache(generator_cache))
    app = FastAPI(title="ganscope", version=ganscope.__version__, docs_url=None,
                  redoc_url=None, openapi_url=None, default_response_class=SafeJSON,
                  exception_handlers=EXCEPTION_HANDLERS, lifespan=_lifespan)
    app.state.serve = state
    # the old names too: tests and embedding code reach the live lab and cache through them
    app.state.lab, app.state.cache, app.state.root = state.lab, state.cache, root
    app.add_middleware(Guard, token=token)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # latent before runs: runs' /{name}/{kind}/{filename} would also take .../latent/image
    for router in (latent.router, runs.router, lab.router):
        app.include_router(router)
    return app
