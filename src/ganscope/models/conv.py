"""E2: the seeds' three convolutional GANs, with their printed module structures kept exactly.

- ``cnn`` (seed 000): strided-conv D with BatchNorm; Linear -> 128x7x7 -> three ConvTranspose G.
  As printed, that G ends at 14x14 (only conv2 upsamples). The smallest fix that reaches 28x28
  is to make G's conv1 upsample too: ConvTranspose2d(128, 128, k=4, s=2, p=1) instead of
  (k=3, s=1, p=1); every other layer is unchanged. D's 14x14x128 map is averaged over space
  before its Linear(128 -> 1), the only reading of its printed fc layer.
- ``dcgan`` (seed 002): the PyTorch DCGAN tutorial layout scaled to 28x28 (7 -> 14 -> 28); its
  widths are the seed's unless ``model.g_hidden`` / ``model.d_hidden`` give others.
- ``tiny-cnn`` (seed 001): one 2x2 strided conv in D; Linear(100 -> 900) -> 30x30 -> two 2x2 convs
  in G. Kept with its oddities: G ends in LeakyReLU (no tanh, so outputs are not bounded to
  [-1, 1]), and D applies LeakyReLU right before the sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganscope.errors import ConfigError
from ganscope.models import register_model


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d that prints as the seeds' PyTorch printed it.

    Recent PyTorch adds ``bias=True`` to BatchNorm's printout; the seeds' (and the spec's)
    printouts have no such field, so it is dropped here. Same class name, parameters, state-dict
    keys and behaviour; ``isinstance(m, nn.BatchNorm2d)`` still holds.
    """

    def extra_repr(self) -> str:
        return super().extra_repr().replace(", bias=True", "")


# --- seed 000 ---------------------------------------------------------------------------------


class CNNGenerator(nn.Module):
    def __init__(self, z_dim: int = 100) -> None:
        super().__init__()
        self.fc1 = nn.Linear(z_dim, 128 * 7 * 7)
        # The documented fix: k=4, s=2 (seed: k=3, s=1) so that 7 -> 14 here and 14 -> 28 in conv2.
        self.conv1 = nn.ConvTranspose2d(128, 128, kernel_size=4, stride=2, padding=1, bias=False)
        self.norm1 = BatchNorm2d(128)
        self.conv2 = nn.ConvTranspose2d(128, 64, kernel_size=4, stride=2, padding=1, bias=False)
        self.norm2 = BatchNorm2d(64)
        self.conv3 = nn.ConvTranspose2d(64, 1, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.fc1(z), 0.2).view(z.size(0), 128, 7, 7)
        h = F.leaky_relu(self.norm1(self.conv1(h)), 0.2)
        h = F.leaky_relu(self.norm2(self.conv2(h)), 0.2)
        return torch.tanh(self.conv3(h))


class CNNDiscriminator(nn.Module):
    def __init__(self, sigmoid: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1, bias=False)
        self.norm2 = BatchNorm2d(128)
        self.conv3 = nn.Conv2d(128, 128, kernel_size=3, stride=1, padding=1, bias=False)
        self.norm3 = BatchNorm2d(128)
        self.fc = nn.Linear(128, 1)
        self.sigmoid = sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.norm2(self.conv2(h)), 0.2)
        h = F.leaky_relu(self.norm3(self.conv3(h)), 0.2)
        out = self.fc(h.mean(dim=(2, 3)))
        return torch.sigmoid(out) if self.sigmoid else out


@register_model("cnn", "seed 000: strided-conv D with BN; Linear->128x7x7->3 ConvT G (fixed to 28x28)")
def build_cnn(z_dim: int, sigmoid: bool) -> tuple[nn.Module, nn.Module]:
    return CNNGenerator(z_dim), CNNDiscriminator(sigmoid)


# --- seed 002 (DCGAN) -------------------------------------------------------------------------


# The seed's widths. G's 256 -> 128 layer at 14x14 is ~80 % of a training step's arithmetic, so
# narrower nets make far more steps in the same time (measured on one core of an AMD EPYC, 15
# minutes: 1,289 steps at these widths, 4,178 at half, 10,456 at a quarter; preset best-cpu).
DCGAN_G_WIDTHS = (256, 128)
DCGAN_D_WIDTHS = (128, 256)


class Generator(nn.Module):
    def __init__(self, z_dim: int = 100, widths: tuple[int, int] = DCGAN_G_WIDTHS) -> None:
        super().__init__()
        self.z_dim = z_dim
        w1, w2 = widths
        self.main = nn.Sequential(
            nn.ConvTranspose2d(z_dim, w1, 7, 1, 0, bias=False),
            BatchNorm2d(w1),
            nn.ReLU(True),
            nn.ConvTranspose2d(w1, w2, 4, 2, 1, bias=False),
            BatchNorm2d(w2),
            nn.ReLU(True),
            nn.ConvTranspose2d(w2, 1, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.size(0), self.z_dim, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, sigmoid: bool = True, widths: tuple[int, int] = DCGAN_D_WIDTHS) -> None:
        super().__init__()
        w1, w2 = widths
        layers: list[nn.Module] = [
            nn.Conv2d(1, w1, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w1, w2, 4, 2, 1, bias=False),
            BatchNorm2d(w2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w2, 1, 7, 1, 0, bias=False),
        ]
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(x.size(0), 1)


def _two_widths(widths: tuple[int, ...], default: tuple[int, int], key: str) -> tuple[int, int]:
    if not widths:
        return default
    if len(widths) != 2:
        raise ConfigError(f"bad config: model.{key} for dcgan is two channel widths, e.g. "
                          f"{list(default)} (the seed's)")
    return int(widths[0]), int(widths[1])


@register_model("dcgan", "seed 002: DCGAN, ConvT 100->256(7x7)->128(14)->1(28); Conv D 128-256-1")
def build_dcgan(z_dim: int, sigmoid: bool, g_hidden: tuple[int, ...] = (),
                d_hidden: tuple[int, ...] = ()) -> tuple[nn.Module, nn.Module]:
    """The seed's DCGAN; ``g_hidden`` / ``d_hidden`` (two widths each) resize its convs."""
    return (Generator(z_dim, _two_widths(g_hidden, DCGAN_G_WIDTHS, "g_hidden")),
            Discriminator(sigmoid, _two_widths(d_hidden, DCGAN_D_WIDTHS, "d_hidden")))


# --- seed 001 ---------------------------------------------------------------------------------


class myGenerator(nn.Module):  # noqa: N801  (the seed's class name, kept for print())
    def __init__(self, z_dim: int = 100) -> None:
        super().__init__()
        self.fc1 = nn.Sequential(nn.Linear(z_dim, 900), nn.LeakyReLU(0.2))
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=2, stride=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 1, kernel_size=2, stride=1),
            nn.LeakyReLU(0.2),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.fc1(z).view(z.size(0), 1, 30, 30))


class myDiscriminator(nn.Module):  # noqa: N801
    def __init__(self, sigmoid: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 1, kernel_size=2, stride=2), nn.LeakyReLU(0.2))
        self.fc = nn.Sequential(
            nn.Linear(14 * 14, 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, 1),
            nn.LeakyReLU(0.2),
        )
        self.sigmoid = sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(torch.flatten(self.conv1(x), 1))
        return torch.sigmoid(out) if self.sigmoid else out


@register_model("tiny-cnn", "seed 001: one 2x2 strided conv D; Linear->30x30->two 2x2 convs G")
def build_tiny(z_dim: int, sigmoid: bool) -> tuple[nn.Module, nn.Module]:
    return myGenerator(z_dim), myDiscriminator(sigmoid)
