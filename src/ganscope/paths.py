"""Where ganscope keeps per-user state that is not a run: downloads and cached statistics."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$GANSCOPE_CACHE``, else the platform's user cache dir (e.g. ~/.cache/ganscope)."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get("GANSCOPE_CACHE") or user_cache_dir("ganscope"))
