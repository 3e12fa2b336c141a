"""Class-balance statistics from a classifier's softmax over generated samples.

Mode collapse on a labelled data set shows up directly as missing classes: a generator can score
a fair FID while producing three of its ten classes. These numbers make that visible.
"""

from __future__ import annotations

import numpy as np


def _as_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"probs must be a non-empty 2-D (N, C) array, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("probs contain NaN or infinite values")
    if (p < -1e-6).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probs must be softmax outputs: non-negative rows that sum to 1")
    return p


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """Fraction of samples whose most probable class is c, for each class c (sums to 1)."""
    p = _as_probs(probs)
    counts = np.bincount(p.argmax(axis=1), minlength=p.shape[1])
    return counts / p.shape[0]


def class_stats(probs: np.ndarray, *, min_share: float = 0.1) -> dict[str, float | int | list]:
    """Histogram, covered-class count, KL to uniform (nats) and mean confidence.

    A class is covered when it holds at least ``min_share`` of its uniform share 1/C (1% of the
    samples for C=10, min_share=0.1), so a handful of stray samples does not count as a mode.
    ``class_kl`` = KL(hist || uniform) = sum_c h_c log(C h_c) with 0 log 0 = 0: 0 when perfectly
    balanced, log C when all samples fall in one class.
    """
    p = _as_probs(probs)
    n_classes = p.shape[1]
    hist = class_histogram(p)
    # Relative slack so e.g. exactly 1% is covered despite float rounding in min_share / C.
    covered = int((hist >= (min_share / n_classes) * (1 - 1e-9)).sum())
    nz = hist[hist > 0]
    kl = float(np.sum(nz * np.log(nz * n_classes)))
    return {
        "class_hist": [float(h) for h in hist],
        "classes_covered": covered,
        "class_kl": max(kl, 0.0),  # rounding can give -1e-17 for a uniform histogram
        "confidence": float(p.max(axis=1).mean()),
    }
