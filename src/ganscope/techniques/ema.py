"""An exponential moving average of the generator's weights (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"; StyleGAN, BigGAN, StudioGAN's ``ema``).

Why: near an equilibrium G's weights keep circling it under the optimiser's noise, so any one
iterate draws slightly blurred or jittering samples; the average of recent iterates sits nearer
the centre. The average is only read (sampling, evaluation, the latent tools, the server); the
raw G keeps training, so the EMA changes no training step.

Warm-up: for the first ``start`` generator steps the average is a plain copy of G (an average
over a random initialisation is worse than none), as StudioGAN's ``ema_start``.

BatchNorm: an averaged G normalises with statistics of its own activations, not the raw G's.
The raw G's running statistics describe activations of weights the average is not, and
evaluated with them the average draws washed-out, streaked images (measured on
``e2-dcgan-fixed``). So before the average is read, its BatchNorm layers are given *standing
statistics* (BigGAN's term; ``torch.optim.swa_utils.update_bn`` does the same for SWA): the plain
mean of the batch statistics of a fixed set of G's own forwards in training mode.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# The standing statistics' forwards: 16 batches of the training batch size. Per-channel means
# over 1,024 samples (times the feature map's pixels) leave an error far below the gap they fix.
STAT_BATCHES = 16


class GeneratorEMA:
    """``ema = decay * ema + (1 - decay) * G`` for every floating parameter after each G step.
    Buffers are copied from G (BatchNorm's running statistics, spectral norm's power-iteration
    vectors): an average of running averages would lag twice. :meth:`generator` and
    :meth:`state_dict` first replace the BatchNorm statistics with standing ones."""

    def __init__(self, G: nn.Module, decay: float, start: int = 0, *, z_dim: int | None = None,
                 batch_size: int = 64, seed: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay, self.start = decay, start
        self.G = copy.deepcopy(G).eval().requires_grad_(False)
        self.batchnorms = [m for m in self.G.modules() if isinstance(m, _BatchNorm)]
        if self.batchnorms and z_dim is None:
            raise ValueError("an EMA of a generator with BatchNorm needs z_dim for its "
                             "standing statistics")
        self.z_dim, self.batch_size, self.seed = z_dim, batch_size, seed
        self.stale = bool(self.batchnorms)  # the BatchNorm statistics are not yet standing

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
        self.stale = bool(self.batchnorms)

    @torch.no_grad()
    def standing_statistics(self) -> None:
        """Set every BatchNorm layer's running mean and variance to the plain average of its
        batch statistics over ``STAT_BATCHES`` forwards of the averaged G on fixed latents
        (their own generator, seeded: the same weights always get the same statistics, and
        the training streams are not touched). Only the BatchNorm layers run in training
        mode, so other layers' state (spectral norm's vectors) is left as it is."""
        if not self.stale:
            return
        device = next(self.G.parameters()).device
        saved = [m.momentum for m in self.batchnorms]
        for m in self.batchnorms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: every batch weighs the same
            m.train()
        gen = torch.Generator().manual_seed(self.seed)
        try:
            for _ in range(STAT_BATCHES):
                z = torch.randn(self.batch_size, self.z_dim, generator=gen)
                self.G(z.to(device))
        finally:
            for m, momentum in zip(self.batchnorms, saved, strict=True):
                m.momentum = momentum
                m.eval()
        self.stale = False

    def generator(self) -> nn.Module:
        """The averaged G, ready to sample from (eval mode, standing statistics)."""
        self.standing_statistics()
        return self.G

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.generator().state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """A checkpoint's average (its statistics already standing)."""
        self.G.load_state_dict(state)
        self.stale = False
