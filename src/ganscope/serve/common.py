"""Pieces every part of the browser view shares: the API error, JSON that survives NaN, SSE."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ganscope.errors import UserError


class ApiError(UserError):
    """An expected failure of a request: one line for the page, and the HTTP status to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (a diverged run's losses must not break the page),
    numpy scalars and arrays become plain numbers and lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        return clean(obj.item())
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(clean(obj), separators=(",", ":"), allow_nan=False)


def sse(event: str, data: Any) -> str:
    """One server-sent event (data is a single JSON line)."""
    return f"event: {event}\ndata: {dumps(data)}\n\n"


def parse_int(value: str | None, what: str, lo: int, hi: int, default: int | None = None
              ) -> int | None:
    """An integer query parameter within [lo, hi], or a one-line 400."""
    if value is None or value == "":
        return default
    try:
        v = int(value)
    except ValueError:
        raise ApiError(400, f"bad {what} {value[:40]!r}: give a whole number from {lo} to {hi}"
                       ) from None
    if not lo <= v <= hi:
        raise ApiError(400, f"{what} {v} is out of range: give a whole number from {lo} to {hi}")
    return v
