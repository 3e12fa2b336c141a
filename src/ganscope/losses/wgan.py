"""WGAN (Arjovsky et al. 2017): critic scores, weight clipping keeps the critic Lipschitz."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ganscope.losses import register_loss
from ganscope.losses.base import GANLoss

if TYPE_CHECKING:  # annotations only: config imports the losses to check its loss name
    from ganscope.config import LossConfig


@register_loss("wgan")
class WGANLoss(GANLoss):
    sigmoid = False

    def __init__(self, clip: float = 0.01) -> None:
        self.clip = clip

    @classmethod
    def from_config(cls, cfg: LossConfig) -> WGANLoss:
        return cls(cfg.clip)

    def d_loss(self, d_real, d_fake, **_):
        # The critic maximises E[D(x)] - E[D(G(z))], an estimate of the Wasserstein-1 distance.
        return d_fake.mean() - d_real.mean()

    def g_loss(self, d_fake):
        return -d_fake.mean()

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        for p in D.parameters():
            p.clamp_(-self.clip, self.clip)
