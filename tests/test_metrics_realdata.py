"""Sanity of the metrics on real Fashion-MNIST: the floor, and monotone responses to damage.

Real train images stand in for a perfect generator; damaging them (noise, blur, missing
classes) by increasing amounts must move each metric the way its definition says. Skipped when
the real data is not installed.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganscope.data.fashion_mnist import load_fashion_mnist
from ganscope.domains.fashion_mnist import reference_features
from ganscope.metrics.evaluate import evaluate_images

pytestmark = pytest.mark.realdata
N = 4000  # generated-side size: enough for stable trends, a few seconds per evaluation


@functools.lru_cache(maxsize=1)
def _train_split(real_dir):
    return load_fashion_mnist("train", real_dir)  # read once: each read decompresses 26 MB


def _train_subset(real_dir, n=N, classes=None, seed=1):
    ds = _train_split(real_dir)
    idx = torch.arange(len(ds.labels))
    if classes is not None:
        idx = idx[torch.isin(ds.labels, torch.tensor(classes))]
    g = torch.Generator().manual_seed(seed)
    return ds.images[idx[torch.randperm(len(idx), generator=g)[:n]]]


def _noisy(x, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = x.float() / 255 + sigma * torch.randn(x.shape, generator=g)
    return (y.clamp(0, 1) * 255).round().to(torch.uint8)


def _blurred(x, s):
    r = int(np.ceil(3 * s))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * s * s))
    k = k / k.sum()
    y = x.float()[:, None]
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return y[:, 0].round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def ref(real_fmnist, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GANSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield reference_features("test", 10000, str(real_fmnist))
    finally:
        mp.undo()


def score(images, ref, metrics=("fid", "kid", "prdc", "classes")):
    return evaluate_images(images, ref, metrics=metrics)["metrics"]


@pytest.fixture(scope="module")
def damaged(ref, real_fmnist):
    """FID and KID of the train subset damaged by (kind, level), each scored once per module:
    the floor test's worst case is the noise curve's first level (a KID is ~6 s of CPU)."""
    memo = {}

    def get(kind: str, level: float) -> dict:
        if (kind, level) not in memo:
            fn = _noisy if kind == "noise" else _blurred
            memo[kind, level] = score(fn(_train_subset(real_fmnist), level), ref, ("fid", "kid"))
        return memo[kind, level]

    return get


@pytest.fixture(scope="module")
def undamaged(ref, real_fmnist):
    """Every metric of the undamaged train subset: the floor, and each damage curve's start."""
    return score(_train_subset(real_fmnist), ref)


def test_floor_real_train_vs_real_test_is_near_zero(undamaged, damaged):
    m = undamaged
    worst = damaged("noise", 0.05)
    assert m["fid"] < 1.0 and m["fid"] < 0.2 * worst["fid"]
    # KID is unbiased: on two samples of one distribution it is zero within its own spread.
    assert abs(m["kid"]) < m["kid_std"] and abs(m["kid"]) < 0.05 * worst["kid"]
    assert m["precision"] > 0.9 and m["recall"] > 0.9 and m["coverage"] > 0.8
    assert 0.9 < m["density"] < 1.1
    assert m["classes_covered"] == 10 and m["class_kl"] < 0.01


@pytest.mark.parametrize("damage,levels", [("noise", (0.05, 0.15, 0.4)),
                                           ("blur", (0.6, 1.2, 2.5))])
def test_fid_rises_monotonically_with_noise_and_blur(undamaged, damaged, damage, levels):
    res = [undamaged] + [damaged(damage, s) for s in levels]
    for key in ("fid", "kid"):
        vals = [r[key] for r in res]
        assert all(a < b for a, b in zip(vals, vals[1:])), (key, vals)


def test_dropping_classes_lowers_recall_and_coverage_not_precision(ref, real_fmnist, undamaged):
    results = [undamaged]  # all ten classes kept: the same 4,000 images, already scored
    for keep in (range(8), range(5), range(2)):
        results.append(score(_train_subset(real_fmnist, classes=list(keep)), ref,
                             ("fid", "prdc", "classes")))
    fid = [r["fid"] for r in results]
    assert all(a < b for a, b in zip(fid, fid[1:])), fid
    for key in ("recall", "coverage"):
        vals = [r[key] for r in results]
        assert all(a > b for a, b in zip(vals, vals[1:])), (key, vals)
    # The classifier's own confusions (Shirt for T-shirt/Pullover/Coat) can add a class that
    # was dropped, at most one per set here; fewer classes kept must still mean fewer covered.
    covered = [r["classes_covered"] for r in results]
    assert covered[0] == 10 and all(a > b for a, b in zip(covered, covered[1:])), covered
    assert all(c <= k + 1 for c, k in zip(covered, (10, 8, 5, 2))), covered
    kl = [r["class_kl"] for r in results]
    assert all(a < b for a, b in zip(kl, kl[1:]))
    # What is generated is still real-looking: precision stays high throughout.
    assert min(r["precision"] for r in results) > 0.85
