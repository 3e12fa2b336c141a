"""The metric columns shown by ``ganscope eval`` and ``ganscope compare``, in one place."""

from __future__ import annotations

from typing import Any

from ganscope.tables import fmt_number

# (result key, column title, format spec, scale)
COLUMNS: tuple[tuple[str, str, str, float], ...] = (
    ("fid", "FID", ".2f", 1.0),
    ("kid", "KID", ".3f", 1.0),  # large here: 128-d features of norm ~23, not Inception's
    ("precision", "PREC", ".3f", 1.0),
    ("recall", "RECALL", ".3f", 1.0),
    ("density", "DENSITY", ".3f", 1.0),
    ("coverage", "COVER", ".3f", 1.0),
    ("classes_covered", "CLASSES", "d", 1.0),
    ("class_kl", "CLASS_KL", ".3f", 1.0),
    ("confidence", "CONF", ".3f", 1.0),
)


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
