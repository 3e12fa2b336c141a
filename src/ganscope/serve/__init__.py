"""The browser view (``ganscope serve``): runs, live curves, latent sliders and a live 2-D lab.

A local FastAPI app over the same library functions as the CLI. It only reads run directories
(plus generator checkpoints), except for the live 2-D lab, which trains ordinary runs with the
one training loop. Importing this package is cheap: FastAPI is only imported by
:func:`create_app`, so the CLI's other commands do not pay for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(runs_dir: str | os.PathLike, token: str | None = None, **options: Any) -> FastAPI:
    """The web app for ``runs_dir`` (see :func:`ganscope.serve.app.create_app`)."""
    # here, not at the top: importing this package (and its fastapi-free modules) stays cheap
    from ganscope.serve.app import create_app as _create

    return _create(runs_dir, token, **options)


__all__ = ["create_app"]
