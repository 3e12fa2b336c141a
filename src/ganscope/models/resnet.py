"""SNGAN ResNets (Miyato et al. 2018, appendix B.4, as re-implemented in Mimicry and StudioGAN).

- G: Linear z -> ch x b x b (b = 4 for 32 px, 7 for 28 px) -> up-sampling residual blocks
  [BN, ReLU, nearest x2, conv3x3, BN, ReLU, conv3x3; shortcut: nearest x2, conv1x1] ->
  BN, ReLU, conv3x3 -> image channels, tanh.
- D: optimised first block [conv3x3, ReLU, conv3x3, avgpool2; shortcut: avgpool2, conv1x1] ->
  residual blocks [ReLU, conv3x3, ReLU, conv3x3, (avgpool2); shortcut conv1x1 (then avgpool2)
  only when the channels change or it downsamples, else identity] -> ReLU, sum over space,
  Linear -> 1 (sigmoid only for BCE-type losses).

``sngan-resnet32`` (RGB 32x32) is the paper's CIFAR-10 layout: G 4 -> 8 -> 16 -> 32; D 32 -> 16
-> 8 then two 8x8 blocks. ``sngan-resnet28`` (grey 28x28, Fashion-MNIST) cuts it down: G 7 ->
14 -> 28; D 28 -> 14 -> 7 then one 7x7 block.

The layers are plain Conv2d/Linear: spectral normalisation is NOT built in (``tech.spectral_norm``
wraps every conv/linear weight of any net), so without it these are plain ResNet GANs. One channel
width per net, from ``model.g_hidden`` / ``model.d_hidden`` (e.g. ``[64]``); the defaults (64, 64)
train on a CPU, the paper's 256 (G) / 128 (D) are ``[256]`` / ``[128]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganscope.errors import ConfigError
from ganscope.models import register_model
from ganscope.models.conv import BatchNorm2d

G_WIDTH = 64  # the paper: 256
D_WIDTH = 64  # the paper: 128

# Initialisation, as in the SNGAN reference code (pfnet-research/sngan_projection, Chainer) and
# its PyTorch re-implementations (Mimicry, StudioGAN): Xavier/Glorot uniform weights. The 3x3
# convs inside the residual branches use gain sqrt(2) because each is preceded by a ReLU, which
# halves the signal's second moment (He et al.); sqrt(2) restores it so the residual branch
# neither shrinks nor blows up through the blocks. The 1x1 shortcuts and the first/last layers
# (z -> features, features -> image, features -> score) are not ReLU-fed residual convs and keep
# gain 1. Biases start at 0 (Chainer's default in the reference). With spectral norm on, the
# weights are divided by their largest singular value, so the init mostly sets their direction;
# without it, the scale matters too. ``model.init: dcgan`` (build_models) overrides all of this.
RES_GAIN = math.sqrt(2.0)


def _init(layer: nn.Conv2d | nn.Linear, gain: float) -> None:
    nn.init.xavier_uniform_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _conv(cin: int, cout: int, k: int, gain: float) -> nn.Conv2d:
    c = nn.Conv2d(cin, cout, k, 1, k // 2)
    _init(c, gain)
    return c


class GBlock(nn.Module):
    """Up-sampling residual block: BN, ReLU, nearest x2, conv3x3, BN, ReLU, conv3x3 (+ shortcut)."""

    def __init__(self, cin: int, cout: int, upsample: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.b1 = BatchNorm2d(cin)
        self.c1 = _conv(cin, cout, 3, RES_GAIN)
        self.b2 = BatchNorm2d(cout)
        self.c2 = _conv(cout, cout, 3, RES_GAIN)
        self.c_sc = _conv(cin, cout, 1, 1.0) if (cin != cout or upsample) else None

    def _up(self, h: torch.Tensor) -> torch.Tensor:
        return F.interpolate(h, scale_factor=2, mode="nearest") if self.upsample else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(self._up(F.relu(self.b1(x))))
        h = self.c2(F.relu(self.b2(h)))
        sc = self.c_sc(self._up(x)) if self.c_sc is not None else x
        return h + sc


class DBlockOptimized(nn.Module):
    """D's first block on the image: conv3x3, ReLU, conv3x3, avgpool; shortcut avgpool, conv1x1.

    No ReLU before the first conv (the input is an image, not features)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c1 = _conv(cin, cout, 3, RES_GAIN)
        self.c2 = _conv(cout, cout, 3, RES_GAIN)
        self.c_sc = _conv(cin, cout, 1, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


class DBlock(nn.Module):
    """ReLU, conv3x3, ReLU, conv3x3, (avgpool); a conv1x1 shortcut (then avgpool) only when the
    channels change or it downsamples, else the identity."""

    def __init__(self, cin: int, cout: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.c1 = _conv(cin, cout, 3, RES_GAIN)
        self.c2 = _conv(cout, cout, 3, RES_GAIN)
        self.c_sc = _conv(cin, cout, 1, 1.0) if (cin != cout or downsample) else None

    def _down(self, h: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(h, 2) if self.downsample else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._down(self.c2(F.relu(self.c1(F.relu(x)))))
        sc = self._down(self.c_sc(x)) if self.c_sc is not None else x
        return h + sc


class SNGANGenerator(nn.Module):
    """z (N, z_dim) -> images (N, channels, S, S) in [-1, 1], S = bottom * 2**n_up."""

    def __init__(self, z_dim: int = 100, width: int = G_WIDTH, channels: int = 3,
                 bottom: int = 4, n_up: int = 3) -> None:
        super().__init__()
        self.z_dim, self.width, self.bottom = z_dim, width, bottom
        # First registered layer: the linear map of z that SeFa (directions) factorises.
        self.fc = nn.Linear(z_dim, width * bottom * bottom)
        _init(self.fc, 1.0)
        self.blocks = nn.Sequential(*(GBlock(width, width, upsample=True) for _ in range(n_up)))
        self.bn = BatchNorm2d(width)
        self.conv_out = _conv(width, channels, 3, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.size(0), self.width, self.bottom, self.bottom)
        h = self.blocks(h)
        return torch.tanh(self.conv_out(F.relu(self.bn(h))))


class SNGANDiscriminator(nn.Module):
    """Images (N, channels, S, S) -> (N, 1) scores (probabilities with ``sigmoid``)."""

    def __init__(self, name: str, sigmoid: bool = True, width: int = D_WIDTH, channels: int = 3,
                 image_size: int = 32, n_down: int = 1, n_flat: int = 2) -> None:
        super().__init__()
        self.name, self.channels, self.image_size = name, channels, image_size
        blocks: list[nn.Module] = [DBlockOptimized(channels, width)]
        blocks += [DBlock(width, width, downsample=True) for _ in range(n_down)]
        blocks += [DBlock(width, width, downsample=False) for _ in range(n_flat)]
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(width, 1)
        _init(self.fc, 1.0)
        self.sigmoid = sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        want = (self.channels, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != want:  # sum pooling would take any size without a word
            got = "x".join(map(str, x.shape[1:]))
            raise ConfigError(f"bad config: model {self.name} takes "
                              f"{'x'.join(map(str, want))} images but the data are {got}: pick "
                              "the model for that size")
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling, as in the paper
        out = self.fc(h)
        return torch.sigmoid(out) if self.sigmoid else out


def _width(widths: tuple[int, ...], default: int, key: str, name: str) -> int:
    if not widths:
        return default
    if len(widths) != 1 or int(widths[0]) < 1:
        raise ConfigError(f"bad config: model.{key} for {name} is one channel width, e.g. [64]")
    return int(widths[0])


@register_model("sngan-resnet32", "SNGAN ResNet for RGB 32x32 (no SN built in): G z->4x4, 3 up "
                                  "blocks; D 4 res blocks, sum pool; widths 64/64 (paper 256/128)",
                takes="3x32x32")
def build_resnet32(z_dim: int, sigmoid: bool, g_hidden: tuple[int, ...] = (),
                   d_hidden: tuple[int, ...] = ()) -> tuple[nn.Module, nn.Module]:
    name = "sngan-resnet32"
    g = SNGANGenerator(z_dim, _width(g_hidden, G_WIDTH, "g_hidden", name), 3, bottom=4, n_up=3)
    d = SNGANDiscriminator(name, sigmoid, _width(d_hidden, D_WIDTH, "d_hidden", name), 3,
                           image_size=32, n_down=1, n_flat=2)
    return g, d


@register_model("sngan-resnet28", "SNGAN ResNet for grey 28x28 (no SN built in): G z->7x7, 2 up "
                                  "blocks; D 3 res blocks, sum pool; widths 64/64",
                takes="1x28x28")
def build_resnet28(z_dim: int, sigmoid: bool, g_hidden: tuple[int, ...] = (),
                   d_hidden: tuple[int, ...] = ()) -> tuple[nn.Module, nn.Module]:
    name = "sngan-resnet28"
    g = SNGANGenerator(z_dim, _width(g_hidden, G_WIDTH, "g_hidden", name), 1, bottom=7, n_up=2)
    d = SNGANDiscriminator(name, sigmoid, _width(d_hidden, D_WIDTH, "d_hidden", name), 1,
                           image_size=28, n_down=1, n_flat=1)
    return g, d
