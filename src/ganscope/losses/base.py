"""The interface every GAN objective implements."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # annotations only: config imports the losses to check its loss name
    from ganscope.config import LossConfig


class GANLoss:
    """One GAN objective.

    ``sigmoid``: whether D ends in a sigmoid, so its outputs (and the logged D(x), D(G(z))) are
    probabilities; otherwise they are raw critic scores.
    """

    name = "base"
    sigmoid = False

    @classmethod
    def from_config(cls, cfg: LossConfig) -> GANLoss:
        return cls()

    def d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor, *, real: torch.Tensor,
               fake: torch.Tensor, D: nn.Module, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_d_step(self, D: nn.Module) -> None:
        """Hook after each optimiser step on D (weight clipping)."""

    # --- K runs stacked (ganscope.training.stacked): tensors carry a leading run dimension ---

    def d_loss_runs(self, d_real: torch.Tensor, d_fake: torch.Tensor, *, real: torch.Tensor,
                    fake: torch.Tensor, D: nn.Module,
                    generators: list[torch.Generator]) -> torch.Tensor:
        """The K runs' D losses, shape ``[K]``: ``d_loss`` of each run's slice, vectorised.

        This default suits objectives of D's outputs alone (no call of D, no random draw); one
        with a penalty overrides it (WGAN-GP) or sets ``stackable = False``."""
        # no batches and no D here: an objective that reads them fails instead of misreading
        return torch.vmap(lambda a, b: self.d_loss(
            a, b, real=None, fake=None, D=None))(d_real, d_fake)  # type: ignore[arg-type]

    def g_loss_runs(self, d_fake: torch.Tensor) -> torch.Tensor:
        """The K runs' G losses, shape ``[K]``."""
        return torch.vmap(self.g_loss)(d_fake)

    stackable = True  # False: d_loss_runs cannot express this objective; its runs train alone
