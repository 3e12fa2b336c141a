"""The seeds' objective: BCE on D's probabilities, non-saturating G loss (Goodfellow et al. 2014)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganscope.losses import register_loss
from ganscope.losses.base import GANLoss


def bce(p: torch.Tensor, target: float) -> torch.Tensor:
    """``F.binary_cross_entropy(p, target)`` that gives NaN, not an error, for a NaN ``p``.

    A diverged D outputs NaN; PyTorch's BCE then raises (a device assert on CUDA) and the run
    would die with a traceback. A NaN loss instead lets the run finish and be flagged
    ``diverged``, as for every other loss. Finite inputs give exactly PyTorch's values and
    gradients, and nothing here waits for the device.
    """
    bad = torch.isnan(p)
    loss = F.binary_cross_entropy(torch.where(bad, 0.5, p), torch.full_like(p, target))
    return torch.where(bad.any(), torch.full_like(loss, float("nan")), loss)


@register_loss("bce")
class BCELoss(GANLoss):
    sigmoid = True

    def d_loss(self, d_real, d_fake, **_):
        # BCE(D(x), 1) + BCE(D(G(z)), 0): a sum of two means, exactly as the seeds' notebook.
        return bce(d_real, 1.0) + bce(d_fake, 0.0)

    def g_loss(self, d_fake):
        # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        return bce(d_fake, 1.0)
