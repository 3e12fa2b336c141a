"""Modes on any points file (a Gaussian mixture, components by BIC), scored like the built-in
mixtures, and figures that show generated points even when they leave the target's frame."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from ganscope.data.points import load_points
from ganscope.domains.points import Points, with_modes
from ganscope.domains.points.metrics import mode_stats
from ganscope.domains.points.modes import find_modes
from ganscope.domains.points.plots import draw_cell, plot_extent, widened


# grid25 on 1000 of its points (the default 2000 takes ~4 s on a busy CPU; same result)
@pytest.mark.parametrize("spec,k,n", [("ring8", 8, 2000), ("grid25", 25, 1000)])
def test_bic_finds_the_mixtures_modes(spec, k, n):
    ps = load_points(spec, 20000, 3)
    fit = find_modes(ps.points, max_points=n)
    assert fit.k == k
    err = np.sqrt(((fit.means[:, None] - ps.modes[None]) ** 2).sum(2)).min(0)
    # measured: ring8 0.0017 (std 0.02), grid25 0.019 (std 0.05); bound: half a std
    assert err.max() < ps.std / 2
    sd = np.sqrt(np.stack([fit.covs[:, 0, 0], fit.covs[:, 1, 1]]))
    assert np.allclose(sd, ps.std, rtol=0.4)  # measured: within 4 % (ring8), 25 % (grid25)
    assert np.allclose(fit.weights, 1 / k, rtol=0.6)
    assert int(np.argmin(fit.bic)) + 1 == k
    # the same points give the same modes (fixed subset and seeds)
    assert np.array_equal(find_modes(ps.points, max_points=n).means, fit.means)


def test_found_modes_score_like_the_known_ones(tmp_path):
    ps = load_points("ring8", 20000, 0)
    f = tmp_path / "ring.npy"
    np.save(f, ps.points)
    user = with_modes(load_points(f"points:{f}", 0, 0))
    assert user.modes_found and len(user.modes) == 8
    w = user.weights / user.weights.sum()
    for fake, modes, hq in [(load_points("ring8", 4000, 9).points, 8, 0.989),
                            (ps.modes[[0, 1]].repeat(500, 0), 2, 1.0)]:
        known = mode_stats(fake, ps.modes, ps.std)
        found = mode_stats(fake, user.modes, None, covs=user.covs, weights=user.weights)
        assert known["modes_covered"] == found["modes_covered"] == modes
        # 1 - exp(-4.5) of a component's own samples lie within 3 std (Mahalanobis 3)
        assert found["hq_fraction"] == pytest.approx(hq, abs=0.01)
        # reverse KL against the fitted weights: sum q log(q / w) over the HQ histogram q
        q = np.asarray(found["mode_hist"]) / found["hq_fraction"]
        assert found["reverse_kl"] == pytest.approx(
            float(np.sum(q[q > 0] * np.log(q[q > 0] / w[q > 0]))), rel=1e-9)
    assert mode_stats(load_points("ring8", 4000, 9).points, user.modes, None, covs=user.covs,
                      weights=user.weights)["reverse_kl"] < 0.01  # balanced: measured 0.002
    # no HQ sample: the largest KL any histogram can have against the fitted weights
    far = mode_stats(np.full((10, 2), 50.0), user.modes, None, covs=user.covs,
                     weights=user.weights)
    assert far["hq_fraction"] == 0 and far["reverse_kl"] == pytest.approx(
        np.log(1 / (user.weights / user.weights.sum()).min()))


def test_points_domain_finds_a_files_modes_once(tmp_path):
    pts = load_points("ring8:radius=1,std=0.02", 1000, 1).points
    f = tmp_path / "g.csv"
    f.write_text("".join(f"{x},{y}\n" for x, y in pts))
    from ganscope.config import DataConfig

    data = Points().load(DataConfig(name=f"points:{f}"), 0)
    ps = data.point_set
    assert ps.modes_found and len(ps.modes) == 8 and ps.covs.shape == (8, 2, 2)
    again = Points().load(DataConfig(name=f"points:{f}"), 5)
    assert again.point_set.modes is ps.modes  # fitted once per process per file


def test_points_beyond_the_frame_are_shown():
    target = load_points("ring8", 2000, 0).points
    base = plot_extent(target)
    assert widened(base, target) == base  # points inside: the target's window
    far = target + 6.0  # the whole cloud beside the ring
    ext = widened(base, far)
    half = (base[1] - base[0]) / 2
    assert ext[1] - ext[0] > base[1] - base[0]
    assert (ext[0] + ext[1]) / 2 == pytest.approx((base[0] + base[1]) / 2, abs=1e-6)
    inside = ((far[:, 0] <= ext[1]) & (far[:, 1] <= ext[3])).mean()
    assert inside >= 0.98
    very_far = target + 1000.0  # capped at 4x; the rest drawn on the edge, counted
    assert widened(base, very_far)[1] - widened(base, very_far)[0] == pytest.approx(8 * half)
    fig = Figure()
    ax = fig.subplots()
    draw_cell(ax, target, np.vstack([[[np.nan, 0.0]], very_far]), extent=base)  # 2000 drawn
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "100% beyond the frame" in texts and "1 non-finite" in texts
    edge = ax.collections[-1].get_offsets()
    assert len(edge) == 1999 and np.isfinite(edge).all()
    lim = ax.get_xlim()
    assert edge[:, 0].max() <= lim[1] + 1e-9
