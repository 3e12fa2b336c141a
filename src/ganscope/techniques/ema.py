"""An exponential moving average of the generator's weights (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"; StyleGAN, BigGAN, StudioGAN's ``ema``).

Why: near an equilibrium G's weights keep circling it under the optimiser's noise, so any one
iterate draws slightly blurred or jittering samples; the average of recent iterates sits nearer
the centre. The average is only read (sampling, evaluation, the latent tools, the server); the
raw G keeps training, so the EMA changes no training step.

Warm-up: for the first ``start`` generator steps the average is a plain copy of G (an average
over a random initialisation is worse than none), as StudioGAN's ``ema_start``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class GeneratorEMA:
    """``ema = decay * ema + (1 - decay) * G`` for every floating parameter after each G step;
    buffers (BatchNorm's running statistics) are copied, as StyleGAN2-ADA does: an average of
    running averages would lag twice."""

    def __init__(self, G: nn.Module, decay: float, start: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay, self.start = decay, start
        self.G = copy.deepcopy(G).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, G: nn.Module, step: int) -> None:
        """After generator step number ``step`` (1-based): average, or copy during warm-up."""
        beta = self.decay if step > self.start else 0.0
        for p_ema, p in zip(self.G.parameters(), G.parameters(), strict=True):
            if beta == 0.0:
                p_ema.copy_(p.detach())
            else:
                p_ema.lerp_(p.detach(), 1.0 - beta)
        for b_ema, b in zip(self.G.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.G.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.G.load_state_dict(state)
