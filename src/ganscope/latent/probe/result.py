"""A probe's result: the measured curves, everything derived from them, and its files.

Only the mean-effect curves (and the settings) are stored; slopes, the null's statistics and the
real flags are recomputed from them on load, so a saved probe and a fresh one can never
disagree about the rule. ``save`` writes probe.csv, probe.json, heatmap.png and ranked.txt;
:func:`load_probe` reads probe.json back (the report, the server and ``latent check`` use it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganscope.errors import UserError
from ganscope.io import atomic_write_text
from ganscope.latent.probe import sentences
from ganscope.latent.probe.figure import DPI, heatmap_figure
from ganscope.latent.probe.stats import (
    CLASS_FLOOR,
    DEFAULT_ALPHA,
    IMAGE_FLOOR,
    fit_slopes,
    floors,
    is_real,
    null_threshold,
    spans,
)
from ganscope.render import save_figure

INFO_KEYS = ("run", "run_path", "model", "z_dim", "epoch", "checkpoint", "n_base", "seed",
             "n_null", "extractor", "seconds", "stages", "images", "created")


@dataclass
class ProbeResult:
    """Per-dim, per-effect slopes and their null; everything else is derived from these.

    ``curves`` (n_dims, V, E) and ``null_curves`` (n_null, V, E) hold the mean effect at each
    shift; ``slopes`` / ``null_slopes`` their per-unit fits; ``baseline_pixel_distance`` the mean
    |x_i - x_j| / 255 between unrelated samples (a scale for 'changes little'). Derived:
    ``span`` the measured change over the sweep, ``floor`` each measure's practical floor,
    ``size`` = |slope| / floor, ``beyond_null`` (|slope| > threshold) and ``real`` (beyond the
    null and >= floor: the one rule the sentences, the ranking and ``latent check`` use).
    """

    dims: list[int]
    values: list[float]
    effects: list[str]
    curves: np.ndarray
    null_curves: np.ndarray
    baseline_pixel_distance: float
    z_dim: int
    alpha: float = DEFAULT_ALPHA
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.curves = np.asarray(self.curves, dtype=np.float64)
        self.null_curves = np.asarray(self.null_curves, dtype=np.float64)
        self.slopes = fit_slopes(self.values, self.curves, self.effects)
        self.null_slopes = fit_slopes(self.values, self.null_curves, self.effects)
        a = np.abs(self.null_slopes)
        self.null_median = np.median(a, axis=0)
        self.null_q95 = np.quantile(a, 0.95, axis=0)
        self.threshold = null_threshold(self.null_slopes, len(self.dims), self.alpha, self.z_dim)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.ratio = np.where(self.null_median > 0,
                                  np.abs(self.slopes) / self.null_median,
                                  np.where(np.abs(self.slopes) > 0, np.inf, 0.0))
        self.span = spans(self.values, self.curves, self.effects)
        self.floor = floors(self.effects)
        self.size = np.abs(self.slopes) / self.floor
        self.beyond_null = np.abs(self.slopes) > self.threshold
        self.real = is_real(self.slopes, self.threshold, self.floor)

    # -- lookups --

    def _row(self, d: int) -> int:
        try:
            return self.dims.index(d)
        except ValueError:
            raise UserError(f"dim {d} was not probed (probed: {_dims_text(self.dims)})") from None

    def slope(self, d: int, effect: str) -> float:
        return float(self.slopes[self._row(d), self.effects.index(effect)])

    def is_real(self, d: int, effect: str) -> bool:
        return bool(self.real[self._row(d), self.effects.index(effect)])

    # -- outputs --

    def table(self) -> list[dict[str, Any]]:
        """One row per (dim, effect): slope per unit, null median / q95, threshold, ratio,
        span over the sweep, floor, size (|slope| / floor), beyond the null, real."""
        rows = []
        for i, d in enumerate(self.dims):
            for j, e in enumerate(self.effects):
                rows.append({"dim": d, "effect": e, "slope": float(self.slopes[i, j]),
                             "null_median": float(self.null_median[j]),
                             "null_q95": float(self.null_q95[j]),
                             "threshold": float(self.threshold[j]),
                             "ratio": float(self.ratio[i, j]), "real": bool(self.real[i, j]),
                             "span": float(self.span[i, j]), "floor": float(self.floor[j]),
                             "size": float(self.size[i, j]),
                             "beyond_null": bool(self.beyond_null[i, j])})
        return rows

    def score(self, d: int) -> tuple[bool, float]:
        """(has a real effect, largest size among its real effects, else among all)."""
        i = self._row(d)
        return sentences.score(self.size[i], self.real[i])

    def ranked(self) -> list[int]:
        """Dims with a real effect first, by their largest real effect size (|slope| / floor);
        then the rest by their largest size."""
        return sentences.ranked(self.dims, self.size, self.real)

    def sentence(self, d: int) -> str:
        """One line naming dim d's real effects (see :func:`sentences.sentence`)."""
        self._row(d)
        line = sentences.sentence(self, d)
        code = self.info.get("codes", {}).get(str(d))  # a conditional/InfoGAN run's code dims
        return line.replace(f"dim {d}:", f"dim {d} ({code}):", 1) if code else line

    # -- files --

    def to_json(self) -> dict[str, Any]:
        def r(a: np.ndarray) -> Any:
            return np.round(np.asarray(a, dtype=np.float64), 8).tolist()

        return {
            "experiment": "latent probe (issue 6)",
            **self.info,
            "dims": self.dims, "values": self.values, "effects": self.effects,
            "z_dim": self.z_dim, "alpha": self.alpha,
            "rule": "real: |slope| > max(null 95th percentile, null RMS * sqrt(z_dim) * "
                    "t), t: the 1 - alpha / n_dims quantile of |u_1| for u uniform on the unit "
                    f"sphere, and |slope| >= floor ({CLASS_FLOOR:g} for p_*, {IMAGE_FLOOR:g} "
                    "otherwise); ratio = |slope| / null median |slope|; size = |slope| / floor, "
                    "the ranking's key; span = mean effect at the largest shift minus at the "
                    "smallest (pixel_change: mean at the two ends)",
            "units": "slopes per unit shift of z[d]; p_*: probability, others: fraction of "
                     "full scale (0..1); pixel_change fitted against |shift|",
            "baseline_pixel_distance": round(self.baseline_pixel_distance, 8),
            "slopes": r(self.slopes), "null_slopes": r(self.null_slopes),
            "null_median": r(self.null_median), "null_q95": r(self.null_q95),
            "threshold": r(self.threshold), "ratio": r(np.minimum(self.ratio, 1e12)),
            "floor": r(self.floor), "span": r(self.span), "size": r(self.size),
            "beyond_null": self.beyond_null.tolist(), "real": self.real.tolist(),
            "curves": r(self.curves), "null_curves": r(self.null_curves),
            "ranked": self.ranked(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ProbeResult:
        keys = ("dims", "values", "effects", "curves", "null_curves", "z_dim",
                "baseline_pixel_distance")
        try:
            return cls(dims=[int(d) for d in obj["dims"]],
                       values=[float(v) for v in obj["values"]], effects=list(obj["effects"]),
                       curves=np.asarray(obj["curves"]),
                       null_curves=np.asarray(obj["null_curves"]),
                       baseline_pixel_distance=float(obj["baseline_pixel_distance"]),
                       z_dim=int(obj["z_dim"]),
                       alpha=float(obj.get("alpha", DEFAULT_ALPHA)),
                       info={k: v for k, v in obj.items() if k in INFO_KEYS})
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"probe.json is not a probe result (missing or bad {e}; need "
                            f"{', '.join(keys)}): run `ganscope latent probe` again") from None

    def save(self, out_dir: str | Path) -> list[Path]:
        """probe.csv, probe.json, heatmap.png and ranked.txt into ``out_dir`` (atomic writes)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        rows = self.table()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic_write_text(out / "probe.csv", buf.getvalue())
        atomic_write_text(out / "probe.json", json.dumps(self.to_json(), indent=1) + "\n")
        atomic_write_text(out / "ranked.txt",
                          "\n".join(self.sentence(d) for d in self.ranked()) + "\n")
        fig = save_figure(heatmap_figure(self), out / "heatmap.png", DPI)
        return [out / "probe.csv", out / "probe.json", fig, out / "ranked.txt"]


def load_probe(path: str | Path) -> ProbeResult:
    """A saved probe: ``probe.json`` or the folder holding it."""
    p = Path(path)
    if p.is_dir():
        p = p / "probe.json"
    if not p.is_file():
        raise UserError(f"no probe result at {p}: run `ganscope latent probe RUN` first")
    try:
        obj = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {p} ({e}): run `ganscope latent probe` again") from None
    if not isinstance(obj, dict):
        raise UserError(f"{p} is not a probe result: run `ganscope latent probe` again")
    return ProbeResult.from_json(obj)


def _dims_text(dims: Sequence[int]) -> str:
    if dims and list(dims) == list(range(dims[0], dims[-1] + 1)):
        return f"{dims[0]}-{dims[-1]}"
    return ",".join(map(str, dims))
