"""What the routes of one ``ganscope serve`` app share, handed to them as a FastAPI dependency.

One small object instead of closures inside ``create_app``: the routes can then live in their
own modules (``ganscope.serve.routes``), and a test or a second app in the same process gets
its own runs dir, generator cache and live lab, never another app's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from ganscope.serve import runs as runs_mod
from ganscope.serve.lab import LabManager
from ganscope.serve.latent import GeneratorCache
from ganscope.training.run import Run


@dataclass
class ServeState:
    """One app's settings and long-lived objects (see :func:`ganscope.serve.app.create_app`)."""

    root: Path  # the runs dir
    token: str | None  # None: localhost only, no token asked
    poll_s: float  # how often a run stream looks for new events
    stream_lifetime_s: float  # how long a stream (run or lab) lives
    lab: LabManager  # the one live 2-D run
    cache: GeneratorCache  # loaded generators, for the latent explorer

    def run(self, name: str) -> Run:
        """The run ``name`` under the runs dir, or a one-line 404/400."""
        return runs_mod.open_run(self.root, name)


async def serve_state(request: Request) -> ServeState:
    # async, so FastAPI calls it on the event loop rather than through its thread pool
    return request.app.state.serve


# A route parameter annotated with this receives the app's ServeState.
StateDep = Annotated[ServeState, Depends(serve_state)]
