"""The live 2-D lab: its options, the drawn target, start (one run or a race), pause / play /
step / stop, speed, its state, the scrubber's frames and its SSE stream.

The lab itself (the race, its lanes' threads, clock and snapshots) is
:mod:`ganscope.serve.lab`; these routes only check what the page sends and shape what it gets.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import AsyncIterator
from dataclasses import fields
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ganscope.serve.common import ApiError, parse_int, sse
from ganscope.serve.lab import (
    MAX_LANES,
    LabManager,
    LabParams,
    Race,
    Snapshot,
    encode,
    lane_params,
    read_dropped,
)
from ganscope.serve.lab import options as lab_options
from ganscope.serve.responses import SafeJSON
from ganscope.serve.state import StateDep

LAB_POLL_S = 0.02  # how often the stream looks at the live race for a new frame
LAB_UPDATE_S = 0.04  # an update without a new frame (curves, counters) at most this often
_LAB_TYPES = {f.name: f.type for f in fields(LabParams)}
LANE_KEYS = ("loss", "optim", "lr_g", "lr_d", "n_critic")

router = APIRouter(prefix="/api/lab")


class LabJSON(SafeJSON):
    """A lab reply: NaN-safe JSON with each snapshot's own (already made) JSON spliced in."""

    def render(self, content: Any) -> bytes:
        return encode(content).encode()


@router.get("/options")
def lab_opts() -> SafeJSON:
    return SafeJSON(lab_options())


def _params(body: dict[str, Any], known: set[str], what: str) -> dict[str, Any]:
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, f"unknown {what} {unknown[0][:40]!r}: use "
                            f"{', '.join(sorted(known))}")
    return {k: _typed(k, v) for k, v in body.items()}


@router.post("/start")
def lab_start(body: dict[str, Any], st: StateDep) -> SafeJSON:
    """One live run (the body is a LabParams), or a race: ``runs`` is a list of lanes, each
    ``{loss, optim, lr_g?, lr_d?, n_critic?}`` on the body's common settings."""
    body = dict(body)
    lanes = body.pop("runs", None)
    known = {f.name for f in fields(LabParams)}
    try:
        common = LabParams(**_params(body, known, "lab setting"))
        if lanes is None:
            params: LabParams | list[LabParams] = common
        else:
            if not isinstance(lanes, list) or not 1 <= len(lanes) <= MAX_LANES:
                raise ApiError(400, f"runs must be a list of 1 to {MAX_LANES} runs, each "
                                    "{loss, optim, lr_g, lr_d, n_critic}")
            params = []
            for lane in lanes:
                if not isinstance(lane, dict):
                    raise ApiError(400, "each of runs must be an object {loss, optim, lr_g, "
                                        "lr_d, n_critic}")
                params.append(lane_params(common, _params(lane, set(LANE_KEYS),
                                                          "race run setting")))
    except (TypeError, ValueError) as e:
        raise ApiError(400, str(e)) from None
    race = st.lab.start(params)
    return LabJSON(_state(race, since=0, scene=True))


@router.post("/target")
def lab_target(body: dict[str, Any], st: StateDep) -> SafeJSON:
    """The target drawn on the page, ``{"points": [[x, y], ...]}``: checked as a points file
    is, kept for ``data="drawn"``; answers the points as the runs will read them."""
    _params_keys(body, {"points"})
    pts = st.lab.set_drawn(body.get("points"))
    return SafeJSON({"n": len(pts), "points": pts})


@router.get("/target")
def lab_target_get(st: StateDep) -> SafeJSON:
    pts = st.lab.drawn
    if pts is None:
        raise ApiError(404, "no drawn target on this server: draw one on the lab page")
    return SafeJSON({"n": len(pts), "points": pts})


@router.post("/target/file")
def lab_target_file(body: dict[str, Any], st: StateDep) -> SafeJSON:
    """A dropped points file, ``{"name": "my.csv", "content": "<base64>"}``: read by the
    points-file reader; its points come back for the page to add to the drawing."""
    _params_keys(body, {"name", "content"})
    name, content = body.get("name"), body.get("content")
    if not isinstance(name, str) or not isinstance(content, str):
        raise ApiError(400, "send the dropped file as {\"name\": ..., \"content\": base64}")
    try:
        raw = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "the dropped file's content is not base64") from None
    pts = read_dropped(name, raw)
    return SafeJSON({"n": len(pts), "points": np.round(pts, 4)})


def _params_keys(body: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0][:40]!r}: use {', '.join(sorted(known))}")


@router.post("/speed")
def lab_speed(body: dict[str, Any], st: StateDep) -> SafeJSON:
    """``{"speed": steps_per_second}`` (null: as fast as it goes) for the live race."""
    _params_keys(body, {"speed"})
    v = body.get("speed")
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise ApiError(400, "speed must be a number of generator steps a second, or null")
    return SafeJSON(st.lab.set_speed(None if v is None else float(v)).info())


# after /start, /target and /speed: a POST to them must not be taken for an unknown action
@router.post("/{action}")
def lab_control(action: str, st: StateDep) -> SafeJSON:
    if action not in ("pause", "play", "step", "stop"):
        raise ApiError(404, f"unknown lab action '{action[:20]}': use pause, play, step, "
                            "stop or start")
    return LabJSON(_state(st.lab.control(action), snapshot=False))


def _state(race: Race, since: int | None = None, snapshot: bool = True,
           scene: bool = False) -> dict[str, Any]:
    """The first lane's state at the top (a single run's page reads only that), the race's
    clock, and every lane's state."""
    lanes = [s.state(since=since, snapshot=snapshot) for s in race.sessions]
    out = {**lanes[0], "race": race.info(), "lanes": lanes}
    if scene:
        out.update(race.sessions[0].scene())
        out["scenes"] = [s.scene() for s in race.sessions]
    return out


@router.get("/state")
def lab_state(st: StateDep, since: str | None = None) -> SafeJSON:
    race = st.lab.current()
    i = parse_int(since, "since", 0, 10**9, None)
    return LabJSON(_state(race, since=i, scene=i == 0))


@router.get("/frame")
def lab_frame(st: StateDep, index: str | None = None, step: str | None = None) -> SafeJSON:
    """The scrubber: snapshot ``index`` of the first lane (negative: from the end) or the
    latest at or before ``step``, with every other lane's at that step."""
    race = st.lab.current()
    i = parse_int(index, "index", -10**6, 10**6, None)
    s = parse_int(step, "step", 0, 10**9, None)
    if i is None and s is None:
        raise ApiError(400, "give index=I (a kept snapshot) or step=S")
    return LabJSON(race.frame(index=i, step=s))


@router.get("/stream")
async def lab_stream(request: Request, st: StateDep, since: str | None = None
                     ) -> StreamingResponse:
    race = st.lab.current()
    i = parse_int(since, "since", 0, 10**9, 0) or 0
    return StreamingResponse(_lab_events(request, st.lab, race, i, st.stream_lifetime_s),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _lab_events(request: Request, lab: LabManager, race: Race, since: int,
                      lifetime_s: float) -> AsyncIterator[str]:
    """The scene, then an update whenever the race moved, then ``end``: finished, replaced by a
    newer race, or past ``lifetime_s`` (the page reconnects).

    An update holds each lane's new curve rows, and only what changed besides: a lane's fixed
    parts (settings) in the first update alone, its metrics and live metrics when they changed,
    and a new frame when there is one: every lane's snapshot of the newest step they all have
    (:meth:`Race.live_frame`), as the JSON each snapshot was encoded to once. A new frame goes
    out at once (the stream looks every ``LAB_POLL_S``); other changes at most every
    ``LAB_UPDATE_S``."""
    lanes = race.sessions
    n = len(lanes)
    yield sse("scene", {**lanes[0].scene(), "run": lanes[0].name,
                        "lanes": [{**s.scene(), "run": s.name} for s in lanes]})
    idx = [since] * n
    sent: list[Snapshot | None] = [None] * n
    seen_metrics = [-1] * n
    unseen = object()
    seen_live: list[Any] = [unseen] * n
    seen_version = -1
    first = True
    t0 = last = time.monotonic()
    while True:
        if await request.is_disconnected():
            return
        if lab.race is not race:
            yield sse("end", {"run": lanes[0].name, "reason": "replaced"})
            return
        finished = race.finished
        frame = race.live_frame()
        new = [f is not None and f is not sent[k] for k, f in enumerate(frame)]
        now = time.monotonic()
        if (any(new) or finished or first
                or (now - last >= LAB_UPDATE_S
                    and (race.version != seen_version
                         or any(i < len(s.curve) for i, s in zip(idx, lanes, strict=True))))):
            seen_version, last = race.version, now
            out = []
            for k, s in enumerate(lanes):
                u = s.state(since=idx[k], snapshot=False, fixed=first)
                if new[k]:
                    u["snapshot"] = sent[k] = frame[k]
                idx[k] += len(u["curve"])
                if len(u["metrics"]) == seen_metrics[k]:
                    u.pop("metrics")
                else:
                    seen_metrics[k] = len(u["metrics"])
                if u["live"] is seen_live[k]:
                    u.pop("live")
                else:
                    seen_live[k] = u["live"]
                out.append(u)
            first = False
            yield f"event: update\ndata: {encode({'race': race.info(), 'lanes': out})}\n\n"
            if finished and all(i >= len(s.curve) for i, s in zip(idx, lanes, strict=True)):
                yield sse("end", {"run": lanes[0].name, "status": race.status})
                return
        if now - t0 > lifetime_s:
            yield sse("end", {"run": lanes[0].name, "status": race.status,
                              "reason": "lifetime"})
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
