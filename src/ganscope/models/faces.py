"""Face GANs (issue 8): DCGAN-style G/D for RGB 3x32x32 (``dcgan32``) and 3x64x64 (``dcgan64``).

The layout of Radford et al. (2016) for 64x64 and its 32x32 cut-down:

- G: z -> ConvTranspose2d(z, w0, 4, 1, 0) (4x4) -> [ConvTranspose2d(w_i, w_{i+1}, 4, 2, 1) ->
  BatchNorm -> ReLU] x (stages - 1) -> ConvTranspose2d(w_last, 3, 4, 2, 1) -> tanh. The first
  layer is a plain linear map of z (its weight, reshaped to (w0*16) x z_dim, is what SeFa
  factorises).
- D: Conv2d(3, w0, 4, 2, 1) -> LeakyReLU(0.2) -> [Conv2d(w_i, w_{i+1}, 4, 2, 1) -> BatchNorm ->
  LeakyReLU(0.2)] ... -> Conv2d(w_last, 1, 4, 1, 0) -> (sigmoid for BCE-type losses).

Widths are constructor parameters; from a config they are ``model.g_hidden`` /
``model.d_hidden`` (one channel count per stage: 3 for dcgan32, 4 for dcgan64), so a CPU preset
can slim the nets without a new model. Defaults: the DCGAN paper's 64/128/256/512 (ngf = ndf =
64), G widest first.
"""

from __future__ import annotations

import torch
from torch import nn

from ganscope.errors import ConfigError
from ganscope.models import register_model
from ganscope.models.conv import BatchNorm2d

G_WIDTHS = {32: (256, 128, 64), 64: (512, 256, 128, 64)}
D_WIDTHS = {32: (64, 128, 256), 64: (64, 128, 256, 512)}


class FaceGenerator(nn.Module):
    """z (N, z_dim) -> RGB images (N, 3, S, S) in [-1, 1], S = 4 * 2**len(widths)."""

    def __init__(self, z_dim: int = 100, image_size: int = 64,
                 widths: tuple[int, ...] | None = None, channels: int = 3) -> None:
        super().__init__()
        widths = tuple(widths or G_WIDTHS[image_size])
        _check_widths(widths, image_size, "g_hidden")
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),
                                   BatchNorm2d(widths[0]), nn.ReLU(True)]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.size(0), self.z_dim, 1, 1))


class FaceDiscriminator(nn.Module):
    """RGB images (N, 3, S, S) -> (N, 1) scores (probabilities with ``sigmoid``)."""

    def __init__(self, sigmoid: bool = True, image_size: int = 64,
                 widths: tuple[int, ...] | None = None, channels: int = 3) -> None:
        super().__init__()
        widths = tuple(widths or D_WIDTHS[image_size])
        _check_widths(widths, image_size, "d_hidden")
        self.image_size, self.channels = image_size, channels
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, inplace=True)]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), BatchNorm2d(b),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        want = (self.channels, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != want:
            got = "x".join(map(str, x.shape[1:]))
            raise ConfigError(f"bad config: model dcgan{self.image_size} takes "
                              f"{'x'.join(map(str, want))} images but the data are {got}: set "
                              f"data.image_size={self.image_size} (face images) or pick the model "
                              "for that size")
        return self.main(x).view(x.size(0), 1)


def _check_widths(widths: tuple[int, ...], image_size: int, key: str) -> None:
    if image_size not in G_WIDTHS:
        raise ConfigError(f"bad config: face models are 32 or 64 px, not {image_size}")
    need = len(G_WIDTHS[image_size])
    if len(widths) != need:
        raise ConfigError(f"bad config: model.{key} for dcgan{image_size} needs {need} channel "
                          f"widths (one per stage), got {len(widths)}")


@register_model("dcgan32", "faces: DCGAN for RGB 32x32, ConvT z->256(4)->128(8)->64(16)->3(32); "
                           "Conv D 64-128-256-1 (widths: model.g_hidden/d_hidden)",
                takes="3x32x32")
def build_dcgan32(z_dim: int, sigmoid: bool, g_hidden: tuple[int, ...] = (),
                  d_hidden: tuple[int, ...] = ()) -> tuple[nn.Module, nn.Module]:
    return (FaceGenerator(z_dim, 32, g_hidden or None),
            FaceDiscriminator(sigmoid, 32, d_hidden or None))


@register_model("dcgan64", "faces: DCGAN for RGB 64x64, ConvT z->512(4)->256->128->64(32)->3(64); "
                           "Conv D 64-128-256-512-1 (widths: model.g_hidden/d_hidden)",
                takes="3x64x64")
def build_dcgan64(z_dim: int, sigmoid: bool, g_hidden: tuple[int, ...] = (),
                  d_hidden: tuple[int, ...] = ()) -> tuple[nn.Module, nn.Module]:
    return (FaceGenerator(z_dim, 64, g_hidden or None),
            FaceDiscriminator(sigmoid, 64, d_hidden or None))
