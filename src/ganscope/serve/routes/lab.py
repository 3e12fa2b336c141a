"""The live 2-D lab: its options, start/pause/play/step/stop, its state and its SSE stream.

The lab itself (the one live run, its thread, its snapshots) is :mod:`ganscope.serve.lab`;
these routes only check what the page sends and shape what it gets back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import fields
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ganscope.serve.common import ApiError, parse_int, sse
from ganscope.serve.lab import LabManager, LabParams, LabSession
from ganscope.serve.lab import options as lab_options
from ganscope.serve.responses import SafeJSON
from ganscope.serve.state import StateDep

LAB_POLL_S = 0.1  # how often the stream looks at the live run (its frames come this often)
_LAB_TYPES = {f.name: f.type for f in fields(LabParams)}

router = APIRouter(prefix="/api/lab")


@router.get("/options")
def lab_opts() -> SafeJSON:
    return SafeJSON(lab_options())


@router.post("/start")
def lab_start(body: dict[str, Any], st: StateDep) -> SafeJSON:
    known = {f.name for f in fields(LabParams)}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, f"unknown lab setting {unknown[0][:40]!r}: use "
                            f"{', '.join(sorted(known))}")
    try:
        params = LabParams(**{k: _typed(k, v) for k, v in body.items()})
    except (TypeError, ValueError) as e:
        raise ApiError(400, str(e)) from None
    s = st.lab.start(params)
    return SafeJSON({**s.state(since=0), **s.scene()})


# after /start: a POST to /start must not be taken for an unknown action
@router.post("/{action}")
def lab_control(action: str, st: StateDep) -> SafeJSON:
    if action not in ("pause", "play", "step", "stop"):
        raise ApiError(404, f"unknown lab action '{action[:20]}': use pause, play, step, "
                            "stop or start")
    return SafeJSON(st.lab.control(action).state(snapshot=False))


@router.get("/state")
def lab_state(st: StateDep, since: str | None = None) -> SafeJSON:
    s = st.lab.current()
    i = parse_int(since, "since", 0, 10**9, None)
    return SafeJSON({**s.state(since=i), **s.scene()} if i == 0 else s.state(since=i))


@router.get("/stream")
async def lab_stream(request: Request, st: StateDep, since: str | None = None
                     ) -> StreamingResponse:
    s = st.lab.current()
    i = parse_int(since, "since", 0, 10**9, 0) or 0
    return StreamingResponse(_lab_events(request, st.lab, s, i, st.stream_lifetime_s),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _lab_events(request: Request, lab: LabManager, s: LabSession, since: int,
                      lifetime_s: float) -> AsyncIterator[str]:
    """The scene, then an update whenever the run moved (a new snapshot only when there is
    one, metrics only when they grew), then ``end``: finished, replaced by a newer run, or
    past ``lifetime_s`` (the page reconnects)."""
    yield sse("scene", {**s.scene(), "run": s.name})
    idx, seen_snap, seen_metrics, seen_version = since, -1, -1, -1
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
        if time.monotonic() - t0 > lifetime_s:
            yield sse("end", {"run": s.name, "status": s.status, "reason": "lifetime"})
            return
        await asyncio.sleep(LAB_POLL_S)


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
