"""SNGAN ResNets (sngan-resnet32, sngan-resnet28): shapes, ranges, widths, parameter counts,
init, gradients, channels_last and spectral-norm compatibility."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from ganscope.errors import ConfigError
from ganscope.models import MODELS, build_models, has_conv
from ganscope.models.resnet import DBlock, DBlockOptimized, GBlock

# name -> (channels, size, G start size)
NETS = {"sngan-resnet32": (3, 32, 4), "sngan-resnet28": (1, 28, 7)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These nets are tiny: one intra-op thread is faster than two contending for shared cores.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def conv3(cin: int, cout: int) -> int:  # a 3x3 conv with bias
    return 9 * cin * cout + cout


def conv1(cin: int, cout: int) -> int:  # a 1x1 conv with bias
    return cin * cout + cout


def test_registered_with_takes_and_summary():
    assert MODELS.get("sngan-resnet32").takes == "3x32x32"
    assert MODELS.get("sngan-resnet28").takes == "1x28x28"
    for name in NETS:
        summary = MODELS.get(name).summary
        assert "SNGAN ResNet" in summary and "64/64" in summary and "\n" not in summary


@pytest.mark.parametrize("name", NETS)
def test_shapes_and_ranges(name):
    c, s, _ = NETS[name]
    torch.manual_seed(0)
    G, D = build_models(name, z_dim=16)
    G.eval()
    x = G(torch.randn(5, 16))
    assert x.shape == (5, c, s, s) and x.dtype == torch.float32
    assert D(x).shape == (5, 1)  # as every other model's D
    with pytest.raises(RuntimeError):
        G(torch.randn(2, 100))  # z_dim is respected
    # Blown-up weights push pre-activations far out: only the final tanh keeps x in [-1, 1].
    with torch.no_grad():
        for p in G.parameters():
            p.mul_(20.0)
        x = G(torch.randn(16, 16) * 10)
    assert x.min().item() >= -1.0 and x.max().item() <= 1.0
    assert x.abs().max().item() > 0.99


@pytest.mark.parametrize("name", NETS)
def test_generator_starts_small_and_doubles_per_block(name):
    c, s, bottom = NETS[name]
    G, _ = build_models(name)
    first = next(m for m in G.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert isinstance(first, nn.Linear) and first.in_features == 100  # the map SeFa factorises
    assert first.out_features == 64 * bottom * bottom
    ups = [m for m in G.modules() if isinstance(m, GBlock)]
    assert len(ups) == int(math.log2(s // bottom)) and all(b.upsample for b in ups)


@pytest.mark.parametrize("name", NETS)
def test_sigmoid_flag(name):
    c, s, _ = NETS[name]
    torch.manual_seed(0)
    _, D_sig = build_models(name, sigmoid=True)
    _, D_raw = build_models(name, sigmoid=False)
    D_raw.load_state_dict(D_sig.state_dict())
    x = torch.rand(32, c, s, s) * 2 - 1
    with torch.no_grad():
        p, raw = D_sig(x), D_raw(x)
    assert p.shape == raw.shape == (32, 1)
    assert p.min().item() >= 0.0 and p.max().item() <= 1.0
    assert torch.allclose(p, torch.sigmoid(raw), atol=1e-6)
    assert ((raw < 0) | (raw > 1)).any()  # a critic's raw scores are not probabilities
    assert not any(isinstance(m, nn.Sigmoid) for m in D_raw.modules())


def test_discriminator_layouts():
    _, D32 = build_models("sngan-resnet32")
    _, D28 = build_models("sngan-resnet28")
    kinds = [[(type(b).__name__, getattr(b, "downsample", True)) for b in D.blocks]
             for D in (D32, D28)]
    assert kinds[0] == [("DBlockOptimized", True), ("DBlock", True), ("DBlock", False),
                        ("DBlock", False)]  # the paper's CIFAR D: 32 -> 16 -> 8, 8, 8
    assert kinds[1] == [("DBlockOptimized", True), ("DBlock", True), ("DBlock", False)]
    # Shortcuts: learnable (1x1 conv) when downsampling, identity for the same-size blocks.
    assert [b.c_sc is not None for b in D32.blocks[1:]] == [True, False, False]
    h = torch.rand(2, 3, 32, 32)
    sizes = []
    for b in D32.blocks:
        h = b(h)
        sizes.append(h.shape[-1])
    assert sizes == [16, 8, 8, 8]


@pytest.mark.parametrize("name,g,d", [
    # G32: fc 100*64*16+64*16 = 103424; 3 up blocks of BN 128 + conv3 36928 + BN 128 + conv3
    # 36928 + conv1 4160 = 78272 each; final BN 128; conv 64->3: 1731.
    ("sngan-resnet32", 103424 + 3 * 78272 + 128 + 1731,
     # D32: optimized 1792 + 36928 + 256; down 36928*2 + 4160; two plain 36928*2; fc 65.
     1792 + 36928 + 256 + 78016 + 2 * 73856 + 65),
    # G28: fc 100*64*49+64*49 = 316736; 2 up blocks; BN 128; conv 64->1: 577.
    ("sngan-resnet28", 316736 + 2 * 78272 + 128 + 577,
     # D28: optimized 640 + 36928 + 128; down 78016; one plain 73856; fc 65.
     640 + 36928 + 128 + 78016 + 73856 + 65),
])
def test_parameter_counts_at_defaults(name, g, d):
    assert (g, d) == {"sngan-resnet32": (340099, 264769),
                      "sngan-resnet28": (473985, 189633)}[name]
    G, D = build_models(name)
    assert (n_params(G), n_params(D)) == (g, d)
    assert n_params(build_models(name, sigmoid=False)[1]) == d  # the sigmoid adds none


def test_paper_widths_are_reachable():
    # The paper's CIFAR-10 nets (z 128, G 256, D 128): Mimicry's reported 4.3M / 1.1M.
    G, D = build_models("sngan-resnet32", z_dim=128, g_hidden=(256,), d_hidden=(128,))
    g = (128 * 4096 + 4096) + 3 * (512 + conv3(256, 256) + 512 + conv3(256, 256)
                                   + conv1(256, 256)) + 512 + conv3(256, 3)
    d = (conv3(3, 128) + conv3(128, 128) + conv1(3, 128)) \
        + (2 * conv3(128, 128) + conv1(128, 128)) + 2 * 2 * conv3(128, 128) + 129
    assert (n_params(G), n_params(D)) == (g, d) == (4_276_739, 1_053_825)


@pytest.mark.parametrize("name", NETS)
def test_width_options_scale_conv_parameters(name):
    G32, D32 = build_models(name, g_hidden=(32,), d_hidden=(32,))
    G64, D64 = build_models(name, g_hidden=(64,), d_hidden=(64,))
    assert G32.blocks[0].c1.weight.shape == (32, 32, 3, 3)
    assert D64.blocks[1].c2.weight.shape == (64, 64, 3, 3)

    def wide_convs(m: nn.Module) -> int:  # the width x width 3x3 convs dominate
        return sum(n_params(c) for c in m.modules()
                   if isinstance(c, nn.Conv2d) and c.in_channels == c.out_channels > 3)

    for small, big in ((G32, G64), (D32, D64)):
        assert wide_convs(big) / wide_convs(small) == pytest.approx(4.0, rel=0.01)
        assert 2.0 < n_params(big) / n_params(small) < 4.0  # the fc/first layers grow linearly
    # G and D widths are independent.
    G, D = build_models(name, g_hidden=(16,), d_hidden=(48,))
    assert G.width == 16 and D.fc.in_features == 48


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("key", ["g_hidden", "d_hidden"])
@pytest.mark.parametrize("bad", [(64, 64), (64, 128, 256), (0,)])
def test_bad_width_is_one_config_error_line(name, key, bad):
    with pytest.raises(ConfigError) as e:
        build_models(name, **{key: bad})
    assert str(e.value) == (f"bad config: model.{key} for {name} is one channel width, "
                            "e.g. [64]")


def test_discriminator_rejects_the_wrong_image_size():
    _, D = build_models("sngan-resnet32")
    with pytest.raises(ConfigError) as e:
        D(torch.rand(2, 3, 64, 64))  # sum pooling would otherwise score it silently
    assert str(e.value) == ("bad config: model sngan-resnet32 takes 3x32x32 images but the data "
                            "are 3x64x64: pick the model for that size")


def test_xavier_init():
    torch.manual_seed(0)
    G, D = build_models("sngan-resnet32", g_hidden=(128,), d_hidden=(128,))

    def bound(w: torch.Tensor, gain: float) -> float:
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        return gain * math.sqrt(6.0 / (fan_in + fan_out))

    checks = [(G.blocks[0].c1.weight, math.sqrt(2)), (D.blocks[2].c2.weight, math.sqrt(2)),
              (G.blocks[1].c_sc.weight, 1.0), (G.conv_out.weight, 1.0), (G.fc.weight, 1.0)]
    for w, gain in checks:
        b = bound(w, gain)
        assert w.abs().max().item() <= b
        assert w.std().item() == pytest.approx(b / math.sqrt(3), rel=0.05)  # uniform(-b, b)
    convs = [m for m in (*G.modules(), *D.modules()) if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(torch.count_nonzero(m.bias) == 0 for m in convs)
    # No spectral norm inside: plain layers, left for tech.spectral_norm to wrap.
    assert not any(parametrize.is_parametrized(m) for m in convs)
    # build_models(init="dcgan") still overrides it.
    Gd, _ = build_models("sngan-resnet32", init="dcgan")
    assert Gd.blocks[0].c1.weight.std().item() == pytest.approx(0.02, rel=0.05)


def g_bias_cancelled_by_bn(name: str) -> bool:
    """G's conv biases that feed a BatchNorm (c1 -> b2; c2 and the shortcut -> the next BN):
    batch statistics remove a per-channel constant, so in train mode their gradient is ~0. The
    reference implementations keep these biases; so does this one (same parameter counts)."""
    return name.startswith("blocks.") and name.endswith(".bias") and ".c" in name


@pytest.mark.parametrize("name", NETS)
def test_gradients_reach_every_parameter(name):
    c, s, _ = NETS[name]
    torch.manual_seed(0)
    G, D = build_models(name, z_dim=8, sigmoid=False, g_hidden=(16,), d_hidden=(16,))
    real = torch.rand(4, c, s, s) * 2 - 1
    loss = D(G(torch.randn(4, 8))).mean() + D(real).square().mean()  # every D param counts
    loss.backward()
    for net_name, net in (("G", G), ("D", D)):
        for pname, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (net_name, pname)
            big = p.grad.abs().max().item()
            if net_name == "G" and g_bias_cancelled_by_bn(pname):
                assert big < 1e-5, pname
            else:
                assert big > 1e-5, (net_name, pname)
    # With running statistics (eval mode) even those biases get a gradient.
    G.zero_grad()
    G.eval()
    D(G(torch.randn(4, 8))).mean().backward()
    assert all(p.grad.abs().max().item() > 1e-5 for p in G.parameters())


@pytest.mark.parametrize("name", NETS)
def test_one_optimizer_step_in_channels_last(name):
    c, s, _ = NETS[name]
    torch.manual_seed(0)
    # A raw critic and the Wasserstein loss: without spectral norm the sum-pooled D's logits
    # start large (tens at width 8), where a sigmoid D would be saturated.
    G, D = build_models(name, z_dim=8, sigmoid=False, g_hidden=(8,), d_hidden=(8,))
    assert has_conv(G) and has_conv(D)
    real = torch.rand(4, c, s, s) * 2 - 1
    with torch.no_grad():
        want = D.eval()(real)
    D.train()
    G.to(memory_format=torch.channels_last)
    D.to(memory_format=torch.channels_last)
    real = real.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # same math in NHWC
        assert torch.allclose(D.eval()(real), want, atol=1e-5)
    D.train()
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.9))
    before = [p.detach().clone() for p in (*G.parameters(), *D.parameters())]
    fake = G(torch.randn(4, 8))
    assert fake.shape == (4, c, s, s)
    d_loss = D(fake.detach()).mean() - D(real).mean()
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = -D(fake).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    after = [p.detach() for p in (*G.parameters(), *D.parameters())]
    assert all(torch.isfinite(p).all() for p in after)
    frozen = [n for (n, _), a, b in zip([*G.named_parameters(), *D.named_parameters()], before,
                                        after) if torch.equal(a, b)]
    assert frozen == ["fc.bias"]  # D's output bias cancels in mean(fake) - mean(real)
    assert D.blocks[0].c1.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", NETS)
def test_spectral_norm_wraps_every_layer(name):
    # tech.spectral_norm wraps every Conv2d/Linear weight with torch's parametrization; the
    # nets must keep working and become (about) 1-Lipschitz per layer.
    c, s, _ = NETS[name]
    torch.manual_seed(0)
    _, D = build_models(name, sigmoid=False, d_hidden=(16,))
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    n_blocks = sum(isinstance(b, (DBlock, DBlockOptimized)) for b in D.modules())
    assert len(layers) == 2 * n_blocks + 2 + 1  # two 1x1 shortcuts (the downsampling blocks), fc
    for m in layers:
        parametrizations.spectral_norm(m)
    x = torch.rand(3, c, s, s) * 2 - 1
    D(x)  # one power iteration (train mode) is exact for fc's 1 x width weight
    D.eval()
    out = D(x)
    assert out.shape == (3, 1) and torch.isfinite(out).all()
    w = D.fc.weight
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=1e-3)
