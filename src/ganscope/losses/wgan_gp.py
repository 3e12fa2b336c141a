"""WGAN-GP (Gulrajani et al. 2017): the WGAN critic loss plus a gradient penalty, no clipping."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ganscope.losses import register_loss
from ganscope.losses.base import GANLoss

if TYPE_CHECKING:  # annotations only: config imports the losses to check its loss name
    from ganscope.config import LossConfig


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = a*x + (1-a)*x_fake, one a ~ U[0,1] per sample.

    The norm runs over all non-batch dimensions (the whole image), not per channel or row.
    """
    shape = (real.size(0),) + (1,) * (real.dim() - 1)
    # Drawn where the generator lives (the loop keeps its noise stream on the CPU, so CPU and
    # CUDA runs of one config draw the same numbers), then moved to the data.
    alpha = torch.rand(shape, generator=generator, dtype=real.dtype,
                       device=generator.device if generator is not None else real.device
                       ).to(real.device)
    return _penalty_between(D, real, fake, alpha, lead=1)


def gradient_penalty_runs(D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                          generators: list[torch.Generator]) -> torch.Tensor:
    """``gradient_penalty`` of K stacked runs (``[K, B, ...]`` batches, a stacked D), ``[K]``.

    Run k's interpolation weights come from its own generator, drawn as its solo run draws
    them; one backward through the stacked D gives every run its own input gradients, since
    run k's scores depend on run k's inputs only."""
    shape = (real.size(1),) + (1,) * (real.dim() - 2)
    alpha = torch.stack([torch.rand(shape, generator=g, dtype=real.dtype, device=g.device)
                         for g in generators]).to(real.device)
    return _penalty_between(D, real, fake, alpha, lead=2)


def _penalty_between(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor,
                     lead: int) -> torch.Tensor:
    """The penalty at x_hat = alpha*real + (1-alpha)*fake; the first ``lead`` dims index
    samples (1: a batch; 2: K runs' batches), the rest make one input, whose gradient norm is
    taken whole; the mean runs over the last sample dim."""
    x_hat = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = D(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.flatten(lead).norm(2, dim=lead)
    return ((norms - 1) ** 2).mean(lead - 1)


@register_loss("wgan-gp")
class WGANGPLoss(GANLoss):
    sigmoid = False

    def __init__(self, gp_lambda: float = 10.0) -> None:
        self.gp_lambda = gp_lambda

    @classmethod
    def from_config(cls, cfg: LossConfig) -> WGANGPLoss:
        return cls(cfg.gp_lambda)

    def d_loss(self, d_real, d_fake, *, real, fake, D, generator=None):
        gp = gradient_penalty(D, real, fake, generator)
        return d_fake.mean() - d_real.mean() + self.gp_lambda * gp

    def g_loss(self, d_fake):
        return -d_fake.mean()

    def d_loss_runs(self, d_real, d_fake, *, real, fake, D, generators):
        gp = gradient_penalty_runs(D, real, fake, generators)
        return (d_fake.flatten(1).mean(1) - d_real.flatten(1).mean(1)
                + self.gp_lambda * gp)
