"""Issue 22: the probe names an effect only when it is beyond the null *and* large enough to
matter (a floor per measure), ranks dims by effect size among real effects, and ``latent check``
uses the same rule. The planted generator reproduces the demo run's failure: a dim that moves a
class the generator never makes by a tiny amount is many times its (near-zero) null, more so
than a dim with a large effect on a class that other dims move too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganscope.latent.claims import check
from ganscope.latent.probe import (
    CLASS_FLOOR,
    EFFECT_NAMES,
    IMAGE_FLOOR,
    ProbeResult,
    floors,
    is_real,
    probe,
)
from ganscope.latent.probe.stats import range_label, spans

Z = 100
BIG, TINY, PLAIN = 7, 40, 3  # the dims probed (a subset of z, to keep the probe cheap)


class CodeG(nn.Module):
    """Black images carrying two codes in [-1, 1]: pixel (0, 0) = tanh(s / 4) with
    s = z[BIG] + 0.2 * (every other dim but TINY), pixel (0, 1) = tanh(z[TINY] / 2)."""

    def __init__(self) -> None:
        super().__init__()
        w = torch.full((Z,), 0.2)
        w[BIG], w[TINY] = 1.0, 0.0
        self.register_buffer("w", w)
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.full((len(z), 1, 28, 28), -1.0)
        x[:, 0, 0, 0] = torch.tanh(z @ self.w / 4)
        x[:, 0, 0, 1] = torch.tanh(z[:, TINY] / 2)
        return x + self.p


class CodeEx:
    """Reads the codes a, b (pixel / 255): P(Pullover) = 0.2 + 0.6 a, P(Trouser) = 0.02 b (a
    class the generator never really makes: at most 2 %), P(Shirt) the rest."""

    name = "code"

    def extract(self, images: torch.Tensor):
        a = images[:, 0, 0].double().numpy() / 255
        b = images[:, 0, 1].double().numpy() / 255
        p = np.zeros((len(images), 10))
        p[:, 2], p[:, 1] = 0.2 + 0.6 * a, 0.02 * b
        p[:, 6] = 1 - p[:, 2] - p[:, 1]
        return np.zeros((len(images), 8), np.float32), p.astype(np.float32)


@pytest.fixture(scope="module")
def planted() -> ProbeResult:
    return probe(CodeG(), Z, extractor=CodeEx(), n_base=64, seed=0, dims=[PLAIN, BIG, TINY])


def col(e: str) -> int:
    return EFFECT_NAMES.index(e)


def test_floors_and_the_one_rule():
    f = floors(["p_Trouser", "brightness", "pixel_change"])
    np.testing.assert_array_equal(f, [CLASS_FLOOR, IMAGE_FLOOR, IMAGE_FLOOR])
    assert (CLASS_FLOOR, IMAGE_FLOOR) == (0.02, 0.01)
    thr = np.array([0.001, 0.05])
    # beyond the null but under the floor / at the floor / over the floor but inside the null
    got = is_real(np.array([[0.004, 0.0], [-0.02, 0.0], [0.0, 0.04]]), thr, np.array([0.02, 0.01]))
    np.testing.assert_array_equal(got, [[False, False], [True, False], [False, False]])


def test_span_is_read_off_the_curve_and_pixel_change_at_the_ends():
    values = [-3, -1, 0, 1, 3]
    # a saturating effect: the fitted slope x 6 would overstate it, the span does not
    curve = np.tanh(np.asarray(values, float))[:, None].repeat(2, axis=1)
    curve[:, 1] = [0.3, 0.1, 0.0, 0.1, 0.5]  # a distance from the unswept image
    s = spans(values, curve, ["brightness", "pixel_change"])
    np.testing.assert_allclose(s, [2 * np.tanh(3), 0.4])
    assert range_label(values) == "-3..+3" and range_label([0, 2]) == "0..+2"


def test_large_real_effect_ranks_above_tiny_effect_on_a_never_made_class(planted):
    res = planted
    big, tiny = res.dims.index(BIG), res.dims.index(TINY)
    pull, trou = col("p_Pullover"), col("p_Trouser")
    # The planted effects as measured: Pullover 0.054 p/unit (0.6 * 0.5 / 4 * E[sech^2] at
    # z = 0, a little less fitted over -3..3); Trouser 0.0032 (0.02 * 0.5 / 2 * E[sech^2]).
    assert 0.03 < res.slopes[big, pull] < 0.07
    assert 0 < res.slopes[tiny, trou] < 0.005
    # Both are beyond the null; the tiny one is the larger ratio (its null is ~0: no other dim
    # moves Trouser), which is what ranked it first before issue 22 (measured: 10.2x against
    # 6.3x; 1.30-1.61 times as large over probe seeds 0-3).
    assert res.beyond_null[big, pull] and res.beyond_null[tiny, trou]
    assert res.ratio[tiny, trou] > 1.2 * res.ratio[big].max()
    # Now only the large one is real, and it ranks first; the tiny one is under its floor.
    assert res.real[big, pull] and res.real[big, col("p_Shirt")]
    assert not res.real[tiny].any() and not res.real[res.dims.index(PLAIN)].any()
    assert res.ranked()[0] == BIG
    assert res.ranked().index(BIG) < res.ranked().index(TINY)
    assert res.score(BIG)[0] and not res.score(TINY)[0]


def test_sentences_name_only_real_effects_with_their_size_over_the_range(planted):
    res = planted
    s = res.sentence(BIG)
    assert s.startswith(f"dim {BIG}: + moves Shirt -> Pullover (Shirt -0.0")
    pull = res.span[res.dims.index(BIG), col("p_Pullover")]
    assert f"+{pull:.2f} over -3..+3)" in s and 0.15 < pull < 0.45
    assert "Trouser" not in s and "null" not in s  # no ratio, no unreal effect named
    t = res.sentence(TINY)
    assert t.startswith(f"dim {TINY}: nothing large enough to matter: like any random direction "
                        "(largest: p(Trouser) +0.003")
    # the image measures move with the code pixel too (1 pixel of 784: beyond their null,
    # far under 1 %/unit); only the largest is named
    assert t.split("; beyond the null only under its floor: ")[1].startswith(
        "p(Trouser) +0.003")
    assert t.endswith("/unit (floor 0.020/unit) and 6 smaller")
    p = res.sentence(PLAIN)
    assert p.startswith(f"dim {PLAIN}: nothing above the null: like any random direction "
                        "(largest: p(")
    assert "random directions" in p and "typical" in p
    # the rule's own threshold is named, not just the 95th percentile (which one dim in twenty
    # passes by chance when many are probed): the largest effect's measure, in its unit
    i = res.dims.index(PLAIN)
    j = int(res.size[i].argmax())
    thr, q95 = res.threshold[j], res.null_q95[j]
    assert thr > q95
    shown = f"{thr:.{3 if thr >= 0.01 else 4}f}" if res.effects[j].startswith("p_") else \
        f"{100 * thr:.1f} %"
    assert p.endswith(f"at their 95th percentile; beyond the null from {shown})")


def test_check_uses_the_same_rule(planted):
    rows = check(planted, [
        {"id": "big", "dim": BIG, "direction": "+", "gain": ["Pullover"], "lose": ["Shirt"]},
        {"id": "tiny", "dim": TINY, "direction": "+", "gain": ["Trouser"]},
        {"id": "tiny-any", "dim": TINY, "direction": "any", "effect": "p_Trouser"},
        {"id": "tiny-classes", "dim": TINY, "direction": "none", "effect": "classes"},
    ])
    got = {r["id"]: r["verdict"] for r in rows}
    assert got == {"big": "holds", "tiny": "fails", "tiny-any": "fails", "tiny-classes": "holds"}
    ev = {r["id"]: r["evidence"] for r in rows}
    assert "over -3..+3" in ev["tiny"] and "and 0.02/unit" in ev["tiny"]
    assert "beyond the null but under the 0.02/unit floor: p_Trouser" in ev["tiny-classes"]


def test_saved_probe_keeps_floor_size_and_ring_cells(planted, tmp_path):
    planted.save(tmp_path)
    header = (tmp_path / "probe.csv").read_text().splitlines()[0].split(",")
    assert header[-4:] == ["span", "floor", "size", "beyond_null"]
    first = (tmp_path / "ranked.txt").read_text().splitlines()[0]
    assert first.startswith(f"dim {BIG}: ")
