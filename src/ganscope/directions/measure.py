"""What a walk along a latent direction does, in numbers.

A walk moves N latents along a unit direction d: z_i + s d for each step s (in units of z's
standard deviation, since z ~ N(0, I)). At every step the generated faces are scored (the
attribute classifier's probabilities and the yaw proxy, or any scorer) and compared with the
unedited faces (step 0: z_i itself). :func:`measure_walk` returns:

- ``curve``: the mean score of every column at every step (S, A), and its standard deviation;
- the target column's **monotonicity**: Spearman's rank correlation of the mean curve with the
  step, and the number of consecutive steps where the mean does not rise (0 = strictly rising),
  plus the share of walked samples whose own curve never falls by more than ``tol``;
- **side effects**: every column's change of the mean from the first to the last step (the
  target's own change is the edit's effect; the others are the side effects; the largest by
  absolute size is named);
- **distance**: how far the faces move from the unedited ones, per step: the root-mean-square
  pixel difference (0..255 scale), and the L2 distance of a feature vector (the classifier's
  128-d penultimate activations), both also relative to the mean distance between two
  different random faces of the same generator (1.0 = as far as swapping in another face).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganscope.sampling import sample, to_floats

Scorer = Callable[[torch.Tensor], torch.Tensor]
Features = Callable[[torch.Tensor], torch.Tensor]


def walk_latents(z: torch.Tensor, vector: np.ndarray | torch.Tensor, steps: Sequence[float]
                 ) -> torch.Tensor:
    """(S, N, z_dim): z + s * unit(vector) for each step s."""
    v = torch.as_tensor(np.asarray(vector, dtype=np.float64)).float().reshape(-1)
    n = float(v.norm())
    if n == 0 or not np.isfinite(n):
        raise ValueError("the direction vector is zero or not finite")
    if v.shape[0] != z.shape[1]:
        raise ValueError(f"the direction has {v.shape[0]} entries, z has {z.shape[1]}")
    v = v / n
    return torch.stack([z + float(s) * v for s in steps])


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 for a constant input."""
    def ranks(a: np.ndarray) -> np.ndarray:
        order = np.argsort(a, kind="stable")
        r = np.empty(len(a))
        r[order] = np.arange(len(a), dtype=float)
        for v in np.unique(a):  # ties share their mean rank
            m = a == v
            if m.sum() > 1:
                r[m] = r[m].mean()
        return r

    rx, ry = ranks(np.asarray(x, float)), ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else 0.0


def monotonicity(steps: Sequence[float], curve: Sequence[float]) -> dict[str, Any]:
    """Spearman of the curve with the steps, and how many consecutive steps fail to rise."""
    c = np.asarray(curve, dtype=float)
    order = np.argsort(np.asarray(steps, dtype=float), kind="stable")
    c = c[order]
    diffs = np.diff(c)
    bad = int((diffs <= 0).sum())
    return {"spearman": spearman(np.asarray(steps, float)[order], c),
            "non_increasing_steps": bad, "monotonic": bad == 0,
            "smallest_rise": float(diffs.min()) if len(diffs) else None}


def side_effects(curve: np.ndarray, columns: Sequence[str], target: str | None,
                 skip: Sequence[str] = ()) -> dict[str, Any]:
    """Change of each column's mean from the first to the last step; the target's change and
    the largest other change (by absolute size, ignoring ``skip`` columns, e.g. ones in other
    units)."""
    delta = {c: float(curve[-1, j] - curve[0, j]) for j, c in enumerate(columns)}
    others = {c: v for c, v in delta.items() if c != target and c not in skip}
    largest = max(others, key=lambda c: abs(others[c])) if others else None
    return {"delta": delta, "target_delta": delta.get(target) if target else None,
            "largest": largest, "largest_delta": others[largest] if largest else None}


@dataclass
class WalkMeasurement:
    steps: list[float]
    columns: list[str]
    target: str | None
    curve: np.ndarray  # (S, A) mean score per step and column
    curve_std: np.ndarray  # (S, A)
    pixel_rms: np.ndarray  # (S,) mean RMS pixel difference from the unedited faces, 0..255
    feature_dist: np.ndarray | None  # (S,) mean feature L2 from the unedited faces
    pixel_ref: float  # mean RMS pixel difference between two different random faces
    feature_ref: float | None
    n: int
    strip: torch.Tensor  # uint8 (S, n_strip, C, H, W): the first n_strip samples' frames
    monotone_share: float | None  # share of samples whose own target curve never drops > tol
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def monotonicity(self) -> dict[str, Any] | None:
        if self.target is None:
            return None
        return monotonicity(self.steps, self.curve[:, self.columns.index(self.target)])

    def side_effects(self, skip: Sequence[str] = ()) -> dict[str, Any]:
        return side_effects(self.curve, self.columns, self.target, skip)

    def to_json(self, skip: Sequence[str] = ()) -> dict[str, Any]:
        rel_px = self.pixel_rms / self.pixel_ref if self.pixel_ref > 0 else None
        out: dict[str, Any] = {
            "steps": self.steps, "columns": self.columns, "target": self.target, "n": self.n,
            "curve": {c: [round(float(v), 6) for v in self.curve[:, j]]
                      for j, c in enumerate(self.columns)},
            "curve_std": {c: [round(float(v), 6) for v in self.curve_std[:, j]]
                          for j, c in enumerate(self.columns)},
            "monotonicity": self.monotonicity,
            "per_sample_monotonic_share": self.monotone_share,
            "side_effects": self.side_effects(skip),
            "distance": {
                "pixel_rms": [round(float(v), 4) for v in self.pixel_rms],
                "pixel_rms_relative": (None if rel_px is None
                                       else [round(float(v), 4) for v in rel_px]),
                "pixel_rms_between_random_faces": round(self.pixel_ref, 4),
                "feature_l2": (None if self.feature_dist is None
                               else [round(float(v), 4) for v in self.feature_dist]),
                "feature_l2_relative": (
                    None if self.feature_dist is None or not self.feature_ref
                    else [round(float(v / self.feature_ref), 4) for v in self.feature_dist]),
                "feature_l2_between_random_faces": (None if self.feature_ref is None
                                                    else round(self.feature_ref, 4)),
            },
            **self.info,
        }
        return out


def _generate(G: nn.Module, z: torch.Tensor, batch_size: int, device: str | torch.device
              ) -> torch.Tensor:
    return sample(G, z, to_samples=to_floats, batch_size=batch_size, device=device)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _pairs_distance(x: torch.Tensor, f: torch.Tensor | None) -> tuple[float, float | None]:
    """Mean distance between face i and face i+1 (different random latents)."""
    if x.shape[0] < 2:
        return 0.0, None
    a, b = x[:-1], x[1:]
    px = float(((a - b) * 127.5).pow(2).flatten(1).mean(1).sqrt().mean())
    fd = None if f is None else float((f[:-1] - f[1:]).norm(dim=1).mean())
    return px, fd


@torch.no_grad()
def measure_walk(G: nn.Module, z: torch.Tensor, vector: np.ndarray | torch.Tensor,
                 steps: Sequence[float], scorer: Scorer, columns: Sequence[str],
                 target: str | None = None, features: Features | None = None,
                 n_strip: int = 0, batch_size: int = 256, device: str | torch.device = "cpu",
                 tol: float = 0.01, progress: bool = False) -> WalkMeasurement:
    """Walk every latent in ``z`` (N, z_dim) along ``vector`` by ``steps`` and measure.

    ``scorer(images in [-1, 1]) -> (N, A)`` with column names ``columns``; ``features`` (e.g.
    the classifier's penultimate layer) gives the feature distance; ``n_strip`` first samples'
    frames are kept as uint8 for the strip and the GIF.
    """
    steps = [float(s) for s in steps]
    if not steps:
        raise ValueError("a walk needs at least one step")
    columns = list(columns)
    if target is not None and target not in columns:
        raise ValueError(f"target {target!r} is not one of the scorer's columns")
    zs = walk_latents(z, vector, steps)
    S, N = zs.shape[0], zs.shape[1]
    x0 = _generate(G, z, batch_size, device)
    f0 = features(x0).float() if features is not None else None
    pixel_ref, feature_ref = _pairs_distance(x0, f0)
    scores = torch.zeros(S, N, len(columns), dtype=torch.float64)
    pix = np.zeros(S)
    feat = np.zeros(S) if features is not None else None
    strip = []
    it = tqdm(range(S), desc="walking", unit="step", leave=False, disable=not progress)
    for k in it:
        x = _generate(G, zs[k], batch_size, device)
        s = torch.as_tensor(scorer(x)).detach().double().cpu().reshape(N, -1)
        if s.shape[1] != len(columns):
            raise ValueError(f"the scorer gave {s.shape[1]} columns for {len(columns)} names")
        scores[k] = s
        pix[k] = float(((x - x0) * 127.5).pow(2).flatten(1).mean(1).sqrt().mean())
        if features is not None:
            assert feat is not None and f0 is not None
            feat[k] = float((features(x).float() - f0).norm(dim=1).mean())
        if n_strip:
            strip.append(_to_uint8(x[:n_strip]))
    curve = scores.mean(1).numpy()
    curve_std = scores.std(1, unbiased=False).numpy()
    share = None
    if target is not None:
        order = np.argsort(steps, kind="stable")
        per = scores[:, :, columns.index(target)].numpy()[order]  # (S, N)
        share = float((np.diff(per, axis=0) >= -tol).all(axis=0).mean()) if S > 1 else 1.0
    return WalkMeasurement(
        steps=steps, columns=columns, target=target, curve=curve, curve_std=curve_std,
        pixel_rms=pix, feature_dist=feat, pixel_ref=pixel_ref, feature_ref=feature_ref, n=N,
        strip=torch.stack(strip) if strip else torch.zeros(0, dtype=torch.uint8),
        monotone_share=share, info={"per_sample_tolerance": tol})
