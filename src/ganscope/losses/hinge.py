"""Hinge loss (Lim & Ye 2017; SAGAN, BigGAN)."""

from __future__ import annotations

import torch.nn.functional as F

from ganscope.losses import register_loss
from ganscope.losses.base import GANLoss


@register_loss("hinge")
class HingeLoss(GANLoss):
    sigmoid = False

    def d_loss(self, d_real, d_fake, **_):
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()

    def g_loss(self, d_fake):
        return -d_fake.mean()
