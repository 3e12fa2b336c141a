"""The latent explorer: what a run offers (z size, checkpoints, directions) and its images."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ganscope.serve import latent as latent_mod
from ganscope.serve.common import parse_int
from ganscope.serve.responses import SafeJSON
from ganscope.serve.state import StateDep

router = APIRouter(prefix="/api/runs/{name}/latent")


@router.get("")
def latent_info(name: str, st: StateDep) -> SafeJSON:
    return SafeJSON(latent_mod.latent_info(st.run(name)))


@router.get("/image")
def latent_image(name: str, st: StateDep, epoch: str | None = None, seed: str | None = None,
                 n: str | None = None, shift: str | None = None,
                 dirs: str | None = None,
                 cls: Annotated[str | None, Query(alias="class")] = None) -> Response:
    t0 = time.perf_counter()
    s = parse_int(seed, "seed", 0, latent_mod.MAX_SEED, 0)
    k = parse_int(n, "n", 1, latent_mod.MAX_SAMPLES, 1)
    png, headers = latent_mod.latent_image(
        st.cache, st.run(name), epoch=latent_mod.parse_epoch(epoch), seed=s or 0, n=k or 1,
        shift=shift, dirs=dirs, cls=cls)
    # the slider's own latency, visible in the browser's network panel
    headers["Server-Timing"] = f"gen;dur={1000 * (time.perf_counter() - t0):.2f}"
    headers["Cache-Control"] = "private, max-age=60"
    return Response(png, media_type="image/png", headers=headers)
