"""DiffAugment ops and ADA's probability (ganscope.techniques.augment): each op checked against
its published definition on hand-checkable cases, recomputed here from the drawn numbers
(not through the module's own helpers); gradients; pairing; per-image probability; the random
stream; the controller of p and its resume."""

from __future__ import annotations

import io
import math

import pytest
import torch

from ganscope.errors import ConfigError
from ganscope.techniques.augment import OPS, AdaptiveP, Augment, parse_policy

SIZES = [(28, 28), (32, 32), (9, 13), (8, 8)]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int, c: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=gen(seed)) * 2 - 1


def shifts_from(u: torch.Tensor, size: int) -> list[int]:
    """DiffAugment: shift in {-s..s}, s = int(size / 8 + 0.5), from the drawn uniforms."""
    s = int(size * 0.125 + 0.5)
    return [math.floor(v * (2 * s + 1)) - s for v in u.tolist()]


def tops_from(u: torch.Tensor, size: int) -> tuple[list[int], int]:
    """DiffAugment: side int(size / 2 + 0.5), centre in {0 .. size - side % 2}, top = centre -
    side // 2; from the drawn uniforms. Returns the tops and the side."""
    side = int(size * 0.5 + 0.5)
    choices = size + 1 - side % 2
    return [math.floor(v * choices) - side // 2 for v in u.tolist()], side


# ---- policy --------------------------------------------------------------------------------


def test_ops_are_the_three_published_policies_in_order():
    assert list(OPS) == ["color", "translation", "cutout"]


def test_parse_policy():
    assert parse_policy("color,translation,cutout") == ("color", "translation", "cutout")
    assert parse_policy(" cutout , color") == ("cutout", "color")
    assert parse_policy("translation") == ("translation",)
    assert parse_policy("") == ()
    assert parse_policy("  ") == ()


def test_parse_policy_errors_pin_the_message():
    with pytest.raises(ConfigError) as err:
        parse_policy("color,xyz")
    assert str(err.value) == ("bad config: unknown augmentation 'xyz' "
                              "(known: color, translation, cutout)")
    with pytest.raises(ConfigError, match="twice"):
        parse_policy("color,color")
    with pytest.raises(ConfigError, match="unknown augmentation 'blur'"):
        Augment(("blur",))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        Augment(("color",), p=1.5)


# ---- color ---------------------------------------------------------------------------------


def test_brightness_alone_adds_the_constant():
    x = images(3, 3, 9, 13)
    b = torch.tensor([-0.5, 0.1, 0.45], dtype=torch.float64)
    ones = torch.ones(3, dtype=torch.float64)
    out = OPS["color"].apply(x, {"brightness": b, "saturation": ones, "contrast": ones})
    torch.testing.assert_close(out, x + b.float().view(3, 1, 1, 1))


def test_saturation_zero_greys_and_contrast_zero_flattens():
    x = images(2, 3, 8, 8)
    zeros = torch.zeros(2, dtype=torch.float64)
    ones = torch.ones(2, dtype=torch.float64)
    grey = OPS["color"].apply(x, {"brightness": zeros, "saturation": zeros, "contrast": ones})
    torch.testing.assert_close(grey, x.mean(1, keepdim=True).expand_as(x))
    flat = OPS["color"].apply(x, {"brightness": zeros, "saturation": ones, "contrast": zeros})
    torch.testing.assert_close(flat, x.mean((1, 2, 3), keepdim=True).expand_as(x))


@pytest.mark.parametrize("c", [1, 3])
def test_color_matches_the_definition_with_the_drawn_factors(c):
    x = images(5, c, 9, 13)
    params = OPS["color"].draw(5, gen(3))
    b, s, k = (params[name] for name in ("brightness", "saturation", "contrast"))
    assert ((b >= -0.5) & (b < 0.5)).all() and ((s >= 0) & (s < 2)).all()
    assert ((k >= 0.5) & (k < 1.5)).all()
    out = OPS["color"].apply(x, params)
    for i in range(5):  # DiffAugment's order: brightness, saturation, contrast
        y = x[i].double() + b[i]
        y = (y - y.mean(0, keepdim=True)) * s[i] + y.mean(0, keepdim=True)
        y = (y - y.mean()) * k[i] + y.mean()
        torch.testing.assert_close(out[i].double(), y, atol=1e-5, rtol=0)


def test_color_gradient_on_a_grey_image():
    # grey: saturation is the identity, so out = k * x + (1 - k) * mean(x) + b: the gradient of
    # one output pixel is k at that pixel plus (1 - k) / (H * W) everywhere
    x = images(1, 1, 9, 13).requires_grad_(True)
    params = OPS["color"].draw(1, gen(4))
    k = params["contrast"].item()
    out = OPS["color"].apply(x, params)
    out[0, 0, 4, 7].backward()
    want = torch.full((1, 1, 9, 13), (1 - k) / (9 * 13))
    want[0, 0, 4, 7] += k
    torch.testing.assert_close(x.grad, want)
    x.grad = None
    OPS["color"].apply(x, params).sum().backward()  # the mean terms cancel in a sum
    torch.testing.assert_close(x.grad, torch.ones_like(x))


# ---- translation ---------------------------------------------------------------------------


def test_translation_moves_a_bright_pixel_by_the_drawn_shift():
    n, h, w = 12, 28, 28
    x = torch.zeros(n, 1, h, w)
    x[:, 0, 14, 13] = 1.0
    x.requires_grad_(True)
    params = OPS["translation"].draw(n, gen(5))
    out = OPS["translation"].apply(x, params)
    downs, rights = shifts_from(params["u_h"], h), shifts_from(params["u_w"], w)
    assert len({(d, r) for d, r in zip(downs, rights)}) > 1
    for i in range(n):
        want = torch.zeros(1, h, w)
        want[0, 14 + downs[i], 13 + rights[i]] = 1.0
        assert torch.equal(out[i], want)
    (out * torch.arange(n).view(n, 1, 1, 1)).sum().backward()
    # gradient flows back to the source pixel with the image's weight
    assert torch.equal(x.grad[:, 0, 14, 13], torch.arange(n, dtype=torch.float32))


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("c", [1, 3])
def test_translation_is_a_zero_filled_shift(hw, c):
    h, w = hw
    n = 6
    x = images(n, c, h, w).requires_grad_(True)
    params = OPS["translation"].draw(n, gen(6))
    out = OPS["translation"].apply(x, params)
    out.sum().backward()
    downs, rights = shifts_from(params["u_h"], h), shifts_from(params["u_w"], w)
    for i in range(n):
        want = torch.zeros(c, h, w)
        grad = torch.zeros(c, h, w)
        for r in range(h):
            for q in range(w):
                if 0 <= r + downs[i] < h and 0 <= q + rights[i] < w:
                    want[:, r + downs[i], q + rights[i]] = x[i, :, r, q].detach()
                    grad[:, r, q] = 1.0
        assert torch.equal(out[i], want)
        assert torch.equal(x.grad[i], grad)  # 1 where the pixel stays inside, 0 shifted out


def test_translation_covers_exactly_one_eighth_each_way():
    params = OPS["translation"].draw(2000, gen(7))
    for size, s in ((32, 4), (28, 4), (13, 2), (9, 1), (8, 1)):
        for key in ("u_h", "u_w"):
            assert set(shifts_from(params[key], size)) == set(range(-s, s + 1))


# ---- cutout --------------------------------------------------------------------------------


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("c", [1, 3])
def test_cutout_zeroes_the_drawn_half_size_rectangle(hw, c):
    h, w = hw
    n = 8
    x = (images(n, c, h, w) * 0.5 + 0.75).requires_grad_(True)  # in [0.25, 1.25]: never 0
    params = OPS["cutout"].draw(n, gen(8))
    out = OPS["cutout"].apply(x, params)
    out.sum().backward()
    tops, side_h = tops_from(params["u_h"], h)
    lefts, side_w = tops_from(params["u_w"], w)
    for i in range(n):
        mask = torch.ones(c, h, w)
        rows = range(max(tops[i], 0), min(tops[i] + side_h, h))
        cols = range(max(lefts[i], 0), min(lefts[i] + side_w, w))
        mask[:, rows.start:rows.stop, cols.start:cols.stop] = 0
        assert torch.equal(out[i], x[i].detach() * mask)
        assert torch.equal(x.grad[i], mask)  # the gradient of x * mask is the mask
        assert int((out[i] == 0).sum()) == c * len(rows) * len(cols)


def test_cutout_inside_the_image_is_exactly_half_size_and_centres_span_the_range():
    h = w = 32
    params = OPS["cutout"].draw(3000, gen(9))
    tops, side = tops_from(params["u_h"], h)
    assert side == 16 and min(tops) == -8 and max(tops) == 24  # centre 0..32
    inside = next(i for i in range(3000) if 0 <= tops[i] <= 16
                  and 0 <= tops_from(params["u_w"], w)[0][i] <= 16)
    one = {k: v[inside:inside + 1] for k, v in params.items()}
    out = OPS["cutout"].apply(torch.ones(1, 3, h, w), one)
    assert int((out == 0).sum()) == 3 * 16 * 16
    odd_tops, odd_side = tops_from(params["u_h"], 9)
    assert odd_side == 5 and min(odd_tops) == -2 and max(odd_tops) == 6  # centre 0..8


# ---- Augment -------------------------------------------------------------------------------

FULL = ("color", "translation", "cutout")


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("c", [1, 3])
def test_same_generator_state_gives_the_same_output_bit_for_bit(hw, c):
    x = images(4, c, *hw)
    aug = Augment(FULL, p=0.7)
    a, b = aug(x, gen(10)), aug(x, gen(10))
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.equal(a, aug(x, gen(11)))


def test_gradient_through_the_full_policy_matches_finite_differences():
    aug = Augment(FULL, p=0.5)
    params = aug.draw(4, gen(12))
    x = images(4, 3, 9, 13).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: aug.apply(t, params), (x,))
    # images that no op touches get the identity's gradient, exactly 1
    off = ~(params["color"]["mask"] | params["translation"]["mask"] | params["cutout"]["mask"])
    aug.apply(x, params).sum().backward()
    assert int(off.sum()) > 0 and bool((x.grad[off] == 1).all())
    assert not bool((x.grad[~off] == 1).all())


def test_pair_same_gives_identical_transforms():
    aug = Augment(FULL)
    real = images(5, 3, 32, 32, seed=2)
    ra, fa = aug.pair(real, real.clone(), gen(13), same=True)
    assert torch.equal(ra, fa)
    # different images: the same draw, applied to each
    fake = images(5, 3, 32, 32, seed=3)
    ra, fa = aug.pair(real, fake, gen(13), same=True)
    params = aug.draw(5, gen(13))
    assert torch.equal(ra, aug.apply(real, params)) and torch.equal(fa, aug.apply(fake, params))
    # constant images through translation + cutout: the zeroed pixels coincide
    geo = Augment(("translation", "cutout"))
    ra, fa = geo.pair(torch.full((5, 1, 32, 32), 0.5), torch.full((5, 1, 32, 32), -0.7), gen(14),
                      same=True)
    assert torch.equal(ra == 0, fa == 0)
    # at least the cutout's part inside: its centre lies in the image, so 8 x 8 or more
    assert int((ra == 0).flatten(1).sum(1).min()) >= 8 * 8
    with pytest.raises(ValueError, match="equal batch sizes"):
        aug.pair(real, fake[:3], gen(0), same=True)


def test_pair_not_same_draws_real_then_fake():
    aug = Augment(FULL)
    real = images(5, 3, 28, 28)
    ra, fa = aug.pair(real, real.clone(), gen(15), same=False)
    assert not torch.equal(ra, fa)
    g = gen(15)
    assert torch.equal(ra, aug(real, g)) and torch.equal(fa, aug(real, g))
    ra, fa = aug.pair(real, real[:2], gen(15), same=False)  # sizes may differ
    assert fa.shape == (2, 3, 28, 28)


def test_p_zero_and_empty_policy_are_the_identity():
    x = images(4, 3, 9, 13)
    assert Augment(FULL, p=0.0)(x, gen()) is x
    assert Augment((), p=1.0)(x, gen()) is x
    assert Augment((), p=1.0).draw(4, gen()) == {}


def test_p_one_augments_every_image():
    aug = Augment(("cutout",), p=1.0)
    params = aug.draw(500, gen(16))
    assert bool(params["cutout"]["mask"].all())
    out = aug.apply(torch.ones(500, 1, 8, 8), params)
    assert bool(((out == 0).flatten(1).sum(1) >= 4).all())  # at least a 4x4 box's corner 2x2


def test_p_half_augments_about_half_and_the_rest_pass_through():
    n, p = 4000, 0.5
    aug = Augment(("cutout", "translation"), p=p)
    params = aug.draw(n, gen(17))
    # binomial(4000, 0.5): sd = sqrt(n p (1 - p)) = 31.6; 6 sd = 190
    bound = 6 * math.sqrt(n * p * (1 - p))
    for name in aug.policy:
        assert abs(int(params[name]["mask"].sum()) - n * p) < bound
    x = torch.ones(n, 1, 8, 8)
    cut = Augment(("cutout",), p=p)
    cparams = cut.draw(n, gen(18))
    changed = (cut.apply(x, cparams) != x).flatten(1).any(1)
    assert torch.equal(changed, cparams["cutout"]["mask"])  # changed exactly where drawn
    assert abs(int(changed.sum()) - n * p) < bound
    # images with every mask off come back bit for bit
    x = images(64, 3, 9, 13)
    full = Augment(FULL, p=0.5)
    params = full.draw(64, gen(19))
    off = ~(params["color"]["mask"] | params["translation"]["mask"] | params["cutout"]["mask"])
    out = full.apply(x, params)
    assert int(off.sum()) > 0 and torch.equal(out[off], x[off])
    assert not torch.equal(out[~off], x[~off])


def test_random_stream_does_not_depend_on_p():
    g3, g9, g0 = gen(20), gen(20), gen(20)
    lo = Augment(FULL, p=0.3).draw(50, g3)
    hi = Augment(FULL, p=0.9).draw(50, g9)
    Augment(FULL, p=0.0).draw(50, g0)
    assert torch.equal(g3.get_state(), g9.get_state())
    assert torch.equal(g3.get_state(), g0.get_state())
    for name in FULL:
        for key, value in lo[name].items():
            if key != "mask":
                assert torch.equal(value, hi[name][key])
        # the same uniforms against a higher p: every image on at 0.3 is on at 0.9
        assert bool((hi[name]["mask"] | ~lo[name]["mask"]).all())


# ---- AdaptiveP -----------------------------------------------------------------------------


def test_adaptive_p_rises_by_exactly_one_step_per_adjustment_on_overfitting():
    ada = AdaptiveP(target=0.6, interval=4, speed_images=1024, p=0.0)  # step 64 * 4 / 1024
    assert ada.r_t is None
    signs = torch.ones(64)
    for adjustment in range(1, 6):
        for _ in range(4):
            assert ada.p == min(0.25 * (adjustment - 1), 1.0)
            ada.observe(signs, 64)
        assert ada.r_t == 1.0
        assert ada.p == min(0.25 * adjustment, 1.0)  # 0.25, 0.5, 0.75, 1.0, clamped 1.0
    default = AdaptiveP()
    for _ in range(4):
        default.observe(torch.ones(32, 1), 32)
    assert default.p == 32 * 4 / 500_000


def test_adaptive_p_falls_and_clamps_at_zero():
    ada = AdaptiveP(target=0.6, interval=2, speed_images=256, p=0.6)  # step 32 * 2 / 256
    signs = -torch.ones(32)
    ps = []
    for _ in range(4):
        for _ in range(2):
            ada.observe(signs, 32)
        ps.append(ada.p)
    assert ps == pytest.approx([0.35, 0.1, 0.0, 0.0], abs=1e-12)
    assert ada.r_t == -1.0
    # r_t exactly on target: no move; zeros count in the mean
    still = AdaptiveP(target=0.5, interval=1, speed_images=100, p=0.5)
    still.observe(torch.tensor([1.0, 1.0, 0.0, 0.0]), 4)
    assert still.r_t == 0.5 and still.p == 0.5


def test_adaptive_p_state_dict_round_trip_continues_identically():
    signs = [torch.sign(torch.randn(16, generator=gen(30 + i)) + 0.4) for i in range(40)]
    a = AdaptiveP(target=0.2, interval=3, speed_images=2000)
    for s in signs[:10]:  # 10 calls: stops in the middle of an interval
        a.observe(s, 16)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = AdaptiveP()
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert b.p == a.p and b.r_t == a.r_t and b.state_dict() == a.state_dict()
    trace_a, trace_b = [], []
    for s in signs[10:]:
        a.observe(s, 16)
        b.observe(s, 16)
        trace_a.append((a.p, a.r_t))
        trace_b.append((b.p, b.r_t))
    assert trace_a == trace_b and a.p > 0
    # and equal to a run never interrupted
    c = AdaptiveP(target=0.2, interval=3, speed_images=2000)
    for s in signs:
        c.observe(s, 16)
    assert (c.p, c.r_t) == (a.p, a.r_t)
