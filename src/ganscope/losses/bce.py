"""The seeds' objective: BCE on D's probabilities, non-saturating G loss (Goodfellow et al. 2014)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganscope.losses import register_loss
from ganscope.losses.base import GANLoss


@register_loss("bce")
class BCELoss(GANLoss):
    sigmoid = True

    def d_loss(self, d_real, d_fake, **_):
        # BCE(D(x), 1) + BCE(D(G(z)), 0): a sum of two means, exactly as the seeds' notebook.
        return (F.binary_cross_entropy(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake)))

    def g_loss(self, d_fake):
        # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        return F.binary_cross_entropy(d_fake, torch.ones_like(d_fake))
