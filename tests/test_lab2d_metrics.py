"""The 2-D lab metrics on hand-made point sets: mode coverage / HQ / reverse KL on mixtures,
and the sample distances (sliced Wasserstein, energy distance, MMD) against closed forms,
naive double loops and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as stats  # the reference: a dev dependency, never skipped

import ganscope.domains.points.metrics as M
from ganscope.data.points import load_points
from ganscope.domains.points.metrics import (
    distance_stats,
    energy_distance,
    median_bandwidths,
    mmd_rbf,
    mode_stats,
    random_directions,
    sliced_wasserstein,
)

RING = load_points("ring8", 1, 0).modes  # (8, 2) at radius 2
STD = 0.02


# --------------------------------------------------------------------------------------------
# mode_stats


def test_even_samples_at_every_mode():
    s = np.repeat(RING, 100, axis=0)
    r = mode_stats(s, RING, STD)
    assert r["modes_covered"] == 8 and r["modes_covered_any"] == 8
    assert r["hq_fraction"] == 1.0 and r["reverse_kl"] == 0.0
    assert r["mode_hist"] == [0.125] * 8
    assert r["n_samples"] == 800 and r["n_hq"] == 800 and r["n_modes"] == 8
    assert r["hq_radius"] == pytest.approx(0.06)


def test_all_samples_at_one_mode():
    s = np.repeat(RING[2:3], 800, axis=0)
    r = mode_stats(s, RING, STD)
    assert r["modes_covered"] == 1 and r["modes_covered_any"] == 1
    assert r["hq_fraction"] == 1.0
    assert r["reverse_kl"] == pytest.approx(math.log(8))
    assert r["mode_hist"] == [0, 0, 1.0, 0, 0, 0, 0, 0]


def test_off_mode_noise_and_rare_modes():
    """6 modes x 300, 2 modes x 10 (0.5 % each), 180 uniform points near the origin (far from
    every mode): HQ = 1820 / 2000; the two rare modes fail the 1 % bar but count leniently."""
    rng = np.random.default_rng(0)
    counts = [300] * 6 + [10, 10]
    hq = np.concatenate([RING[k] + rng.uniform(-0.03, 0.03, size=(c, 2))  # within 3 std
                         for k, c in enumerate(counts)])
    noise = rng.uniform(-0.5, 0.5, size=(180, 2))
    s = rng.permutation(np.concatenate([hq, noise]))
    r = mode_stats(s, RING, STD)
    assert r["hq_fraction"] == pytest.approx(1820 / 2000)
    assert r["modes_covered"] == 6 and r["modes_covered_any"] == 8
    assert r["mode_hist"] == pytest.approx([0.15] * 6 + [0.005] * 2)
    q = np.array(counts) / 1820
    assert r["reverse_kl"] == pytest.approx(float(np.sum(q * np.log(q * 8))))
    # at min_share = 0.5 % the rare modes count; at 0 the strict and lenient counts agree
    assert mode_stats(s, RING, STD, min_share=0.005)["modes_covered"] == 8
    assert mode_stats(s, RING, STD, min_share=0.0)["modes_covered"] == 8


def test_min_share_boundary_is_inclusive():
    s = np.concatenate([np.repeat(RING[:1], 1980, axis=0), np.repeat(RING[1:2], 20, axis=0)])
    assert mode_stats(s, RING, STD)["modes_covered"] == 2  # 20 / 2000 = exactly 1 %
    s = np.concatenate([np.repeat(RING[:1], 1981, axis=0), np.repeat(RING[1:2], 19, axis=0)])
    assert mode_stats(s, RING, STD)["modes_covered"] == 1


def test_hq_radius_is_euclidean_radius_std_times_std():
    direction = np.array([[0.6, 0.8]])
    inside = RING[:1] + 2.99 * STD * direction
    outside = RING[:1] + 3.01 * STD * direction
    assert mode_stats(inside, RING, STD)["hq_fraction"] == 1.0
    assert mode_stats(outside, RING, STD)["hq_fraction"] == 0.0
    assert mode_stats(outside, RING, STD, radius_std=3.1)["hq_fraction"] == 1.0


def test_no_hq_sample_reports_worst_case_kl():
    s = np.zeros((50, 2))
    r = mode_stats(s, RING, STD)
    assert r["modes_covered"] == 0 and r["modes_covered_any"] == 0 and r["n_hq"] == 0
    assert r["hq_fraction"] == 0.0 and r["reverse_kl"] == pytest.approx(math.log(8))


def test_non_finite_samples_are_never_hq():
    s = np.repeat(RING, 10, axis=0)
    s[:5] = np.nan
    s[5] = np.inf
    r = mode_stats(s, RING, STD)
    assert r["n_samples"] == 80 and r["n_hq"] == 74
    assert r["hq_fraction"] == pytest.approx(74 / 80)


def test_real_ring8_samples():
    ps = load_points("ring8", 20000, seed=5)
    r = mode_stats(ps.points, ps.modes, ps.std)
    assert r["modes_covered"] == 8 and r["modes_covered_any"] == 8
    # within 3 std in 2-D: P = 1 - exp(-9/2) = 0.98889, so even perfect samples sit near 98.9 %
    assert r["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.004)
    assert r["reverse_kl"] < 0.002
    r4 = mode_stats(ps.points, ps.modes, ps.std, radius_std=4.0)
    assert r4["hq_fraction"] > 0.995  # 1 - exp(-8) = 0.99966


def test_real_grid25_samples():
    ps = load_points("grid25", 10000, seed=2)
    r = mode_stats(ps.points, ps.modes, ps.std)
    assert r["modes_covered"] == 25 and r["n_modes"] == 25
    assert r["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)


def test_mode_stats_rejects_bad_arguments():
    with pytest.raises(ValueError, match="differ in dimension"):
        mode_stats(np.zeros((5, 3)), RING, STD)
    with pytest.raises(ValueError, match="std must be finite"):
        mode_stats(np.zeros((5, 2)), RING, -1.0)


# --------------------------------------------------------------------------------------------
# Distances


def ring(n: int, seed: int) -> np.ndarray:
    return load_points("ring8", n, seed).points.astype(np.float64)


def naive(a, b, sigmas):
    """The double loops the chunked code must agree with (small sets only)."""
    def dist(x, y):
        return np.linalg.norm(x[:, None] - y[None], axis=-1)

    daa, dbb, dab = dist(a, a), dist(b, b), dist(a, b)
    energy = 2 * dab.mean() - daa.mean() - dbb.mean()
    n, m = len(a), len(b)
    mmd = 0.0
    for s in sigmas:
        def k(d, s=s):
            return np.exp(-d ** 2 / (2 * s * s))

        kaa, kbb = k(daa), k(dbb)
        np.fill_diagonal(kaa, 0)
        np.fill_diagonal(kbb, 0)
        mmd += kaa.sum() / (n * (n - 1)) + kbb.sum() / (m * (m - 1)) - 2 * k(dab).mean()
    return energy, mmd


@pytest.mark.parametrize("block", [M._BLOCK, 64])
def test_energy_and_mmd_match_double_loops(monkeypatch, block):
    monkeypatch.setattr(M, "_BLOCK", block)  # 64: many blocks, the symmetric split exercised
    rng = np.random.default_rng(0)
    a = rng.normal(size=(57, 2))
    b = rng.normal(size=(70, 2)) * 1.3 + 0.4
    sig = [0.3, 1.0, 2.5]
    e, m = naive(a, b, sig)
    assert energy_distance(a, b) == pytest.approx(e, rel=1e-5)
    assert mmd_rbf(a, b, bandwidths=sig) == pytest.approx(m, rel=1e-4, abs=1e-6)
    # more than 8 dimensions take the |x|^2 + |y|^2 - 2xy path
    a9, b9 = rng.normal(size=(30, 9)), rng.normal(size=(40, 9)) + 0.5
    e9, m9 = naive(a9, b9, [2.0])
    assert energy_distance(a9, b9) == pytest.approx(e9, rel=1e-5)
    assert mmd_rbf(a9, b9, bandwidths=[2.0]) == pytest.approx(m9, rel=1e-4, abs=1e-6)


def test_identical_sets():
    a = ring(2000, 0)
    assert sliced_wasserstein(a, a) == 0.0
    assert energy_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # unbiased MMD^2 of a set with itself is 2/(n-1) * (mean k - K): tiny and negative
    assert abs(mmd_rbf(a, a)) < 5 * 5 / 2000


def test_symmetric():
    a, b = ring(700, 0), ring(500, 1) * 1.1
    assert sliced_wasserstein(a, b) == pytest.approx(sliced_wasserstein(b, a), rel=1e-12)
    assert energy_distance(a, b) == pytest.approx(energy_distance(b, a), rel=1e-6)
    assert mmd_rbf(a, b) == pytest.approx(mmd_rbf(b, a), rel=1e-5)
    assert median_bandwidths(a, b) == pytest.approx(median_bandwidths(b, a))


def test_grow_with_shift():
    a, b = ring(1500, 0), ring(1500, 1)
    shifts = [0.0, 0.05, 0.2, 0.5, 1.0, 3.0]
    for f in (sliced_wasserstein, energy_distance, mmd_rbf):
        vals = [f(a, b + np.array([d, 0.0])) for d in shifts]
        assert all(x < y for x, y in zip(vals, vals[1:])), (f.__name__, vals)


def test_sliced_wasserstein_of_a_shift_on_the_x_axis():
    """Projecting a shift t onto direction theta moves every point by <theta, t>, so each 1-D W1
    is |<theta, t>| and SW = d * mean |cos theta| -> d * 2/pi."""
    rng = np.random.default_rng(1)
    a = np.stack([rng.normal(size=400), np.zeros(400)], axis=1)
    d = 0.7
    b = a + np.array([d, 0.0])
    dirs = random_directions(256, 2, seed=0)
    assert sliced_wasserstein(a, b) == pytest.approx(d * np.abs(dirs[:, 0]).mean(), rel=1e-9)
    many = sliced_wasserstein(a, b, n_projections=4096, seed=3)
    assert many == pytest.approx(d * 2 / math.pi, rel=0.02)


def test_sliced_wasserstein_unequal_sizes_against_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=300), rng.exponential(size=170)
    # in 1-D every direction is +-1: SW is the plain W1
    assert sliced_wasserstein(x, y, n_projections=5) == pytest.approx(
        stats.wasserstein_distance(x, y), rel=1e-10)
    # and the quantile matching equals the mean |sorted difference| for equal sizes
    z = rng.normal(size=300)
    assert sliced_wasserstein(x, z, n_projections=1) == pytest.approx(
        np.abs(np.sort(x) - np.sort(z)).mean(), rel=1e-12)


def test_random_directions_are_unit_and_seeded():
    d = random_directions(100, 2, seed=4)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    np.testing.assert_array_equal(d, random_directions(100, 2, seed=4))
    assert not np.array_equal(d, random_directions(100, 2, seed=5))


def test_energy_distance_hand_cases():
    # two single points d apart: 2|X-Y| - 0 - 0 = 2d
    assert energy_distance(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])) == pytest.approx(10.0)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=300), rng.normal(size=200) + 0.3
    # 1-D: the V-statistic is 2 * integral (F - G)^2 = scipy's energy_distance squared
    assert energy_distance(x, y) == pytest.approx(stats.energy_distance(x, y) ** 2, rel=1e-5)


def test_mmd_same_distribution_is_near_zero():
    a, b = ring(3000, 0), ring(3000, 1)
    same = mmd_rbf(a, b)
    shifted = mmd_rbf(a, b + np.array([0.1, 0.0]))
    assert abs(same) < 3e-3
    assert shifted > 10 * abs(same)


def test_median_bandwidths():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    b = np.array([[3.0, 0.0]])
    # pooled pairwise distances 1, 2, 3 -> median 2
    assert median_bandwidths(a, b) == pytest.approx([0.25, 0.5, 1.0, 2.0, 4.0])
    assert median_bandwidths(np.zeros((3, 2)), np.zeros((3, 2)), factors=(1.0,)) == [1.0]


def test_distance_stats():
    a, b = ring(1200, 0), ring(1000, 1)
    r = distance_stats(a, b, seed=0)
    assert set(r) == {"sliced_wasserstein", "energy_distance", "mmd_rbf", "mmd_bandwidths"}
    assert r["sliced_wasserstein"] == sliced_wasserstein(a, b, seed=0)
    assert r["energy_distance"] == pytest.approx(energy_distance(a, b), rel=1e-6)
    assert r["mmd_rbf"] == pytest.approx(mmd_rbf(a, b), rel=1e-5, abs=1e-7)
    assert r["mmd_bandwidths"] == median_bandwidths(a, b)
    # subsampling above max_points is seeded, hence repeatable
    sub = distance_stats(a, b, seed=0, max_points=300)
    assert sub == distance_stats(a, b, seed=0, max_points=300)
    assert sub["sliced_wasserstein"] == r["sliced_wasserstein"]  # SW always uses every point


def test_distances_of_non_finite_samples_are_nan():
    a, b = ring(100, 0), ring(100, 1)
    a[3, 0] = np.nan
    assert math.isnan(sliced_wasserstein(a, b))
    assert math.isnan(energy_distance(a, b))
    assert math.isnan(mmd_rbf(a, b))
    r = distance_stats(a, b)
    assert all(math.isnan(r[k]) for k in ("sliced_wasserstein", "energy_distance", "mmd_rbf"))


def test_distances_reject_bad_shapes():
    with pytest.raises(ValueError, match="differ in dimension"):
        energy_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        sliced_wasserstein(np.zeros((0, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least 2 points"):
        mmd_rbf(np.zeros((1, 2)), np.zeros((5, 2)))
