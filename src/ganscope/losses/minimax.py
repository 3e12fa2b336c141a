"""The original saturating minimax objective: G minimises log(1 - D(G(z)))."""

from __future__ import annotations

from ganscope.losses import register_loss
from ganscope.losses.bce import BCELoss, bce


@register_loss("minimax")
class MinimaxLoss(BCELoss):
    """Same D objective as ``bce``; only the generator's side differs."""

    def g_loss(self, d_fake):
        # -BCE(D(G(z)), 0) = mean log(1 - D(G(z))): its gradient vanishes when D rejects fakes.
        return -bce(d_fake, 0.0)
