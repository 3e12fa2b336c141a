"""The page itself and what it asks first: ``/api/info`` (version, runs dir, limits) and
``/api/metrics/labels`` (every metric's labels and formats, :mod:`ganscope.metrics.labels`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

import ganscope
from ganscope.metrics.labels import labels_json
from ganscope.serve import latent as latent_mod
from ganscope.serve.guard import MAX_BODY
from ganscope.serve.responses import SafeJSON
from ganscope.serve.state import StateDep

# static/ (index.html, app.js, style.css) is mounted at /static by create_app: an APIRouter
# cannot carry a mount.
STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/api/info")
async def info(st: StateDep) -> SafeJSON:
    return SafeJSON({"version": ganscope.__version__, "runs_dir": str(st.root),
                     "auth": st.token is not None,
                     "limits": {"max_shift": latent_mod.MAX_SHIFT,
                                "max_dims": latent_mod.MAX_TERMS, "max_body": MAX_BODY}})


@router.get("/api/metrics/labels")
async def metric_labels() -> SafeJSON:
    """The one metric table the CLI, reports and figures use, for the page's metric tables."""
    return SafeJSON(labels_json())
