"""The metric math on numbers: FID against pytorch-fid and closed forms, KID and PRDC on
hand-computed cases, class statistics, and the metric registry."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from ganscope.errors import ConfigError
from ganscope.metrics import registry
from ganscope.metrics.classes import class_histogram, class_stats
from ganscope.metrics.frechet import covariance_factor, feature_stats, frechet_distance
from ganscope.metrics.kid import kid
from ganscope.metrics.prdc import prdc, real_radii2
from ganscope.metrics.registry import (
    DEFAULT_METRICS,
    METRICS,
    FeatureSet,
    compute_metrics,
)

# --------------------------------------------------------------------------------------------
# FID


@pytest.fixture(scope="module")
def reference_fid():
    """pytorch-fid's ``calculate_frechet_distance``, compiled alone from its source file.

    ``import pytorch_fid.fid_score`` imports torchvision at module level (for the Inception model
    the tests never use), and pytorch-fid is installed ``--no-deps``, so that import fails. The
    function itself only needs ``np`` and ``scipy.linalg``: take its ``def`` out of the file with
    ``ast`` and compile it in a namespace providing exactly those two names.
    """
    import scipy.linalg as scipy_linalg  # a dev dependency: never skipped

    # pytorch-fid is installed by `make` (--no-deps, see Makefile), not by the dev extra
    pytorch_fid = pytest.importorskip("pytorch_fid", reason="pytorch-fid (the independent FID "
                                      "reference) is not installed: make setup")
    path = Path(pytorch_fid.__file__).parent / "fid_score.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    fn = next(node for node in tree.body
              if isinstance(node, ast.FunctionDef) and node.name == "calculate_frechet_distance")
    namespace = {"np": np, "linalg": scipy_linalg}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["calculate_frechet_distance"]


def gaussian_features(rng: np.random.Generator, n: int, d: int, shift: float = 0.0,
                      rank: int | None = None) -> np.ndarray:
    """Correlated features: standard normals through a random (optionally low-rank) mixing."""
    r = d if rank is None else rank
    mix = rng.standard_normal((r, d)) / math.sqrt(r)
    return (rng.standard_normal((n, r)) @ mix + shift).astype(np.float32)


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    ("d", "n1", "n2", "shift", "rank"),
    [
        (8, 500, 700, 0.3, None),
        (8, 2000, 1000, 0.0, None),
        (128, 2000, 2000, 0.1, None),
        (128, 1000, 1500, 0.05, 32),  # rank-deficient covariances (singular product)
        (128, 100, 120, 0.2, None),  # N < D: nearly singular sample covariances
    ],
)
def test_fid_matches_pytorch_fid(reference_fid, d, n1, n2, shift, rank):
    rng = np.random.default_rng(d * 1000 + n1)
    a = gaussian_features(rng, n1, d)
    b = gaussian_features(rng, n2, d, shift=shift, rank=rank)
    mu1, s1 = feature_stats(a)
    mu2, s2 = feature_stats(b)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = float(reference_fid(mu1, s1, mu2, s2))
    assert ours > 0.1
    assert ours == pytest.approx(ref, rel=1e-4)


# The low-rank route (factor2) against the full one: the same trace, another rounding. Measured
# on an AMD EPYC (AVX2): at most 3.9e-8 relative over these cases and D = 2048 with 10 and 64
# samples; 1e-6 leaves 25x. A wrong factor (uncentred, or N instead of N - 1) is off by >1e-3.
LOW_RANK_REL = 1e-6


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    ("d", "n1", "n2", "shift", "rank"),
    [
        (128, 2000, 50, 0.1, None),  # a few generated samples against a full reference
        (256, 3000, 20, 0.0, None),
        (128, 1000, 60, 0.05, 32),  # and a rank-deficient generator
        (128, 100, 120, 0.2, None),  # N < D on both sides
    ],
)
def test_fid_through_the_small_sides_factor_matches_pytorch_fid(reference_fid, d, n1, n2, shift,
                                                                 rank):
    rng = np.random.default_rng(d * 1000 + n1)
    a = gaussian_features(rng, n1, d)
    b = gaussian_features(rng, n2, d, shift=shift, rank=rank)
    mu1, s1 = feature_stats(a)
    mu2, s2 = feature_stats(b)
    c = covariance_factor(b)
    np.testing.assert_allclose(c.T @ c, s2, rtol=1e-9, atol=1e-12)
    low = frechet_distance(mu1, s1, mu2, s2, factor2=c)
    assert low == pytest.approx(float(reference_fid(mu1, s1, mu2, s2)), rel=1e-4)
    assert low == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=LOW_RANK_REL)
    # the factor is what the value comes from (a wrong one moves it), and a tall one is ignored
    assert frechet_distance(mu1, s1, mu2, s2, factor2=c * 1.01) != pytest.approx(low, rel=1e-3)
    if n1 >= d:  # a tall factor: the full route, the factor unused
        assert frechet_distance(mu2, s2, mu1, s1, factor2=covariance_factor(a) * 1.01) == \
            frechet_distance(mu2, s2, mu1, s1)


def test_the_fid_metric_takes_the_smaller_sides_factor(monkeypatch):
    """compute_metrics' FID goes through the side with fewer samples than dimensions (either
    side: FID is symmetric), not through precomputed stats, and gives the full route's value."""
    rng = np.random.default_rng(7)
    big, small = gaussian_features(rng, 900, 64), gaussian_features(rng, 30, 64, shift=0.3)
    full = frechet_distance(*feature_stats(big), *feature_stats(small))
    seen = []

    def spy(*args, factor2=None):
        seen.append(None if factor2 is None else factor2.shape)
        return frechet_distance(*args, factor2=factor2)

    monkeypatch.setattr(registry, "frechet_distance", spy)
    for real, fake in ((big, small), (small, big)):
        fid = compute_metrics(FeatureSet(real), FeatureSet(fake), ["fid"])["fid"]
        assert fid == pytest.approx(full, rel=LOW_RANK_REL)
    assert seen == [(30, 64), (30, 64)]
    tiny = gaussian_features(rng, 20, 64)
    compute_metrics(FeatureSet(tiny), FeatureSet(small), ["fid"])
    assert seen[-1] == (20, 64)  # both small: the smaller one
    # precomputed stats (a cached reference) are not its features' own: no factor from them
    ref = FeatureSet(small, mu=np.zeros(64), sigma=np.eye(64))
    compute_metrics(ref, FeatureSet(big), ["fid"])
    assert seen[-1] is None


def test_feature_stats_match_numpy():
    x = np.random.default_rng(0).standard_normal((300, 5)).astype(np.float32)
    mu, sigma = feature_stats(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    assert mu.shape == (5,) and sigma.shape == (5, 5)
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10)


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric():
    rng = np.random.default_rng(1)
    a = feature_stats(gaussian_features(rng, 1000, 64))
    b = feature_stats(gaussian_features(rng, 800, 64, shift=0.2))
    assert frechet_distance(*a, *a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(*a, *b) == pytest.approx(frechet_distance(*b, *a), rel=1e-9)


def test_fid_closed_form_for_diagonal_gaussians():
    # For diagonal covariances sqrt(S1 S2) = diag(sqrt(a b)), so
    # FID = ||mu1 - mu2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    a = np.array([1.0, 4.0, 9.0, 0.25])
    b = np.array([4.0, 1.0, 9.0, 0.0])  # includes a zero variance
    mu1 = np.array([0.0, 1.0, 2.0, 3.0])
    mu2 = np.array([1.0, 1.0, 0.0, 3.0])
    # ||dmu||^2 = 1 + 0 + 4 + 0 = 5; sum (sqrt a - sqrt b)^2 = 1 + 1 + 0 + 0.25 = 2.25
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(7.25, rel=1e-12)
    # Means only: identity covariances leave exactly ||dmu||^2.
    assert frechet_distance(mu1, np.eye(4), mu2, np.eye(4)) == pytest.approx(5.0, rel=1e-12)


def test_fid_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mean"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="2 samples"):
        feature_stats(np.zeros((1, 3)))


# --------------------------------------------------------------------------------------------
# KID


def mmd2_explicit(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> float:
    """The unbiased MMD^2 by plain double loops, with k(a, b) = (gamma a.b + coef0)^degree."""
    g = 1.0 / x.shape[1] if gamma is None else gamma

    def k(a, b):
        return (g * float(np.dot(a, b)) + coef0) ** degree

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def stylegan2_ada_subset_kid(x: np.ndarray, y: np.ndarray) -> float:
    """One subset of stylegan2-ada-pytorch's ``compute_kid`` (equal sizes m, gamma 1/D, cubic)."""
    n, m = x.shape[1], x.shape[0]
    a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
    b = (x @ y.T / n + 1) ** 3
    return float(((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m)


def test_kid_hand_computed_1d():
    # D=1 so gamma = 1, k(a, b) = (ab + 1)^3. x = {0, 1, 2}, y = {1, 3}.
    # sum_{i!=j} k(x_i, x_j) = 2 (k(0,1) + k(0,2) + k(1,2)) = 2 (1 + 1 + 27) = 58 -> 58/6
    # sum_{i!=j} k(y_i, y_j) = 2 k(1,3) = 2 * 64 = 128                            -> 128/2
    # sum k(x_i, y_j) = (1 + 1) + (8 + 64) + (27 + 343) = 444                      -> 2*444/6
    # MMD^2 = 29/3 + 64 - 148 = -223/3 (the unbiased estimate may be negative).
    x = np.array([[0.0], [1.0], [2.0]])
    y = np.array([[1.0], [3.0]])
    mean, std = kid(x, y)
    assert mean == pytest.approx(-223 / 3, rel=1e-12)
    assert std == 0.0
    assert mmd2_explicit(x, y) == pytest.approx(-223 / 3, rel=1e-12)


def test_kid_small_unequal_samples_equal_the_full_sample_estimate():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4))
    y = rng.standard_normal((7, 4)) + 0.5
    mean, std = kid(x, y)  # subset_size 1000 > both sides: every side is used whole
    assert mean == pytest.approx(mmd2_explicit(x, y), rel=1e-10)
    assert std == 0.0
    # Other kernel parameters go through too.
    mean2, _ = kid(x, y, degree=2, gamma=0.5, coef0=0.0)
    assert mean2 == pytest.approx(mmd2_explicit(x, y, degree=2, gamma=0.5, coef0=0.0), rel=1e-10)


def test_kid_matches_stylegan2_ada_formula_on_equal_sizes():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 16))
    y = rng.standard_normal((40, 16)) * 1.2
    mean, _ = kid(x, y, subset_size=40)
    assert mean == pytest.approx(stylegan2_ada_subset_kid(y, x), rel=1e-10)
    assert mean == pytest.approx(mmd2_explicit(x, y), rel=1e-10)


@pytest.mark.parametrize("m,n", [(600, 600), (700, 513)])
def test_kid_over_several_blocks_equals_the_whole_matrix_formula(m, n):
    """The kernel sums go by blocks of rows (only those on and above the diagonal for x with
    itself): 600 rows are blocks of 256, 256 and 88; the result is numpy's whole-matrix sum to
    float64 rounding (measured relative difference ~1e-15)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((m, 32))
    y = rng.standard_normal((n, 32)) * 1.1 + 0.05

    def ksum(a, b, off_diagonal):  # mmd2_explicit's sums as whole matrices (its loops take 2 s)
        k = (a @ b.T / 32 + 1) ** 3
        return k.sum() - np.trace(k) if off_diagonal else k.sum()

    whole = (ksum(x, x, True) / (m * (m - 1)) + ksum(y, y, True) / (n * (n - 1))
             - 2 * ksum(x, y, False) / (m * n))
    mean, std = kid(x, y)  # both sides whole
    assert mean == pytest.approx(whole, rel=1e-10) and std == 0.0
    if m == n:
        assert mean == pytest.approx(stylegan2_ada_subset_kid(x, y), rel=1e-10)


def test_kid_near_zero_for_one_distribution_and_positive_for_another():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((3000, 16))
    same = rng.standard_normal((3000, 16))
    other = rng.standard_normal((3000, 16)) * 1.3 + 0.2
    same_mean, same_std = kid(real, same, subsets=20, subset_size=500, seed=0)
    other_mean, other_std = kid(real, other, subsets=20, subset_size=500, seed=0)
    assert abs(same_mean) < 0.01
    assert same_std > 0 and other_std > 0
    assert other_mean > 0.2
    assert other_mean > 20 * abs(same_mean)


def test_kid_is_deterministic_in_the_seed():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((200, 8)), rng.standard_normal((150, 8)) + 0.1
    assert kid(x, y, subsets=10, subset_size=50, seed=7) == kid(x, y, subsets=10,
                                                                  subset_size=50, seed=7)
    assert kid(x, y, subsets=10, subset_size=50, seed=7) != kid(x, y, subsets=10,
                                                                  subset_size=50, seed=8)


def test_kid_rejects_too_few_samples_and_bad_shapes():
    with pytest.raises(ValueError, match="at least 2 samples"):
        kid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        kid(np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="dimensions"):
        kid(np.zeros((5, 3)), np.zeros((5, 4)))


# --------------------------------------------------------------------------------------------
# PRDC


def line(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


REAL_LINE = line(*range(10))  # 0..9; with k=1 every real radius is 1


def test_prdc_hand_computed_1d():
    # real 0..9, k=1: every real radius is 1.
    # fake {0.5, 3.5, 20, 21, 23}; fake radii (nearest other fake): 3, 3, 1, 1, 2.
    # precision: 0.5 (in balls of 0, 1) and 3.5 (balls of 3, 4) yes, 20/21/23 no -> 2/5
    # density: (2 + 2 + 0 + 0 + 0) / (k M = 5) = 0.8
    # recall: ball(0.5, r=3) holds reals 0..3, ball(3.5, r=3) holds 1..6; 7, 8, 9 are in no
    #         fake ball (ball(20, r=1), ball(23, r=2) reach down to 19 and 21) -> 7/10
    # coverage: nearest fake within 1 for reals 0, 1 (0.5) and 3, 4 (3.5); 2 and 5 are 1.5 away,
    #           6..9 further -> 4/10
    out = prdc(REAL_LINE, line(0.5, 3.5, 20, 21, 23), k=1)
    assert out == pytest.approx({"precision": 0.4, "recall": 0.7, "density": 0.8,
                                 "coverage": 0.4}, abs=1e-12)


def test_prdc_counts_ties_as_inside():
    # real 0..9 (radius 1), fake {10, 11, 12} (fake radii 1). Fake 10 is exactly 1 from real 9:
    # with "<=" it lies in ball(9) and real 9 lies in ball(10). (The reference package's "<"
    # would give 0 for all four.)
    # precision 1/3, density 1/(1*3), recall 1/10 (real 9), coverage 1/10 (real 9; real 8's
    # nearest fake is 2 away).
    out = prdc(REAL_LINE, line(10, 11, 12), k=1)
    assert out == pytest.approx({"precision": 1 / 3, "recall": 0.1, "density": 1 / 3,
                                 "coverage": 0.1}, abs=1e-12)


def test_prdc_hand_computed_2d_with_k2():
    # real: unit-square corners; k=2 -> each radius is 1 (neighbours at 1, 1, sqrt 2).
    # fake: c=(0.5, 0.5), f=(3, 3), g=(0, 1.5). Fake 2nd-NN radii: c 3.54 (f), f 3.54 (c),
    #       g 3.35 (f).
    # precision: c is 0.71 from every corner (4 balls), g is 0.5 from (0,1) (1 ball; 1.12 from
    #            (1,1)), f is 2.83 from (1,1) -> 2/3; density = (4 + 1 + 0) / (k M = 6) = 5/6
    # recall: ball(c, 3.54) holds every corner -> 1; coverage: every corner has c at 0.71 <= 1 -> 1
    real = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)
    fake = np.array([[0.5, 0.5], [3, 3], [0, 1.5]], dtype=np.float64)
    out = prdc(real, fake, k=2)
    assert out == pytest.approx({"precision": 2 / 3, "recall": 1.0, "density": 5 / 6,
                                 "coverage": 1.0}, abs=1e-12)


def test_prdc_identical_sets():
    # Every fake sits on its own real point: precision = recall = coverage = 1. Each real ball
    # holds itself and its k neighbours, so density = N (k + 1) / (k N) = (k + 1) / k exactly.
    x = np.random.default_rng(6).standard_normal((300, 8)).astype(np.float32)
    out = prdc(x, x, k=5)
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0
    assert out["density"] == pytest.approx(6 / 5, abs=1e-12)


def test_prdc_same_distribution():
    # Naeem et al.: for independent draws of one distribution E[density] = 1 and E[coverage] =
    # 1 - prod_{i=1..k} (N - i) / (N + M - i), about 1 - 2^-k = 0.969 for k=5, N=M.
    rng = np.random.default_rng(7)
    real = rng.standard_normal((2000, 8))
    fake = rng.standard_normal((2000, 8))
    out = prdc(real, fake, k=5)
    expected_coverage = 1 - math.prod((2000 - i) / (4000 - i) for i in range(1, 6))
    assert out["density"] == pytest.approx(1.0, abs=0.08)
    assert out["coverage"] == pytest.approx(expected_coverage, abs=0.02)
    assert out["precision"] > 0.6 and out["recall"] > 0.6


def test_prdc_chunk_size_does_not_change_results():
    rng = np.random.default_rng(8)
    real = rng.standard_normal((53, 6)).astype(np.float32)
    fake = (rng.standard_normal((41, 6)) * 1.3 + 0.2).astype(np.float32)
    assert prdc(real, fake, k=3, chunk=3) == prdc(real, fake, k=3, chunk=1024)


def test_prdc_with_the_reals_radii_given_equals_prdc_and_a_feature_set_computes_them_once(
        monkeypatch):
    """A reference's k-NN radii are computed once per feature set (they are half of PRDC's time
    on 10,000 reals) and give the same numbers as computing them inside prdc."""
    import ganscope.metrics.registry as registry

    rng = np.random.default_rng(10)
    real = rng.standard_normal((300, 6))
    fakes = [rng.standard_normal((120, 6)) * s + 0.1 for s in (0.8, 1.0, 1.5)]
    ref = FeatureSet(real)
    calls = []
    monkeypatch.setattr(registry, "real_radii2",
                        lambda f, k: calls.append(k) or real_radii2(f, k=k))
    for fake in fakes:
        got = compute_metrics(ref, FeatureSet(fake), ["prdc"])
        assert got == prdc(real, fake, k=5)
    assert calls == [5]  # three evaluations, one radii computation
    assert prdc(real, fakes[0], k=5, radii2=real_radii2(real, k=5)) == prdc(real, fakes[0], k=5)
    with pytest.raises(ValueError, match=r"one radius per real sample \(300\), got \(299,\)"):
        prdc(real, fakes[0], radii2=real_radii2(real)[:-1])


def test_prdc_fake_far_away():
    rng = np.random.default_rng(9)
    real = rng.standard_normal((100, 4))
    fake = rng.standard_normal((80, 4)) + 100.0
    assert prdc(real, fake, k=5) == {"precision": 0.0, "recall": 0.0, "density": 0.0,
                                     "coverage": 0.0}


def test_prdc_needs_more_than_k_samples():
    with pytest.raises(ValueError, match="more than 5 samples"):
        prdc(np.zeros((5, 2)), np.ones((10, 2)), k=5)
    with pytest.raises(ValueError, match="more than 2 samples"):
        prdc(np.zeros((10, 2)), np.ones((2, 2)), k=2)
    with pytest.raises(ValueError, match="dimensions"):
        prdc(np.zeros((10, 2)), np.ones((10, 3)), k=2)


# --------------------------------------------------------------------------------------------
# Class statistics


def one_hot(labels: list[int] | np.ndarray, n_classes: int = 10) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[np.asarray(labels)]


def test_uniform_classes():
    stats = class_stats(one_hot(np.arange(1000) % 10))
    assert stats["class_hist"] == pytest.approx([0.1] * 10)
    assert stats["classes_covered"] == 10
    assert stats["class_kl"] == pytest.approx(0.0, abs=1e-12)
    assert stats["confidence"] == pytest.approx(1.0)


def test_single_class():
    stats = class_stats(one_hot([3] * 50))
    assert stats["classes_covered"] == 1
    assert stats["class_kl"] == pytest.approx(math.log(10), rel=1e-12)
    np.testing.assert_allclose(class_histogram(one_hot([3] * 50)), np.eye(10)[3])


def test_coverage_threshold_is_a_tenth_of_the_uniform_share():
    # 1000 samples: class 0 gets 5 (0.5% < 1%, not covered), class 1 exactly 10 (1%, covered),
    # the rest spread over classes 2..9 (123 each, 124 for class 9).
    labels = [0] * 5 + [1] * 10 + [c for c in range(2, 9) for _ in range(123)] + [9] * 124
    assert len(labels) == 1000
    stats = class_stats(one_hot(labels))
    assert stats["class_hist"][0] == pytest.approx(0.005)
    assert stats["classes_covered"] == 9
    h = np.array(stats["class_hist"])
    assert stats["class_kl"] == pytest.approx(float(np.sum(h * np.log(10 * h))), rel=1e-12)


def test_confidence_is_the_mean_max_probability():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]])
    stats = class_stats(probs)
    assert stats["confidence"] == pytest.approx(0.6)
    assert stats["class_hist"] == pytest.approx([0.5, 0.5, 0.0])
    # C=3: threshold 0.1/3; two classes at 0.5: KL = 2 * 0.5 log(1.5) = log 1.5
    assert stats["classes_covered"] == 2
    assert stats["class_kl"] == pytest.approx(math.log(1.5), rel=1e-12)


@pytest.mark.parametrize(
    "probs",
    [
        np.full(10, 0.1),  # 1-D
        np.full((4, 10), 0.2),  # rows sum to 2
        np.array([[0.5, float("nan")], [0.5, 0.5]]),
        np.zeros((0, 10)),
    ],
)
def test_class_stats_reject_non_probabilities(probs):
    with pytest.raises(ValueError):
        class_stats(probs)


# --------------------------------------------------------------------------------------------
# Registry


def feature_set(rng: np.random.Generator, n: int, shift: float = 0.0) -> FeatureSet:
    logits = rng.standard_normal((n, 10))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    features = (rng.standard_normal((n, 16)) + shift).astype(np.float32)
    return FeatureSet(features, probs.astype(np.float32))


def test_registry_names_and_compute_metrics_keys():
    # class_match and intra_fid: for conditional runs only
    assert METRICS.names() == sorted([*DEFAULT_METRICS, "class_match", "intra_fid"])
    rng = np.random.default_rng(10)
    real, fake = feature_set(rng, 300), feature_set(rng, 250, shift=0.3)
    out = compute_metrics(real, fake)
    assert list(out) == ["fid", "kid", "kid_std", "precision", "recall", "density", "coverage",
                         "class_hist", "classes_covered", "class_kl", "confidence"]
    assert out["fid"] == pytest.approx(frechet_distance(*feature_stats(real.features),
                                                        *feature_stats(fake.features)))
    assert (out["kid"], out["kid_std"]) == kid(real.features, fake.features, seed=0)
    assert compute_metrics(real, fake, ["classes"]) == class_stats(fake.probs)
    assert list(compute_metrics(real, fake, ["prdc", "fid"])) == ["precision", "recall",
                                                                   "density", "coverage", "fid"]


def test_class_match_scores_the_asked_class_overall_and_per_class():
    rng = np.random.default_rng(12)
    real = feature_set(rng, 50)
    probs = np.eye(3)[[0, 1, 2, 2, 1, 0]]  # the classifier's verdicts
    fake = FeatureSet(rng.standard_normal((6, 4)), probs, labels=np.array([0, 1, 1, 2, 0, 0]))
    out = compute_metrics(real, fake, ["class_match"])
    assert out["class_match"] == pytest.approx(4 / 6)
    assert out["class_match_per_class"] == pytest.approx([2 / 3, 1 / 2, 1.0])
    with pytest.raises(ValueError, match="needs a conditional run's samples"):
        compute_metrics(real, feature_set(rng, 6), ["class_match"])


def test_intra_fid_is_the_mean_of_per_class_frechet_distances():
    rng = np.random.default_rng(13)
    centres = rng.standard_normal((3, 4)) * 3
    rl, fl = np.repeat([0, 1, 2], 200), np.repeat([0, 1, 2], 150)
    real = FeatureSet(centres[rl] + rng.standard_normal((600, 4)), labels=rl)
    good = FeatureSet(centres[fl] + rng.standard_normal((450, 4)), labels=fl)
    out = compute_metrics(real, good, ["intra_fid"])
    want = [frechet_distance(*feature_stats(real.features[rl == k]),
                             *feature_stats(good.features[fl == k])) for k in range(3)]
    assert out["intra_fid_per_class"] == pytest.approx(want)
    assert out["intra_fid"] == pytest.approx(np.mean(want))
    # samples of the right kinds under the wrong labels: the overall FID cannot tell, this can
    wrong = FeatureSet(good.features, labels=(fl + 1) % 3)
    assert compute_metrics(real, wrong, ["fid"])["fid"] == pytest.approx(
        compute_metrics(real, good, ["fid"])["fid"])
    assert compute_metrics(real, wrong, ["intra_fid"])["intra_fid"] > 20 * out["intra_fid"]
    with pytest.raises(ValueError, match="labelled real set"):
        compute_metrics(FeatureSet(real.features), good, ["intra_fid"])


def test_unknown_metric_lists_the_names():
    rng = np.random.default_rng(11)
    real, fake = feature_set(rng, 50), feature_set(rng, 50)
    with pytest.raises(ConfigError) as excinfo:
        compute_metrics(real, fake, ["fid", "inception-score"])
    message = str(excinfo.value)
    assert "inception-score" in message
    assert all(name in message for name in DEFAULT_METRICS)


def test_precomputed_stats_give_the_same_fid():
    rng = np.random.default_rng(12)
    real, fake = feature_set(rng, 400), feature_set(rng, 300, shift=0.2)
    mu, sigma = feature_stats(real.features)
    cached = FeatureSet(real.features, real.probs, mu=mu, sigma=sigma)
    assert real.stats is real.stats  # fitted once
    assert compute_metrics(cached, fake, ["fid"]) == compute_metrics(real, fake, ["fid"])


def test_feature_set_validation():
    x = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="both mu and sigma"):
        FeatureSet(x, mu=np.zeros(3))
    with pytest.raises(ValueError, match="mu/sigma"):
        FeatureSet(x, mu=np.zeros(2), sigma=np.eye(2))
    with pytest.raises(ValueError, match="probs"):
        FeatureSet(x, probs=np.full((5, 10), 0.1))
    with pytest.raises(ValueError, match="probs"):
        compute_metrics(FeatureSet(x), FeatureSet(x), ["classes"])
