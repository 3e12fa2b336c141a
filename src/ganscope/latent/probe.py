"""Measure what every latent dimension does, against random directions (issue 6).

The seeds (lab-spec E4) shifted five dims each, looked at 8 samples and guessed ("dim 20 turns
trousers into heels"); their guesses disagree. ``probe`` replaces the eye with numbers: for each
dim d it shifts z[:, d] by each of ``values`` on ``n_base`` base vectors, generates everything in
large batches and measures the effects in :data:`EFFECTS` (class probabilities from the shipped
classifier, brightness, region intensities, silhouette area, pixel change). Each effect's
per-unit slope is a least-squares fit of the mean effect over the shift.

Why a null: with a Gaussian prior no axis of z is special a priori, and *every* direction changes
something. The same sweep along ``n_null`` random unit directions gives the slopes one expects
from an arbitrary direction; a dim's effect is only called real when it stands out from them.
Rule: |slope| > threshold = max(the null's empirical 95th percentile of |slope|, |g| * t). For a
locally linear effect with gradient g over z, the slope along a random unit direction u is u.g,
so |g| = RMS(null slope) * sqrt(z_dim), and t is the (1 - alpha / n_dims) quantile of |u_1| for u
uniform on the sphere: a Bonferroni correction over the dims probed (family-wise ``alpha``,
default 5 %). With z_dim = 100 and 100 dims that is about 3.3 RMS, so a trained model shows few
false positives in 1,800 cells; with a tiny z_dim it stays exact (|u_1| <= 1). The reported
``ratio`` is |slope| / median null |slope| (1.0 is typical for a direction like any other; the
threshold is about 5x for z_dim = 100). Slopes are least-squares fits over the
whole sweep (+-3 by default): where an effect saturates, a dim's fitted slope is smaller than the
local derivative that a random direction (which moves each axis less) sees, so the comparison
errs on the side of calling fewer effects real.

Cost: (n_dims + n_null) * (n_values - 1) * n_base images plus n_base unswept ones. With the E1
MLP the classifier dominates (about 5,000 images/s on 2 cores): 100 dims, 32 null directions,
7 values and n_base = 256 is about 200k images, 40-60 s; n_base = 512 doubles it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ganscope.data import to_uint8
from ganscope.data.fashion_mnist import CLASSES
from ganscope.errors import UserError
from ganscope.training.run import Run, atomic_write_text

DEFAULT_VALUES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
DEFAULT_N_BASE = 256  # 512 doubles the time (~2 min for 100 dims) for ~1.4x less noise
DEFAULT_N_NULL = 32
DEFAULT_ALPHA = 0.05
DEFAULT_BATCH = 8192  # images generated and measured per chunk
FRAME = 4  # width of the border frame in pixels
AREA_THRESHOLD = 0.5 * 255  # a pixel belongs to the silhouette when brighter than half scale
PROBE_DIR = "latent-probe"
DPI = 110


class ExtractorLike(Protocol):
    def extract(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]: ...


# --- effects ----------------------------------------------------------------------------------


def class_effect_name(cls: str) -> str:
    """'T-shirt/top' -> 'p_T_shirt_top', 'Ankle boot' -> 'p_Ankle_boot' (CSV-safe names)."""
    return "p_" + re.sub(r"[^A-Za-z0-9]+", "_", cls).strip("_")


CLASS_EFFECTS = tuple(class_effect_name(c) for c in CLASSES)
REGIONS = ("top", "bottom", "left", "right", "centre", "border")
IMAGE_EFFECTS = ("brightness", *REGIONS, "area", "pixel_change")


def region_masks(h: int = 28, w: int = 28) -> dict[str, np.ndarray]:
    """Boolean masks (H, W) of the regions.

    top / bottom: rows [0, H/2) / [H/2, H); left / right: columns [0, W/2) / [W/2, W);
    centre: the central (H/2) x (W/2) block, rows and columns [H/4, H/4 + H/2) (14x14 at 28x28:
    7..20); border: the outer frame of FRAME = 4 pixels (rows or columns < 4 or >= H - 4).
    """
    r = np.arange(h)[:, None]
    c = np.arange(w)[None, :]
    full = np.ones((h, w), dtype=bool)
    return {
        "top": full & (r < h // 2), "bottom": full & (r >= h // 2),
        "left": full & (c < w // 2), "right": full & (c >= w // 2),
        "centre": ((r >= h // 4) & (r < h // 4 + h // 2) & (c >= w // 4) & (c < w // 4 + w // 2)),
        "border": (r < FRAME) | (r >= h - FRAME) | (c < FRAME) | (c >= w - FRAME),
    }


def _f(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float64) / 255.0


def _region_effect(name: str) -> Callable[..., np.ndarray]:
    def fn(images: np.ndarray, probs: np.ndarray | None = None,
           base: np.ndarray | None = None) -> np.ndarray:
        m = region_masks(*images.shape[1:])[name]
        return _f(images)[:, m].mean(axis=1)

    fn.__doc__ = f"mean intensity (0..1) of the {name} region, per image"
    return fn


def _class_effect(i: int) -> Callable[..., np.ndarray]:
    def fn(images: np.ndarray, probs: np.ndarray | None = None,
           base: np.ndarray | None = None) -> np.ndarray:
        if probs is None:
            raise ValueError("class effects need the classifier's probabilities")
        return np.asarray(probs, dtype=np.float64)[:, i]

    fn.__doc__ = f"classifier probability of {CLASSES[i]}, per image"
    return fn


def _brightness(images: np.ndarray, probs: np.ndarray | None = None,
                base: np.ndarray | None = None) -> np.ndarray:
    """mean pixel / 255, per image"""
    return _f(images).reshape(len(images), -1).mean(axis=1)


def _area(images: np.ndarray, probs: np.ndarray | None = None,
          base: np.ndarray | None = None) -> np.ndarray:
    """silhouette: fraction of pixels > 0.5 * 255, per image"""
    return (np.asarray(images).reshape(len(images), -1) > AREA_THRESHOLD).mean(axis=1)


def _pixel_change(images: np.ndarray, probs: np.ndarray | None = None,
                  base: np.ndarray | None = None) -> np.ndarray:
    """mean |x - x0| / 255 against the unswept image x0, per image"""
    if base is None:
        raise ValueError("pixel_change needs the unswept base images")
    return np.abs(_f(images) - _f(base)).reshape(len(images), -1).mean(axis=1)


#: name -> fn(images uint8 (N, H, W), probs (N, 10) or None, base uint8 (N, H, W) or None)
#: returning one value per image; the probe averages them over the base vectors.
EFFECTS: dict[str, Callable[..., np.ndarray]] = {
    **{name: _class_effect(i) for i, name in enumerate(CLASS_EFFECTS)},
    "brightness": _brightness,
    **{r: _region_effect(r) for r in REGIONS},
    "area": _area,
    "pixel_change": _pixel_change,
}
EFFECT_NAMES = tuple(EFFECTS)
CLASS_NAME = dict(zip(CLASS_EFFECTS, CLASSES))


def _stat_matrix(h: int, w: int) -> torch.Tensor:
    """(H*W, 7) weights: brightness and the six region means as one matmul on flat images."""
    masks = region_masks(h, w)
    cols = [np.full(h * w, 1.0 / (h * w))]
    for r in REGIONS:
        m = masks[r].ravel().astype(np.float64)
        cols.append(m / m.sum())
    return torch.from_numpy(np.stack(cols, axis=1) / 255.0).float()


def _chunk_means(images: torch.Tensor, probs: np.ndarray, base: torch.Tensor, groups: int,
                 W: torch.Tensor) -> np.ndarray:
    """Mean of every effect per group of N images: (groups, n_effects), in EFFECT_NAMES order.

    The same quantities as :data:`EFFECTS`, vectorised: the linear ones as one matmul.
    """
    n = base.shape[0]
    x = images.reshape(groups, n, -1).float()
    lin = (x @ W).mean(dim=1)  # (groups, 7)
    area = (x > AREA_THRESHOLD).float().mean(dim=2).mean(dim=1, keepdim=True)
    change = (x - base.reshape(1, n, -1).float()).abs().mean(dim=2).mean(dim=1, keepdim=True)
    p = probs.reshape(groups, n, -1).astype(np.float64).mean(axis=1)
    return np.concatenate([p, lin.double().numpy(), area.double().numpy(),
                           change.double().numpy() / 255.0], axis=1)


# --- the null and the statistics --------------------------------------------------------------


def unit_coordinate_quantile(z_dim: int, tail: float) -> float:
    """t with P(|u_1| > t) = tail for u uniform on the unit sphere of R^z_dim.

    u_1 has density proportional to (1 - t^2)^((Z - 3) / 2) on [-1, 1]; integrated numerically
    (midpoint rule, 200,000 cells), so no scipy is needed. For large Z it is N(0, 1/Z).
    """
    if z_dim < 2:
        return 1.0
    n = 200_000
    t = (np.arange(n) + 0.5) / n
    logd = (z_dim - 3) / 2 * np.log1p(-t * t)
    d = np.exp(logd - logd.max())
    sf = np.cumsum(d[::-1])[::-1]  # P(|u_1| >= t_i), unnormalised
    sf = sf / sf[0]
    i = int(np.searchsorted(-sf, -tail))  # first cell whose tail is <= the wanted one
    return float(min(t[min(i, n - 1)] + 0.5 / n, 1.0))


def null_threshold(null_slopes: np.ndarray, n_tests: int, alpha: float = DEFAULT_ALPHA,
                   z_dim: int | None = None) -> np.ndarray:
    """|slope| above which an effect is real, per column of ``null_slopes`` (n_null, E).

    max(the null's empirical 95th percentile, |g| * t) where, for a locally linear effect with
    gradient g over z, the slope along a random unit direction u is u.g: |g| is estimated as
    RMS(null slope) * sqrt(Z) and t is the (1 - alpha / n_tests) quantile of |u_1|
    (Bonferroni over the dims tested). For Z = 100 and 100 dims that is about 3.3 RMS.
    """
    a = np.abs(np.asarray(null_slopes, dtype=np.float64))
    z = z_dim if z_dim is not None else 100
    q95 = np.quantile(a, 0.95, axis=0)
    g = np.sqrt((a ** 2).mean(axis=0)) * math.sqrt(z)
    return np.maximum(q95, g * unit_coordinate_quantile(z, alpha / max(n_tests, 1)))


def fit_slopes(values: Sequence[float], curves: np.ndarray, effects: Sequence[str]
               ) -> np.ndarray:
    """Per-unit slopes of mean-effect curves (..., V, E) over the shift values.

    Least squares of the mean effect on v; ``pixel_change`` is a distance (0 at v = 0, growing
    both ways), so it is fitted through the origin against |v| instead.
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(curves, dtype=np.float64)
    vc = v - v.mean()
    out = np.tensordot(vc, c, axes=([0], [-2])) / (vc ** 2).sum()
    if "pixel_change" in effects:
        j = list(effects).index("pixel_change")
        out[..., j] = np.tensordot(np.abs(v), c[..., j], axes=([0], [-1])) / (v ** 2).sum()
    return out


@dataclass
class ProbeResult:
    """Per-dim, per-effect slopes and their null; everything else is derived from these.

    ``curves`` (n_dims, V, E) and ``null_curves`` (n_null, V, E) hold the mean effect at each
    shift; ``slopes`` / ``null_slopes`` their per-unit fits; ``baseline_pixel_distance`` the mean
    |x_i - x_j| / 255 between unrelated samples (a scale for 'changes little').
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
        self.real = np.abs(self.slopes) > self.threshold

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
        """One row per (dim, effect): slope per unit, null median / q95, threshold, ratio, real."""
        rows = []
        for i, d in enumerate(self.dims):
            for j, e in enumerate(self.effects):
                rows.append({"dim": d, "effect": e, "slope": float(self.slopes[i, j]),
                             "null_median": float(self.null_median[j]),
                             "null_q95": float(self.null_q95[j]),
                             "threshold": float(self.threshold[j]),
                             "ratio": float(self.ratio[i, j]), "real": bool(self.real[i, j])})
        return rows

    def score(self, d: int) -> tuple[bool, float]:
        """(has a real effect, strongest ratio among its real effects, else among all)."""
        i = self._row(d)
        r = self.ratio[i]
        real = self.real[i]
        return bool(real.any()), float(r[real].max() if real.any() else r.max())

    def ranked(self) -> list[int]:
        """Dims with a real effect first, by their strongest real |slope| / null median; then
        the rest by their strongest ratio."""
        return sorted(self.dims, key=lambda d: (not self.score(d)[0], -self.score(d)[1], d))

    def sentence(self, d: int) -> str:
        """One line: 'dim 20: + moves Trouser -> Sandal (+0.18 p per unit, 4.1x the null);
        brightness +2.0 %/unit'. Only real effects are named, + means increasing z[d]."""
        i = self._row(d)
        s, real, ratio = self.slopes[i], self.real[i], self.ratio[i]
        idx = {e: j for j, e in enumerate(self.effects)}
        parts = []
        cls = [idx[c] for c in CLASS_EFFECTS if c in idx]
        if cls and real[cls].any():
            # the named classes are real ones where there are (strongest by ratio), else the
            # largest raw move: a class with a big but ordinary slope is not the finding
            up = [j for j in cls if real[j] and s[j] > 0]
            down = [j for j in cls if real[j] and s[j] < 0]
            gain = (max(up, key=lambda j: ratio[j]) if up else max(cls, key=lambda j: s[j]))
            lose = (max(down, key=lambda j: ratio[j]) if down else min(cls, key=lambda j: s[j]))
            key = gain if up else lose
            parts.append(f"+ moves {CLASS_NAME[self.effects[lose]]} -> "
                         f"{CLASS_NAME[self.effects[gain]]} ({s[key]:+.2f} p per unit"
                         f"{'' if key == gain else ' for ' + CLASS_NAME[self.effects[lose]]}"
                         f", {ratio[key]:.1f}x the null)")
        for e in ("brightness", *REGIONS, "area"):
            j = idx.get(e)
            if j is not None and real[j]:
                label = "silhouette" if e == "area" else e
                parts.append(f"{label} {100 * s[j]:+.1f} %/unit ({ratio[j]:.1f}x)")
        j = idx.get("pixel_change")
        if j is not None and real[j]:
            parts.append(f"pixel change {100 * s[j]:.1f} %/unit ({ratio[j]:.1f}x)")
        if not parts:
            j = int(np.argmax(ratio))
            unit = "p" if self.effects[j].startswith("p_") else "x 100 %"
            val = s[j] if unit == "p" else 100 * s[j]
            return (f"dim {d}: nothing above the null (strongest: {self.effects[j]} "
                    f"{val:+.2f}{' p' if unit == 'p' else ' %'}/unit, {ratio[j]:.1f}x the null)")
        return f"dim {d}: " + "; ".join(parts)

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
                    "sphere; ratio = |slope| / null median |slope|",
            "units": "slopes per unit shift of z[d]; p_*: probability, others: fraction of "
                     "full scale (0..1); pixel_change fitted against |shift|",
            "baseline_pixel_distance": round(self.baseline_pixel_distance, 8),
            "slopes": r(self.slopes), "null_slopes": r(self.null_slopes),
            "null_median": r(self.null_median), "null_q95": r(self.null_q95),
            "threshold": r(self.threshold), "ratio": r(np.minimum(self.ratio, 1e12)),
            "real": self.real.tolist(),
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
        from ganscope.viz.curves import save_figure

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


INFO_KEYS = ("run", "run_path", "model", "z_dim", "epoch", "checkpoint", "n_base", "seed",
             "n_null", "extractor", "seconds", "stages", "images", "created")


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


# --- the probe --------------------------------------------------------------------------------


def check_probe_args(z_dim: int, dims: Sequence[int] | None, values: Sequence[float],
                     n_base: int, n_null: int) -> tuple[list[int], list[float]]:
    """Validated dims (all of z by default) and values; one UserError line otherwise."""
    if dims is None:
        dims = list(range(z_dim))
    dims = [int(d) for d in dims]
    if not dims:
        raise UserError("give at least one latent dim to probe, e.g. --dims 0-99")
    for d in dims:
        if not 0 <= d < z_dim:
            raise UserError(f"dim {d} is out of range for z of size {z_dim} (0..{z_dim - 1})")
    if len(set(dims)) != len(dims):
        raise UserError("a dim is listed twice in --dims: give each dim once")
    vals = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise UserError(f"shift value {v!r} is not a number") from None
        if not math.isfinite(f):
            raise UserError(f"shift value {v} is not a finite number")
        vals.append(f)
    if len(set(vals)) < 2:
        raise UserError("--values needs at least two different shifts to fit a slope, "
                        "e.g. --values=-3,-2,-1,0,1,2,3")
    if len(set(vals)) != len(vals):
        raise UserError("a shift is listed twice in --values: give each value once")
    if n_base < 2:
        raise UserError(f"--n-base must be at least 2, got {n_base}")
    if n_null < 4:
        raise UserError(f"--null must be at least 4 random directions, got {n_null}")
    return dims, vals


def null_directions(z_dim: int, n_null: int, seed: int) -> torch.Tensor:
    """``n_null`` random unit vectors in z-space, from their own seeded stream."""
    g = torch.Generator().manual_seed(seed + 1)
    u = torch.randn(n_null, z_dim, generator=g, dtype=torch.float64)
    return (u / u.norm(dim=1, keepdim=True)).float()


@torch.no_grad()
def probe(G: nn.Module, z_dim: int, *, extractor: ExtractorLike | None = None,
          n_base: int = DEFAULT_N_BASE, values: Sequence[float] = DEFAULT_VALUES, seed: int = 0,
          n_null: int = DEFAULT_N_NULL, dims: Sequence[int] | None = None,
          batch: int = DEFAULT_BATCH, alpha: float = DEFAULT_ALPHA, progress: bool = False
          ) -> ProbeResult:
    """Sweep each dim (z[:, d] + v) and ``n_null`` random unit directions over ``values`` on
    ``n_base`` base vectors z ~ N(0, I) (seeded), and measure every effect.

    Everything runs in chunks of about ``batch`` images (one forward of G, one classifier pass,
    one matmul for the statistics); ``info['stages']`` records the seconds of each stage.
    """
    dims, vals = check_probe_args(z_dim, dims, values, n_base, n_null)
    if extractor is None:
        from ganscope.metrics.extractor import load_extractor

        extractor = load_extractor()
    t_start = time.perf_counter()
    stages = {"generation": 0.0, "extraction": 0.0, "stats": 0.0}
    param = next(G.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")

    def gen(z: torch.Tensor) -> torch.Tensor:
        t = time.perf_counter()
        parts = [to_uint8(G(z[i:i + batch].to(device))).cpu() for i in range(0, len(z), batch)]
        x = torch.cat(parts)
        x = x[:, 0] if x.ndim == 4 else x
        stages["generation"] += time.perf_counter() - t
        return x

    def classify(x: torch.Tensor) -> np.ndarray:
        t = time.perf_counter()
        _, p = extractor.extract(x)
        stages["extraction"] += time.perf_counter() - t
        return np.asarray(p)

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_base, z_dim, generator=g)
    base = gen(z)
    H, W_ = base.shape[1:]
    Wm = _stat_matrix(H, W_)
    base_p = classify(base)
    t = time.perf_counter()
    base_means = _chunk_means(base, base_p, base, 1, Wm)[0]
    perm = torch.roll(torch.arange(n_base), 1)
    baseline = float((base.float() - base[perm].float()).abs().mean() / 255.0)
    stages["stats"] += time.perf_counter() - t

    U = torch.cat([torch.eye(z_dim)[dims], null_directions(z_dim, n_null, seed)])
    moved = [v for v in vals if v != 0.0]
    E = len(EFFECT_NAMES)
    curves = np.empty((len(U), len(vals), E))
    per_dir = len(moved) * n_base
    step = max(1, batch // max(per_dir, 1))
    vt = torch.tensor(moved, dtype=torch.float32)
    from tqdm import tqdm

    bar = tqdm(total=len(U), disable=not progress, desc="probing", unit="dir", leave=False)
    for k in range(0, len(U), step):
        u = U[k:k + step]  # (c, Z)
        c = len(u)
        lat = z[None, None] + vt[None, :, None, None] * u[:, None, None, :]  # (c, V', N, Z)
        x = gen(lat.reshape(-1, z_dim))
        p = classify(x)
        t = time.perf_counter()
        m = _chunk_means(x, p, base, c * len(moved), Wm).reshape(c, len(moved), E)
        stages["stats"] += time.perf_counter() - t
        j = 0
        for vi, v in enumerate(vals):
            if v == 0.0:
                curves[k:k + c, vi] = base_means
            else:
                curves[k:k + c, vi] = m[:, j]
                j += 1
        bar.update(c)
    bar.close()
    n_images = n_base * (1 + len(U) * len(moved))
    info = {"n_base": n_base, "seed": seed, "n_null": n_null, "z_dim": z_dim,
            "images": n_images, "seconds": round(time.perf_counter() - t_start, 3),
            "stages": {k: round(v, 3) for k, v in stages.items()}}
    name = getattr(extractor, "name", type(extractor).__name__)
    info["extractor"] = {"name": name, "sha256": getattr(extractor, "sha256", None)}
    return ProbeResult(dims=dims, values=vals, effects=list(EFFECT_NAMES),
                       curves=curves[:len(dims)], null_curves=curves[len(dims):],
                       baseline_pixel_distance=baseline, z_dim=z_dim, alpha=alpha, info=info)


# --- the heatmap ------------------------------------------------------------------------------


def heatmap_figure(res: ProbeResult) -> Figure:
    """Effects (rows) x dims (columns); colour = sign(slope) * |slope| / null median, clipped at
    the threshold's typical ratio x 2; real cells carry a black dot."""
    signed = np.sign(res.slopes) * np.minimum(res.ratio, 1e6)  # (D, E)
    thr_ratio = np.nanmedian(res.threshold / np.where(res.null_median > 0, res.null_median, 1))
    vmax = float(max(2 * thr_ratio, 4.0))
    D, E = signed.shape
    fig = Figure(figsize=(min(4 + 0.16 * D, 22), 1.6 + 0.32 * E))
    ax = fig.add_subplot()
    im = ax.imshow(signed.T, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                   interpolation="nearest")
    yy, xx = np.nonzero(res.real.T)
    ax.scatter(xx, yy, s=22, c="black", marker="o", edgecolors="white", linewidths=0.6)
    ax.set_yticks(range(E), res.effects, fontsize="small")
    every = 1 if D <= 40 else 5
    ticks = [i for i in range(D) if res.dims[i] % every == 0]
    ax.set_xticks(ticks, [str(res.dims[i]) for i in ticks], fontsize="small")
    ax.set_xlabel("latent dim")
    info = res.info
    title = (f"{info.get('run', 'generator')}: per-unit effect of each dim / median of "
             f"{info.get('n_null', len(res.null_slopes))} random directions "
             f"(n_base {info.get('n_base', '?')}; dot = real, family-wise "
             f"{100 * res.alpha:g} %)")
    ax.set_title(title, loc="left", fontsize="medium")
    cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    cb.set_label("signed |slope| / null median")
    fig.tight_layout()
    return fig


# --- runs -------------------------------------------------------------------------------------


def default_probe_dir(run: Run) -> Path:
    return run.figures / PROBE_DIR


def run_probe(run: Run, *, epoch: int | None = None, n_base: int = DEFAULT_N_BASE,
              values: Sequence[float] = DEFAULT_VALUES, dims: Sequence[int] | None = None,
              n_null: int = DEFAULT_N_NULL, seed: int = 0, out_dir: str | Path | None = None,
              progress: bool = False) -> tuple[ProbeResult, list[Path]]:
    """Probe a run's generator and write the four files (default RUN/figures/latent-probe/)."""
    from ganscope.latent.generate import available_epochs, load_generator
    from ganscope.training.run import now_iso

    cfg = run.config()
    z_dim = cfg.model.z_dim
    check_probe_args(z_dim, dims, values, n_base, n_null)  # fail before loading anything
    out = Path(out_dir) if out_dir is not None else default_probe_dir(run)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} must be a folder: the probe writes probe.csv, probe.json, "
                        "heatmap.png and ranked.txt into it")
    G = load_generator(run, epoch)
    if epoch is None:
        ck = run.last_checkpoint
        if not ck.is_file():
            ck = run.generator_checkpoint(available_epochs(run)[-1])
    else:
        ck = run.generator_checkpoint(epoch)
    res = probe(G, z_dim, n_base=n_base, values=values, seed=seed, n_null=n_null, dims=dims,
                progress=progress)
    res.info = {"run": run.name, "run_path": str(run.path), "model": cfg.model.name,
                "epoch": epoch if epoch is not None else run.meta().get("epochs_done"),
                "checkpoint": str(ck), **res.info, "created": now_iso()}
    return res, res.save(out)
