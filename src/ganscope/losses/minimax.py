"""The original saturating minimax objective: G minimises log(1 - D(G(z)))."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganscope.losses import register_loss
from ganscope.losses.base import GANLoss


@register_loss("minimax")
class MinimaxLoss(GANLoss):
    sigmoid = True

    def d_loss(self, d_real, d_fake, **_):
        return (F.binary_cross_entropy(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake)))

    def g_loss(self, d_fake):
        # -BCE(D(G(z)), 0) = mean log(1 - D(G(z))): its gradient vanishes when D rejects fakes.
        return -F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake))
