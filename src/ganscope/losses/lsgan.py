"""Least-squares GAN (Mao et al. 2017), targets a=0 (fake), b=1 (real), c=1 (G)."""

from __future__ import annotations

from ganscope.losses import register_loss
from ganscope.losses.base import GANLoss


@register_loss("lsgan")
class LSGANLoss(GANLoss):
    sigmoid = False

    def d_loss(self, d_real, d_fake, **_):
        return 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake**2).mean()

    def g_loss(self, d_fake):
        return 0.5 * ((d_fake - 1) ** 2).mean()
