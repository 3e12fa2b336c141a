"""Plain-text tables for the CLI: left-aligned columns, two spaces apart, no trailing blanks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def format_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    table = [tuple(head)] + [tuple(r) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)


def fmt_number(v: Any, spec: str = ".4f", scale: float = 1.0) -> str:
    """A number for a table cell; '-' for missing values, 'nan'/'inf' spelled out."""
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    if spec == "d":
        return str(round(v * scale))
    return format(v * scale, spec)
