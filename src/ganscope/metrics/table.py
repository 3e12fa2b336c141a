"""The metric columns shown by ``ganscope eval`` and ``ganscope compare``.

Their titles and formats are the ``column`` rows of :mod:`ganscope.metrics.labels`.
"""

from __future__ import annotations

from typing import Any

from ganscope.metrics.labels import METRIC_LABELS
from ganscope.tables import fmt_number

# (result key, column title, format spec, scale), in the standard order
COLUMNS: tuple[tuple[str, str, str, float], ...] = tuple(
    (r.key, r.column, r.column_spec, r.scale) for r in METRIC_LABELS.values()
    if r.column is not None)


def present_columns(records: list[dict[str, Any]]) -> list[tuple[str, str, str, float]]:
    """The columns at least one record has a value for, in the standard order."""
    keys = set().union(*(r.get("metrics", {}).keys() for r in records)) if records else set()
    return [c for c in COLUMNS if c[0] in keys]


def metric_cells(metrics: dict[str, Any], columns: list[tuple[str, str, str, float]]
                 ) -> list[str]:
    return [fmt_number(metrics.get(k), spec, scale) for k, _, spec, scale in columns]


def provenance_line(rec: dict[str, Any]) -> str:
    ex, ref = rec["extractor"], rec["reference"]
    return (f"extractor {ex['name']} (sha256 {ex['sha256'][:12]}), reference "
            f"{ref['dataset']} {ref['split']} ({rec['n_real']} images), {rec['n_fake']} "
            f"generated, seed {rec['seed']}")
