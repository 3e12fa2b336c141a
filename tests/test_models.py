"""The seeds' networks: printed structures kept exactly, shapes, ranges, init, parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganscope.errors import ConfigError
from ganscope.models import MODELS, build_models

# E1, from /work/shared/docs/lab-spec.md (every seed printed this).
MLP_G = """\
Generator(
  (fc1): Linear(in_features=100, out_features=128, bias=True)
  (nonlin1): LeakyReLU(negative_slope=0.2)
  (fc2): Linear(in_features=128, out_features=784, bias=True)
)"""
MLP_D = """\
Discriminator(
  (fc1): Linear(in_features=784, out_features=128, bias=True)
  (nonlin1): LeakyReLU(negative_slope=0.2)
  (fc2): Linear(in_features=128, out_features=1, bias=True)
)"""

# Seed 000's printout, with the ONE documented difference: CNNGenerator's conv1 is
# ConvTranspose2d(128, 128, kernel_size=(4, 4), stride=(2, 2), ...) instead of the printed
# kernel_size=(3, 3), stride=(1, 1), which left G's output at 14x14.
SEED000_G_CONV1 = ("  (conv1): ConvTranspose2d(128, 128, kernel_size=(3, 3), stride=(1, 1), "
                   "padding=(1, 1), bias=False)")
CNN_G_CONV1 = ("  (conv1): ConvTranspose2d(128, 128, kernel_size=(4, 4), stride=(2, 2), "
               "padding=(1, 1), bias=False)")
SEED000_G = """\
CNNGenerator(
  (fc1): Linear(in_features=100, out_features=6272, bias=True)
  (conv1): ConvTranspose2d(128, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
  (norm1): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (conv2): ConvTranspose2d(128, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
  (norm2): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (conv3): ConvTranspose2d(64, 1, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
)"""
CNN_D = """\
CNNDiscriminator(
  (conv1): Conv2d(1, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
  (conv2): Conv2d(64, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)
  (norm2): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (conv3): Conv2d(128, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
  (norm3): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (fc): Linear(in_features=128, out_features=1, bias=True)
)"""

# Seed 001 (myGenerator / myDiscriminator).
TINY_G = """\
myGenerator(
  (fc1): Sequential(
    (0): Linear(in_features=100, out_features=900, bias=True)
    (1): LeakyReLU(negative_slope=0.2)
  )
  (conv1): Sequential(
    (0): Conv2d(1, 64, kernel_size=(2, 2), stride=(1, 1))
    (1): LeakyReLU(negative_slope=0.2)
    (2): Conv2d(64, 1, kernel_size=(2, 2), stride=(1, 1))
    (3): LeakyReLU(negative_slope=0.2)
  )
)"""
TINY_D = """\
myDiscriminator(
  (conv1): Sequential(
    (0): Conv2d(1, 1, kernel_size=(2, 2), stride=(2, 2))
    (1): LeakyReLU(negative_slope=0.2)
  )
  (fc): Sequential(
    (0): Linear(in_features=196, out_features=128, bias=True)
    (1): LeakyReLU(negative_slope=0.2)
    (2): Linear(in_features=128, out_features=1, bias=True)
    (3): LeakyReLU(negative_slope=0.2)
  )
)"""

# Seed 002 (DCGAN). The report's PDF export broke G's layer (3) after "padding=(1, 1),";
# here it is the single line print() really writes.
DCGAN_G = """\
Generator(
  (main): Sequential(
    (0): ConvTranspose2d(100, 256, kernel_size=(7, 7), stride=(1, 1), bias=False)
    (1): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (2): ReLU(inplace=True)
    (3): ConvTranspose2d(256, 128, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (4): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (5): ReLU(inplace=True)
    (6): ConvTranspose2d(128, 1, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (7): Tanh()
  )
)"""
DCGAN_D = """\
Discriminator(
  (main): Sequential(
    (0): Conv2d(1, 128, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (1): LeakyReLU(negative_slope=0.2, inplace=True)
    (2): Conv2d(128, 256, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (3): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (4): LeakyReLU(negative_slope=0.2, inplace=True)
    (5): Conv2d(256, 1, kernel_size=(7, 7), stride=(1, 1), bias=False)
    (6): Sigmoid()
  )
)"""

ALL = ["cnn", "dcgan", "mlp", "tiny-cnn"]  # the image models
TANH = ["mlp", "cnn", "dcgan"]


def test_registry():
    assert MODELS.names() == sorted([*ALL, "mlp2d", "dcgan32", "dcgan64",  # faces, resnets:
                                     "sngan-resnet28", "sngan-resnet32"])  # their own tests
    with pytest.raises(ConfigError) as excinfo:
        build_models("resnet")
    assert str(excinfo.value) == ("unknown model 'resnet': choose one of cnn, dcgan, dcgan32, "
                                  "dcgan64, mlp, mlp2d, sngan-resnet28, sngan-resnet32, "
                                  "tiny-cnn")


def test_mlp_prints_exactly_as_e1():
    G, D = build_models("mlp")
    assert str(G) + "\n" + str(D) == MLP_G + "\n" + MLP_D
    # The sigmoid is a flag applied in forward, so it never shows in the printout.
    assert str(build_models("mlp", sigmoid=False)[1]) == MLP_D


def test_cnn_prints_as_seed_000_with_one_documented_difference():
    G, D = build_models("cnn")
    assert str(D) == CNN_D
    assert str(G) == SEED000_G.replace(SEED000_G_CONV1, CNN_G_CONV1)
    # Exactly one line differs from the seed's printout, and it is conv1.
    diff = [(a, b) for a, b in zip(str(G).splitlines(), SEED000_G.splitlines()) if a != b]
    assert diff == [(CNN_G_CONV1, SEED000_G_CONV1)]
    assert len(str(G).splitlines()) == len(SEED000_G.splitlines())
    assert str(build_models("cnn", sigmoid=False)[1]) == CNN_D


def test_tiny_cnn_prints_as_seed_001():
    G, D = build_models("tiny-cnn")
    assert str(G) == TINY_G
    assert str(D) == TINY_D
    assert str(build_models("tiny-cnn", sigmoid=False)[1]) == TINY_D


def test_dcgan_prints_as_seed_002():
    G, D = build_models("dcgan")
    assert str(G) == DCGAN_G
    assert str(D) == DCGAN_D
    # Without the sigmoid, the Sigmoid module disappears from the printout.
    no_sig = build_models("dcgan", sigmoid=False)[1]
    assert str(no_sig) == DCGAN_D.replace("    (6): Sigmoid()\n", "")
    assert not any(isinstance(m, nn.Sigmoid) for m in no_sig.modules())


@pytest.mark.parametrize("name", ALL)
def test_shapes(name):
    torch.manual_seed(0)
    G, D = build_models(name)
    z = torch.randn(3, 100)
    x = G(z)
    assert x.shape == (3, 1, 28, 28)
    assert x.dtype == torch.float32
    assert D(x).shape == (3, 1)
    assert D(torch.rand(5, 1, 28, 28)).shape == (5, 1)


def test_z_dim_is_respected():
    for name in ALL:
        G, D = build_models(name, z_dim=16)
        assert G(torch.randn(2, 16)).shape == (2, 1, 28, 28)
        with pytest.raises(RuntimeError):
            G(torch.randn(2, 100))


def scale_params(m: nn.Module, k: float) -> None:
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(k)


@pytest.mark.parametrize("name", TANH)
def test_generator_output_is_tanh_bounded(name):
    torch.manual_seed(0)
    G, _ = build_models(name)
    G.eval()
    # Blow the weights up so that pre-activations are far outside [-1, 1]: only a final tanh
    # keeps the output bounded (and then it saturates).
    scale_params(G, 20.0)
    x = G(torch.randn(16, 100) * 10)
    assert x.min().item() >= -1.0 and x.max().item() <= 1.0
    assert x.abs().max().item() > 0.99


def test_tiny_cnn_generator_is_not_bounded():
    # The seed's oddity, kept: G ends in LeakyReLU, not tanh.
    torch.manual_seed(0)
    G, _ = build_models("tiny-cnn")
    scale_params(G, 20.0)
    x = G(torch.randn(16, 100) * 10)
    assert x.max().item() > 1.0
    assert x.min().item() < 0.0


@pytest.mark.parametrize("name", ALL)
def test_sigmoid_flag(name):
    torch.manual_seed(0)
    _, D_sig = build_models(name, sigmoid=True)
    _, D_raw = build_models(name, sigmoid=False)
    D_raw.load_state_dict(D_sig.state_dict())
    D_sig.eval()
    D_raw.eval()
    scale_params(D_sig, 3.0)
    scale_params(D_raw, 3.0)
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        p, raw = D_sig(x), D_raw(x)
    assert p.min().item() >= 0.0 and p.max().item() <= 1.0
    assert torch.allclose(p, torch.sigmoid(raw), atol=1e-6)
    # Raw scores are not confined to [0, 1].
    assert ((raw < 0) | (raw > 1)).any()


def conv_weights(m: nn.Module) -> torch.Tensor:
    return torch.cat([c.weight.flatten() for c in m.modules()
                      if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d))])


def bn_layers(m: nn.Module) -> list[nn.BatchNorm2d]:
    return [c for c in m.modules() if isinstance(c, nn.BatchNorm2d)]


@pytest.mark.parametrize("name", ["cnn", "dcgan"])
def test_dcgan_init(name):
    torch.manual_seed(0)
    G, D = build_models(name, init="dcgan")
    for net in (G, D):
        w = conv_weights(net)
        assert w.std().item() == pytest.approx(0.02, abs=0.001)
        assert abs(w.mean().item()) < 0.001
        gamma = torch.cat([bn.weight.detach() for bn in bn_layers(net)])
        assert gamma.mean().item() == pytest.approx(1.0, abs=0.005)
        assert 0.015 < gamma.std().item() < 0.025
        assert all(torch.count_nonzero(bn.bias) == 0 for bn in bn_layers(net))
        for lin in (c for c in net.modules() if isinstance(c, nn.Linear)):
            assert torch.count_nonzero(lin.bias) == 0
    # PyTorch's default init is different (the seeds used it): BN gamma is exactly 1.
    torch.manual_seed(0)
    G0, D0 = build_models(name)
    for net in (G0, D0):
        assert all(torch.equal(bn.weight, torch.ones_like(bn.weight)) for bn in bn_layers(net))
    assert conv_weights(G0).std().item() != pytest.approx(0.02, abs=0.001)


def test_dcgan_init_on_mlp_linear_layers():
    torch.manual_seed(0)
    G, D = build_models("mlp", init="dcgan")
    w = torch.cat([G.fc1.weight.flatten(), G.fc2.weight.flatten(), D.fc1.weight.flatten()])
    assert w.std().item() == pytest.approx(0.02, abs=0.0005)
    assert torch.count_nonzero(G.fc2.bias) == 0


MLP2D_G = """\
Sequential(
  (0): Linear(in_features=2, out_features=512, bias=True)
  (1): ReLU()
  (2): Linear(in_features=512, out_features=256, bias=True)
  (3): ReLU()
  (4): Linear(in_features=256, out_features=2, bias=True)
)"""
MLP2D_D = """\
Sequential(
  (0): Linear(in_features=2, out_features=256, bias=True)
  (1): ReLU()
  (2): Linear(in_features=256, out_features=256, bias=True)
  (3): ReLU()
  (4): Linear(in_features=256, out_features=1, bias=True)
  (5): Sigmoid()
)"""


def test_mlp2d_is_seed_004s_mlps_with_configurable_sizes():
    G, D = build_models("mlp2d", z_dim=2)
    assert str(G) == MLP2D_G and str(D) == MLP2D_D  # lab-spec E5
    _, critic = build_models("mlp2d", z_dim=2, sigmoid=False)
    assert str(critic) == MLP2D_D.replace("  (5): Sigmoid()\n", "")
    G, D = build_models("mlp2d", z_dim=8, g_hidden=(64,), d_hidden=(32, 32, 32))
    assert [m.out_features for m in G if isinstance(m, nn.Linear)] == [64, 2]
    assert [m.out_features for m in D if isinstance(m, nn.Linear)] == [32, 32, 32, 1]
    assert G(torch.randn(5, 8)).shape == (5, 2) and D(torch.randn(5, 2)).shape == (5, 1)
    with pytest.raises(ConfigError) as e:
        build_models("mlp", g_hidden=(64,))
    assert str(e.value) == ("bad config: model 'mlp' has fixed layer sizes; model.g_hidden "
                            "applies to dcgan, dcgan32, dcgan64, mlp2d, sngan-resnet28, sngan-resnet32")


def test_dcgan_widths_resize_its_convs_and_the_default_is_the_seeds():
    G, D = build_models("dcgan", g_hidden=(128, 64), d_hidden=(64, 128))
    convs = [m for m in G.main if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(100, 128), (128, 64), (64, 1)]
    convs = [m for m in D.main if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 64), (64, 128), (128, 1)]
    x = G(torch.randn(3, 100))
    assert x.shape == (3, 1, 28, 28) and D(x).shape == (3, 1)
    seed_g, seed_d = build_models("dcgan")
    # 4x fewer multiply-adds in G's 14x14 layer, most of a step's arithmetic: the point of it
    assert G.main[3].weight.numel() * 4 == seed_g.main[3].weight.numel()
    assert [(c.in_channels, c.out_channels) for c in seed_g.main
            if isinstance(c, nn.ConvTranspose2d)] == [(100, 256), (256, 128), (128, 1)]
    assert build_models("dcgan", g_hidden=(256, 128))[0].state_dict().keys() \
        == seed_g.state_dict().keys()
    with pytest.raises(ConfigError) as e:
        build_models("dcgan", d_hidden=(64,))
    assert str(e.value) == ("bad config: model.d_hidden for dcgan is two channel widths, e.g. "
                            "[128, 256] (the seed's)")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name,g,d", [
    ("mlp", 114064, 100609),  # 100*128+128 + 128*784+784 ; 784*128+128 + 128+1
    ("cnn", 1027648, 222401),
    ("dcgan", 1781504, 539392),
    ("tiny-cnn", 91477, 25350),
])
def test_parameter_counts(name, g, d):
    G, D = build_models(name)
    assert (n_params(G), n_params(D)) == (g, d)
    # The sigmoid never adds parameters.
    assert n_params(build_models(name, sigmoid=False)[1]) == d

