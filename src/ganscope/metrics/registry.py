"""Metrics by name over pre-extracted features (after stylegan2-ada-pytorch's ``metric_main``).

Every metric is a plain function ``(real, fake, seed) -> {key: value}`` over two
:class:`FeatureSet`; features are extracted once and shared by all metrics, and the real set's
Gaussian stats can be supplied precomputed (cached) so FID does not refit them on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ganscope.metrics.classes import class_stats
from ganscope.metrics.frechet import covariance_factor, feature_stats, frechet_distance
from ganscope.metrics.kid import kid
from ganscope.metrics.prdc import prdc, real_radii2
from ganscope.registry import Registry

MetricValue = float | int | list
MetricFn = Callable[["FeatureSet", "FeatureSet", int], dict[str, MetricValue]]

METRICS: Registry[MetricFn] = Registry("metric")
DEFAULT_METRICS: tuple[str, ...] = ("fid", "kid", "prdc", "classes")
PRDC_K = 5  # Naeem et al.'s k, the reference prdc package's default


@dataclass
class FeatureSet:
    """Classifier features (N, D) of one image set, its softmax (N, C) if known, and optionally
    precomputed ``mu``/``sigma`` (from :func:`feature_stats`) to reuse cached real stats."""

    features: np.ndarray
    probs: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    labels: np.ndarray | None = None  # (N,) the class each image was asked to be (conditional G)

    def __post_init__(self) -> None:
        if np.ndim(self.features) != 2:
            raise ValueError(f"features must be 2-D (N, D), got shape {np.shape(self.features)}")
        n, d = np.shape(self.features)
        if self.probs is not None and (np.ndim(self.probs) != 2 or np.shape(self.probs)[0] != n):
            raise ValueError(f"probs must be (N={n}, C), got shape {np.shape(self.probs)}")
        if (self.mu is None) != (self.sigma is None):
            raise ValueError("give both mu and sigma, or neither")
        if self.mu is not None and (np.shape(self.mu) != (d,) or np.shape(self.sigma) != (d, d)):
            raise ValueError(
                f"mu/sigma must be ({d},) and ({d}, {d}) to match the features, got "
                f"{np.shape(self.mu)} and {np.shape(self.sigma)}"
            )

    @cached_property
    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) in float64: the precomputed ones if given, else fitted once and cached."""
        if self.mu is not None and self.sigma is not None:
            return (np.asarray(self.mu, dtype=np.float64), np.asarray(self.sigma, dtype=np.float64))
        return feature_stats(self.features)

    def low_rank_factor(self) -> np.ndarray | None:
        """This set's :func:`covariance_factor` when it has fewer samples than dimensions and
        its stats are its features' own (not precomputed ones): the cheap route to FID."""
        n, d = np.shape(self.features)
        if self.mu is not None or n >= d:
            return None
        return covariance_factor(self.features)

    def knn_radii2(self, k: int) -> torch.Tensor:
        """PRDC's squared k-NN radii of this set, computed once per k: a reference set is scored
        at every evaluation of a run, and these depend on it alone."""
        memo = self.__dict__.setdefault("_knn_radii2", {})
        if k not in memo:
            memo[k] = real_radii2(self.features, k=k)
        return memo[k]


@METRICS.register("fid")
def _fid(real: FeatureSet, fake: FeatureSet, seed: int) -> dict[str, MetricValue]:
    """Frechet distance between Gaussians fitted to real and generated features (lower is better)"""
    return {"fid": _frechet(real, fake)}


def _frechet(a: FeatureSet, b: FeatureSet) -> float:
    """FID of two sets, through the smaller one's low-rank factor where it has one (FID is
    symmetric, so either side may be the second)."""
    fa, fb = a.low_rank_factor(), b.low_rank_factor()
    if fa is not None and (fb is None or fa.shape[0] < fb.shape[0]):
        return frechet_distance(*b.stats, *a.stats, factor2=fa)
    return frechet_distance(*a.stats, *b.stats, factor2=fb)


@METRICS.register("kid")
def _kid(real: FeatureSet, fake: FeatureSet, seed: int) -> dict[str, MetricValue]:
    """Kernel inception distance: unbiased polynomial-kernel MMD over subsets, mean and std"""
    mean, std = kid(real.features, fake.features, seed=seed)
    return {"kid": mean, "kid_std": std}


@METRICS.register("prdc")
def _prdc(real: FeatureSet, fake: FeatureSet, seed: int) -> dict[str, MetricValue]:
    """precision, recall, density and coverage from k-nearest-neighbour balls (k=5)"""
    # too few reals: no radii, and prdc's own message names both sides' counts
    radii2 = real.knn_radii2(PRDC_K) if len(real.features) > PRDC_K else None
    return dict(prdc(real.features, fake.features, k=PRDC_K, radii2=radii2))


@METRICS.register("classes")
def _classes(real: FeatureSet, fake: FeatureSet, seed: int) -> dict[str, MetricValue]:
    """classes covered, the class histogram and its KL from uniform (the classifier's labels)"""
    if fake.probs is None:
        raise ValueError("the 'classes' metric needs the fake set's class probabilities (probs)")
    return class_stats(fake.probs)


@METRICS.register("class_match")
def _class_match(real: FeatureSet, fake: FeatureSet, seed: int) -> dict[str, MetricValue]:
    """conditional runs: how often the classifier assigns a sample the class it was asked for"""
    if fake.probs is None or fake.labels is None:
        raise ValueError("the 'class_match' metric needs a conditional run's samples: the "
                         "class each was asked for and the classifier's probabilities")
    pred = np.asarray(fake.probs).argmax(1)
    asked = np.asarray(fake.labels)
    per_class = [float((pred[asked == k] == k).mean()) if (asked == k).any() else None
                 for k in range(int(np.asarray(fake.probs).shape[1]))]
    return {"class_match": float((pred == asked).mean()), "class_match_per_class": per_class}


@METRICS.register("intra_fid")
def _intra_fid(real: FeatureSet, fake: FeatureSet, seed: int) -> dict[str, MetricValue]:
    """conditional runs: FID within each class (real images of class k against samples asked
    for k), averaged over classes (Miyato & Koyama 2018)"""
    if real.labels is None or fake.labels is None:
        raise ValueError("the 'intra_fid' metric needs a conditional run's samples and a "
                         "labelled real set")
    rl, fl = np.asarray(real.labels), np.asarray(fake.labels)
    per: list[float | None] = []
    for k in range(int(max(rl.max(), fl.max())) + 1):
        r, f = real.features[rl == k], fake.features[fl == k]
        # a covariance needs a few samples; a class with fewer on either side is left out
        per.append(_frechet(FeatureSet(r), FeatureSet(f)) if len(r) > 2 and len(f) > 2
                   else None)
    done = [v for v in per if v is not None]
    if not done:
        raise ValueError("intra_fid found no class with 3 or more samples on both sides")
    return {"intra_fid": float(np.mean(done)), "intra_fid_per_class": per}


def compute_metrics(real: FeatureSet, fake: FeatureSet, names: Sequence[str] = DEFAULT_METRICS,
                    seed: int = 0) -> dict[str, MetricValue]:
    """Run the named metrics in order and merge their outputs into one flat dict.

    All names are resolved first, so a typo fails (ConfigError listing the valid names) before
    any expensive metric runs.
    """
    fns = [METRICS.get(name) for name in names]
    out: dict[str, MetricValue] = {}
    for fn in fns:
        out.update(fn(real, fake, seed))
    return out
