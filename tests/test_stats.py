"""Statistics over seeds on known numbers, and Student's t without scipy against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as scipy_special  # the reference: a dev dependency, so never skipped
import scipy.stats as scipy_stats

from ganscope.experiments import stats

DFS = [*range(1, 31), 0.7, 2.5, 45.3, 100, 1000]
PS = [0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.025, 1e-6]


@pytest.mark.parametrize("df", DFS)
def test_t_quantile_matches_scipy(df):
    for p in PS:
        assert stats.t_ppf(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-9)
    for t in (-4.0, -0.3, 0.0, 0.5, 2.0, 12.7):
        assert stats.t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-9, abs=1e-15)


def test_incomplete_beta_matches_scipy():
    for a, b in ((0.5, 0.5), (2.0, 0.5), (15.0, 0.5), (3.0, 7.0), (40.0, 2.5)):
        for x in (0.0, 1e-6, 0.1, 0.5, 0.9, 0.999, 1.0):
            assert stats.betainc(a, b, x) == pytest.approx(scipy_special.betainc(a, b, x),
                                                           rel=1e-10, abs=1e-15)


def test_well_known_quantiles():
    assert stats.t_ppf(0.975, 1) == pytest.approx(12.706204736, rel=1e-9)
    assert stats.t_ppf(0.975, 4) == pytest.approx(2.776445105, rel=1e-9)
    assert stats.t_ppf(0.975, 1e6) == pytest.approx(1.959966, rel=1e-5)  # the normal's
    assert stats.t_ppf(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        stats.t_ppf(1.0, 3)


def test_summary_of_one_to_five_by_hand():
    # mean 3, sample variance 10/4 = 2.5, t(0.975, 4) = 2.7764451052,
    # half width = 2.7764451052 * sqrt(2.5) / sqrt(5) = 1.9632431614
    s = stats.summarize([1, 2, 3, 4, 5])
    assert (s.n, s.mean) == (5, 3.0)
    assert s.std == pytest.approx(math.sqrt(2.5), rel=1e-12)
    assert s.lo == pytest.approx(3 - 1.9632431614, rel=1e-9)
    assert s.hi == pytest.approx(3 + 1.9632431614, rel=1e-9)
    assert s.has_interval


def test_summary_edge_cases_and_non_finite_values():
    one = stats.summarize([4.2])
    assert (one.n, one.mean) == (1, 4.2) and math.isnan(one.std) and not one.has_interval
    assert one.to_dict()["lo"] is None  # JSON-ready
    assert stats.summarize([]).n == 0
    s = stats.summarize([1.0, float("nan"), None, float("inf"), 3.0, True])
    assert (s.n, s.mean) == (2, 2.0)
    assert stats.mean_std([0.2, 0.4]) == pytest.approx((0.3, np.std([0.2, 0.4], ddof=1)))
    assert stats.mean_std([5.0]) == (5.0, 0.0)


def test_welch_by_hand_and_against_scipy():
    # t = (3 - 8) / sqrt(2.5/5 + 2.5/5) = -5, df = 8 (equal variances and sizes)
    t, df, p = stats.welch([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert (t, df) == pytest.approx((-5.0, 8.0))
    assert p == pytest.approx(0.0010528257933665, rel=1e-9)
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 7.0, 9.0]
    ref = scipy_stats.ttest_ind(a, b, equal_var=False)
    got = stats.welch(a, b)
    assert got[0] == pytest.approx(ref.statistic, rel=1e-12)
    assert got[2] == pytest.approx(ref.pvalue, rel=1e-9)
    assert all(math.isnan(v) for v in stats.welch([1.0], [2.0, 3.0]))
    assert all(math.isnan(v) for v in stats.welch([1.0, 1.0], [2.0, 2.0]))


def test_interval_overlap():
    a = stats.summarize([10, 11, 12])  # 11 ± 2.48
    b = stats.summarize([20, 21, 22])
    c = stats.summarize([11, 12, 13])
    assert stats.intervals_overlap(a, b) is False
    assert stats.intervals_overlap(a, c) is True
    assert stats.intervals_overlap(a, stats.summarize([1.0])) is None
