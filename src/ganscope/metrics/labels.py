"""Every metric's labels and number formats, in one table.

Readers: ``ganscope eval`` / ``compare`` (their columns, :mod:`ganscope.metrics.table`), the
comparisons over seeds (:mod:`ganscope.experiments.compare`: text, HTML reports, band figures),
the run report, the metrics figure, the 2-D lab's matrix, the training loop's eval line, and the
browser, which reads the same table as JSON from ``GET /api/metrics/labels``. A new metric is
one row here; a key without a row is shown by its name with a general number format.

Plain data (no torch): the server and the page read it without loading a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

GENERAL_FMT = ".4g"  # a key without a row
KINDS = ("images", "points", "run")  # what G produces (a domain's kind); run: one number per run


@dataclass(frozen=True)
class MetricLabel:
    """One metric: how every table, figure, report and the page name and format it."""

    key: str
    #: comparisons over seeds, reports, figure axes ("classes covered")
    label: str
    #: a value in comparisons (mean, std, interval over seeds) and in reports
    fmt: str
    #: True: lower is better; False: higher is better; None: neither
    lower_is_better: bool | None
    #: images | points (the domain kind whose evaluation gives it) | run (a run's summary)
    kind: str
    #: the column title in `ganscope eval` / `compare` (None: not a column there)
    column: str | None = None
    #: one evaluation's value in that column (None: ``fmt``)
    column_fmt: str | None = None
    #: the short label of the 2-D lab's matrix (None: ``label``)
    short: str | None = None
    #: the matrix's "mean ± std" formats
    spread_fmt: tuple[str, str] = (".3g", ".2g")
    #: "%": shown as a percentage (x ``scale``) where it is shown short (matrix, browser)
    unit: str = ""
    scale: float = 1.0
    #: the browser's metric-table header (None: not a column there)
    web: str | None = None
    #: the browser's decimals for this metric (None: the page's general number format)
    web_decimals: int | None = None
    #: the browser shows "value/metrics[web_of]" when the evaluation has that key
    web_of: str | None = None
    #: its name in the training loop's eval line (None: not printed there), and its format
    log: str | None = None
    log_fmt: str = ".4g"

    @property
    def short_label(self) -> str:
        return self.short if self.short is not None else self.label

    @property
    def column_spec(self) -> str:
        return self.column_fmt if self.column_fmt is not None else self.fmt

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "short": self.short_label,
                "fmt": self.fmt, "lower_is_better": self.lower_is_better, "kind": self.kind,
                "column": self.column, "column_fmt": self.column_spec,
                "spread_fmt": list(self.spread_fmt), "unit": self.unit, "scale": self.scale,
                "web": self.web, "web_decimals": self.web_decimals, "web_of": self.web_of,
                "log": self.log, "log_fmt": self.log_fmt}


_ROWS = (
    MetricLabel("fid", "FID", ".2f", True, "images", column="FID", web="FID", log="fid"),
    MetricLabel("best_fid", "best FID", ".2f", True, "run"),
    # large here: 128-d features of norm ~23, not Inception's
    MetricLabel("kid", "KID", ".3f", True, "images", column="KID", web="KID", log="kid"),
    MetricLabel("precision", "precision", ".3f", False, "images", column="PREC", web="prec",
                log="precision"),
    MetricLabel("recall", "recall", ".3f", False, "images", column="RECALL", web="recall",
                log="recall"),
    MetricLabel("density", "density", ".3f", False, "images", column="DENSITY", web="density"),
    MetricLabel("coverage", "coverage", ".3f", False, "images", column="COVER", web="cover",
                log="coverage"),
    # a mean over seeds has decimals, one evaluation's count does not
    MetricLabel("classes_covered", "classes covered", ".2f", False, "images", column="CLASSES",
                column_fmt="d", web="classes", log="classes", log_fmt=""),
    MetricLabel("class_kl", "class KL", ".3f", True, "images", column="CLASS_KL"),
    MetricLabel("class_match", "class match", ".3f", False, "images", column="MATCH",
                web="match", log="class_match"),
    MetricLabel("intra_fid", "intra-class FID", ".2f", True, "images", column="INTRA_FID",
                web="intra-FID", log="intra_fid"),
    MetricLabel("confidence", "confidence", ".3f", None, "images", column="CONF"),
    MetricLabel("modes_covered", "modes", ".2f", False, "points", spread_fmt=(".1f", ".1f"),
                web="modes", web_of="n_modes", log="modes_covered"),
    MetricLabel("modes_covered_any", "modes (any)", ".2f", False, "points",
                spread_fmt=(".1f", ".1f")),
    MetricLabel("hq_fraction", "HQ fraction", ".3f", False, "points", short="% HQ",
                spread_fmt=(".1f", ".1f"), unit="%", scale=100.0, web="% HQ", web_decimals=1,
                log="hq_fraction"),
    MetricLabel("reverse_kl", "reverse KL", ".3g", True, "points", web="rev. KL",
                log="reverse_kl"),
    MetricLabel("sliced_wasserstein", "sliced W1", ".3g", True, "points", web="sliced W1",
                log="sliced_wasserstein"),
    MetricLabel("energy_distance", "energy distance", ".3g", True, "points", short="energy",
                web="energy"),
    MetricLabel("mmd_rbf", "MMD^2", ".3g", True, "points", web="MMD²"),
    MetricLabel("loss_d", "loss D (last epoch)", ".4f", None, "run"),
    MetricLabel("loss_g", "loss G (last epoch)", ".4f", None, "run"),
)

#: key -> its row, in the standard order (every table shows its metrics in this order)
METRIC_LABELS: dict[str, MetricLabel] = {r.key: r for r in _ROWS}


def metric_label(key: str) -> str:
    """The metric's label ("classes covered"); an unknown key is its own label."""
    row = METRIC_LABELS.get(key)
    return row.label if row else key


def short_label(key: str) -> str:
    row = METRIC_LABELS.get(key)
    return row.short_label if row else key


def metric_spec(key: str) -> str:
    """The format of a value in comparisons and reports (".2f"; a general one if unknown)."""
    row = METRIC_LABELS.get(key)
    return row.fmt if row else GENERAL_FMT


def fmt(key: str, v: float | None) -> str:
    """A value as comparisons show it; '-' for a missing or non-finite one."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, metric_spec(key))


def lower_is_better(key: str) -> bool | None:
    row = METRIC_LABELS.get(key)
    return row.lower_is_better if row else None


def better_hint(key: str) -> str:
    """' (lower is better)', ' (higher is better)' or ''."""
    lower = lower_is_better(key)
    return "" if lower is None else " (lower is better)" if lower else " (higher is better)"


def axis_label(key: str) -> str:
    """A figure axis: the label and which way is better ("FID (lower is better)")."""
    return metric_label(key) + better_hint(key)


def metric_keys(kind: str) -> tuple[str, ...]:
    """The keys of one kind, in the standard order."""
    return tuple(k for k, r in METRIC_LABELS.items() if r.kind == kind)


def spread_text(key: str, mean: float, std: float) -> str:
    """'4.3 ± 0.5' as the 2-D lab's matrix shows a mean and std over seeds ('-' if no mean)."""
    if not math.isfinite(mean):
        return "-"
    row = METRIC_LABELS.get(key)
    (m_spec, s_spec), scale = (row.spread_fmt, row.scale) if row else ((".3g", ".2g"), 1.0)
    if scale != 1.0:
        mean, std = scale * mean, scale * std
    return f"{format(mean, m_spec)} ± {format(std, s_spec)}"


def eval_line_parts(metrics: dict[str, Any]) -> list[str]:
    """The training loop's eval line: "fid 226.1", ..., "classes 7", for the keys present."""
    return [f"{r.log} {format(metrics[k], r.log_fmt)}" for k, r in METRIC_LABELS.items()
            if r.log is not None and k in metrics]


def labels_json() -> dict[str, Any]:
    """The table for the browser (``GET /api/metrics/labels``), rows in the standard order."""
    return {"metrics": [r.to_json() for r in _ROWS], "general_fmt": GENERAL_FMT}
