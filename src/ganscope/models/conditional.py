"""Conditional GANs (projection discriminator, ACGAN) and InfoGAN as wrappers of any registered
G and D, so they are options of the one loop, not other models.

The latent layout. A conditional or InfoGAN run's G takes the same ``model.z_dim`` numbers
z ~ N(0, I) as any run; its first numbers are codes:

- ``z[:, 0]`` is the class (InfoGAN: the categorical code): ``k = floor(Phi(z0) * K)``, where
  Phi is the normal CDF, so classes are uniform over 0..K-1;
- ``z[:, 1:1 + n_cont]`` are InfoGAN's continuous codes ``c = 2 Phi(z) - 1``, uniform on (-1, 1);
- the rest is noise.

Why: every reader of a run (sampling, evaluation, the latent tools, the server, export) draws
z ~ N(0, I) and calls ``G(z)``; they all work unchanged, sample every class equally often, and
``generate --class k`` only sets z0 to the middle of class k's interval. ``latent probe`` then
finds by itself that dimension 0 moves the class, and an InfoGAN's continuous codes are
dimensions 1..n_cont, which is what "what does this dimension control?" should have as answer.

D's side. The score of every registered D comes from a last layer that maps features phi(x) to
one number (a Linear, or a conv whose window covers its whole input). A forward hook on that
layer reads phi: the projection discriminator (Miyato & Koyama 2018) adds <embed(y), phi> to
the score; ACGAN (Odena et al. 2017) and InfoGAN (Chen et al. 2016) put a head on phi that
predicts the class or the codes, read as ``D.aux_out`` after each forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganscope.errors import ConfigError

CONDITIONAL = ("none", "projection", "acgan", "infogan")  # model.conditional
LABELLED = ("projection", "acgan")  # the modes that train on the data's labels
HEADED = ("acgan", "infogan")  # the modes whose D has a head (model.aux_head) predicting codes
AUX_HEADS = ("linear", "mlp")  # model.aux_head
Q_WIDTH = 128  # the InfoGAN paper's Q: FC 128 between D's features and the codes


def normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtr(z)


def class_of(z0: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The class a latent's first number stands for: floor(Phi(z0) * K), in 0..K-1."""
    return (normal_cdf(z0.float()) * n_classes).floor().long().clamp_(0, n_classes - 1)


def class_latent(k: int, n_classes: int) -> float:
    """The z0 in the middle of class k's interval (the inverse of ``class_of``)."""
    return float(torch.special.ndtri(torch.tensor((k + 0.5) / n_classes, dtype=torch.float64)))


def base_z_dim(z_dim: int, n_classes: int) -> int:
    """The input width of the wrapped G: the noise, a one-hot class, the continuous codes."""
    return z_dim - 1 + n_classes


class CodedGenerator(nn.Module):
    """G(z) = base(noise, one_hot(class), continuous codes), the codes read off z (see above)."""

    def __init__(self, base: nn.Module, n_classes: int, n_cont: int = 0,
                 labelled: bool = True) -> None:
        super().__init__()
        self.base, self.n_classes, self.n_cont = base, n_classes, n_cont
        self.labelled = labelled  # its classes are the data's (not InfoGAN's free codes)

    def codes(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class indices (N,), continuous codes (N, n_cont)) of latents z."""
        y = class_of(z[:, 0], self.n_classes)
        c = 2.0 * normal_cdf(z[:, 1:1 + self.n_cont]) - 1.0
        return y, c

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y, c = self.codes(z)
        h = torch.cat([z[:, 1 + self.n_cont:], F.one_hot(y, self.n_classes).to(z.dtype),
                       c.to(z.dtype)], 1)
        return self.base(h)


def score_layer(D: nn.Module) -> nn.Module:
    """D's last Linear or conv layer with one output: where its score is made from features."""
    layers = [m for m in D.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    last = layers[-1] if layers else None
    outs = getattr(last, "out_features", None) or getattr(last, "out_channels", None)
    if last is None or outs != 1:
        raise ConfigError("bad config: model.conditional needs a D whose last Linear or conv "
                          "layer gives its one score; this model's D has none")
    return last


def feature_width(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.in_features
    kh, kw = layer.kernel_size
    return layer.in_channels * kh * kw


class CodedDiscriminator(nn.Module):
    """D with a projection term (``projection``) or an auxiliary head (``acgan``, ``infogan``)
    on the features its score layer reads. ``forward(x, y=None)``: y (class indices) is needed
    by the projection; the heads' outputs are left in ``aux_out`` (N, n_classes + n_cont)."""

    def __init__(self, base: nn.Module, mode: str, n_classes: int, n_cont: int = 0,
                 aux_head: str = "linear") -> None:
        super().__init__()
        self.base, self.mode, self.n_classes, self.n_cont = base, mode, n_classes, n_cont
        layer = score_layer(base)
        width = feature_width(layer)
        if mode == "projection":
            self.embed = nn.Embedding(n_classes, width)
            nn.init.xavier_uniform_(self.embed.weight)
        elif aux_head not in AUX_HEADS:
            raise ConfigError(f"bad config: model.aux_head must be {', '.join(AUX_HEADS)}")
        elif aux_head == "mlp":
            # Why a hidden layer: a linear head on D's last features can read the codes off
            # details that D has no reason to care about, so G may hide them there (the
            # paper's Q shares D's body and adds FC 128 + BN + LeakyReLU before its output).
            self.aux = nn.Sequential(nn.Linear(width, Q_WIDTH), nn.BatchNorm1d(Q_WIDTH),
                                     nn.LeakyReLU(0.1), nn.Linear(Q_WIDTH, n_classes + n_cont))
        else:
            self.aux = nn.Linear(width, n_classes + n_cont)
        self._y: torch.Tensor | None = None
        self.aux_out: torch.Tensor | None = None
        layer.register_forward_hook(self._hook)

    def _hook(self, layer: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor):
        x = inputs[0]
        if isinstance(layer, nn.Conv2d) and tuple(x.shape[2:]) != tuple(layer.kernel_size):
            raise ConfigError("bad config: model.conditional needs D's last conv to cover its "
                              "whole input (one score per image)")
        phi = x.flatten(1)
        if self.mode == "projection":
            if self._y is None:
                raise ValueError("a projection discriminator needs the class labels: D(x, y)")
            proj = (self.embed(self._y) * phi).sum(1)
            return out + proj.view(-1, *([1] * (out.dim() - 1))).to(out.dtype)
        self.aux_out = self.aux(phi)
        return None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self._y = y
        try:
            return self.base(x)
        finally:
            self._y = None


def aux_loss(aux_out: torch.Tensor, y: torch.Tensor, c: torch.Tensor | None, n_classes: int
             ) -> torch.Tensor:
    """Cross-entropy of the class head, plus (InfoGAN) the continuous codes' Gaussian negative
    log-likelihood with unit variance, which is half their squared error up to a constant: the
    variational lower bound on the mutual information between codes and images (Chen et al.)."""
    loss = F.cross_entropy(aux_out[:, :n_classes].float(), y)
    if c is not None and c.shape[1]:
        loss = loss + 0.5 * (aux_out[:, n_classes:].float() - c.float()).pow(2).sum(1).mean()
    return loss


def wrap(G: nn.Module, D: nn.Module, mode: str, n_classes: int, n_cont: int,
         aux_head: str = "linear") -> tuple[nn.Module, nn.Module]:
    """The conditional (or InfoGAN) pair around a base pair built with ``base_z_dim`` inputs;
    ``aux_head`` is D's head for acgan / infogan (``AUX_HEADS``)."""
    if mode == "none":
        return G, D
    return (CodedGenerator(G, n_classes, n_cont if mode == "infogan" else 0,
                           labelled=mode in LABELLED),
            CodedDiscriminator(D, mode, n_classes, n_cont if mode == "infogan" else 0,
                               aux_head))
