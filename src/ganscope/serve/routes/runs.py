"""The runs: the list, one run's detail, its curves (JSON and a live SSE stream), its PNGs.

The file route ``/api/runs/{name}/{kind}/{filename}`` would also match the latent explorer's
``/api/runs/{name}/latent/image``, so ``create_app`` includes this router after the latent one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, StreamingResponse

from ganscope.serve import runs as runs_mod
from ganscope.serve.common import ApiError, parse_int
from ganscope.serve.responses import SafeJSON
from ganscope.serve.state import StateDep

router = APIRouter(prefix="/api/runs")


@router.get("")
def list_runs(st: StateDep) -> SafeJSON:
    return SafeJSON({"runs_dir": str(st.root), "runs": runs_mod.list_runs(st.root)})


@router.get("/{name}")
def run_detail(name: str, st: StateDep) -> SafeJSON:
    return SafeJSON(runs_mod.run_detail(st.run(name)))


@router.get("/{name}/events")
def run_events(name: str, st: StateDep, after: str | None = None,
               max_points: str | None = None) -> SafeJSON:
    a = parse_int(after, "after", 0, 10**12, 0)
    m = parse_int(max_points, "max_points", 10, runs_mod.MAX_CURVE_POINTS,
                  runs_mod.MAX_CURVE_POINTS)
    return SafeJSON(runs_mod.read_curves(st.run(name), a or 0, m or runs_mod.MAX_CURVE_POINTS))


@router.get("/{name}/stream")
async def run_stream(name: str, request: Request, st: StateDep, after: str | None = None
                     ) -> StreamingResponse:
    run = st.run(name)
    a = parse_int(after, "after", 0, 10**12, 0) or 0
    gen = runs_mod.stream_run(run, a, st.poll_s, st.stream_lifetime_s, request.is_disconnected)
    return StreamingResponse(gen, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{name}/{kind}/{filename}")
def run_file(name: str, kind: str, filename: str, st: StateDep) -> FileResponse:
    if kind not in ("samples", "figures"):
        raise ApiError(404, f"no such file {kind[:40]}/{filename[:100]}: only "
                            "samples/epoch-NNNN.png and figures/*.png are served")
    path = runs_mod.run_file(st.run(name), kind, filename)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})
