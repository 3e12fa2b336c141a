"""What every direction-finding method shares: the context it works in, and the method registry.

A method is a function ``find(ctx, *, attribute=None, **options) -> list[Direction]`` registered
in :data:`METHODS` under its name (``interfacegan``, ``interfacegan-cond``, ``mean``, ``sefa``,
``ganspace``), so the CLI picks one by name and passes the options it was given. Each returned
:class:`~ganscope.directions.store.Direction` is a unit vector in z-space with the numbers that
say how good it is in ``details`` (boundary accuracy, eigenvalue, explained variance, ...).

:class:`DirectionContext` holds the generator, the latent size, how latents are drawn, and an
optional scorer: a callable from generated images (N, C, H, W) in [-1, 1] to attribute scores
(N, A) with column names ``attributes`` (the attribute classifier, the yaw proxy, or a test's
planted function). Supervised methods (InterFaceGAN, mean difference) need the scorer; the
closed-form and PCA methods (SeFa, GANSpace) do not, but use it when given an ``attribute`` to
orient their components (the attribute grows along +d) and to report the correlation.

Latents are ``torch.manual_seed(seed); randn(n, z_dim)`` on a forked RNG — the same z as
``ganscope generate --seed`` — and the (z, scores) sample is computed once per context and
shared by every method called on it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ganscope.directions.store import Direction, check_name
from ganscope.errors import UserError
from ganscope.models import eval_mode
from ganscope.registry import Registry
from ganscope.sampling import sample, to_floats
from ganscope.training.run import load_generator

Scorer = Callable[[torch.Tensor], torch.Tensor]  # images (N, C, H, W) in [-1, 1] -> (N, A)


@dataclass(frozen=True)
class DirectionMethod:
    find: Callable[..., list[Direction]]
    summary: str
    needs_attribute: bool  # True: supervised (needs ctx.scorer and an attribute)


METHODS: Registry[DirectionMethod] = Registry("direction method")


def register_method(name: str, summary: str, needs_attribute: bool):
    def deco(fn: Callable[..., list[Direction]]):
        METHODS.register(name)(DirectionMethod(fn, summary, needs_attribute))
        return fn

    return deco


@dataclass
class DirectionContext:
    G: nn.Module
    z_dim: int
    scorer: Scorer | None = None
    attributes: tuple[str, ...] = ()  # the scorer's column names
    n_samples: int = 10000  # latents drawn for the sampling methods
    seed: int = 0
    batch_size: int = 500
    device: str | torch.device = "cpu"
    sample_z: Callable[[int, int], torch.Tensor] | None = None  # (n, seed) -> (n, z_dim)
    _sample: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor | None]] = field(
        default_factory=dict, repr=False)

    def latents(self, n: int | None = None) -> torch.Tensor:
        """(n, z_dim) float32 latents on the CPU, the same for the same (n, seed)."""
        n = n or self.n_samples
        if self.sample_z is not None:
            z = self.sample_z(n, self.seed)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                z = torch.randn(n, self.z_dim)
        if tuple(z.shape) != (n, self.z_dim):
            raise ValueError(f"sample_z gave shape {tuple(z.shape)}, expected ({n}, {self.z_dim})")
        return z.float().cpu()

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) in eval mode (BatchNorm running stats), batched; float32 on the CPU."""
        return sample(self.G, z, to_samples=to_floats, batch_size=self.batch_size,
                      device=self.device)

    @torch.no_grad()
    def score(self, z: torch.Tensor) -> torch.Tensor:
        """The scorer's (N, A) float64 scores of G(z), computed batch by batch."""
        if self.scorer is None:
            raise UserError("this direction method needs attribute scores, and none were given: "
                            "pass an attribute classifier")
        scorer = self.scorer

        def scores(x: torch.Tensor) -> torch.Tensor:
            s = torch.as_tensor(scorer(x.float())).detach().double().cpu()
            return s.reshape(s.shape[0], -1)

        s = sample(self.G, z, to_samples=scores, batch_size=self.batch_size, device=self.device)
        if s.shape[1] != len(self.attributes):
            raise ValueError(f"the scorer gave {s.shape[1]} columns for {len(self.attributes)} "
                             "attribute names")
        return s

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, scores) for ``n_samples`` latents, computed once and shared by the methods."""
        key = (self.n_samples, self.seed)
        if key not in self._sample or self._sample[key][1] is None:
            z = self.latents()
            self._sample[key] = (z, self.score(z))
        z, s = self._sample[key]
        assert s is not None
        return z, s

    def attribute_scores(self, attribute: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, scores (N,)) of one attribute; UserError naming the known ones."""
        if self.scorer is None:
            raise UserError(f"this direction method needs attribute scores for '{attribute}', "
                            "and none were given: pass an attribute classifier")
        if attribute not in self.attributes:
            have = ", ".join(self.attributes) or "none"
            raise UserError(f"unknown attribute '{attribute}': the scorer gives {have}")
        z, s = self.sample()
        return z, s[:, self.attributes.index(attribute)]


def context_for_run(run: Any, *, epoch: int | None = None, scorer: Scorer | None = None,
                    attributes: Sequence[str] = (), **options: Any) -> DirectionContext:
    """A context for a trained run's generator (latest checkpoint, or ``epoch``'s)."""
    G = load_generator(run, epoch, options.get("device", "cpu"))
    return DirectionContext(G, run.config().model.z_dim, scorer=scorer,
                            attributes=tuple(attributes), **options)


# ----------------------------------------------------------------------------------------------
# Helpers the methods share


def slug(text: str) -> str:
    """A direction name from free text: lower case, runs of other characters -> '-'."""
    s = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return (s or "direction")[:64]


def unit(v: np.ndarray | torch.Tensor) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    n = float(np.linalg.norm(a))
    if not np.isfinite(n) or n == 0.0:
        raise UserError("a direction came out zero or not finite: the generator or the scores "
                        "carry no signal here; try more samples")
    return a / n


def canonical_sign(v: np.ndarray) -> np.ndarray:
    """``v`` or ``-v``, whichever has its largest-magnitude entry positive (eigenvectors and
    principal components have no sign of their own; this makes the output deterministic)."""
    return v if v[int(np.argmax(np.abs(v)))] >= 0 else -v


def orient(ctx: DirectionContext, dirs: list[np.ndarray], attribute: str | None
           ) -> tuple[list[np.ndarray], list[float | None]]:
    """Signs for unsupervised directions: canonical, or (with ``attribute``) so that the
    attribute's score grows along +d; also the Pearson correlation of z.d with the score."""
    if attribute is None:
        return [canonical_sign(d) for d in dirs], [None] * len(dirs)
    z, s = ctx.attribute_scores(attribute)
    zz, ss = z.double().numpy(), s.numpy()
    out, corr = [], []
    for d in dirs:
        r = pearson(zz @ d, ss)
        out.append(d if r >= 0 else -d)
        corr.append(abs(r))
    return out, corr


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def split_extremes(scores: torch.Tensor, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the lowest and highest ``ratio`` of the scores (InterFaceGAN's labelling:
    only confident samples are used; ratio 0.5 is a median split)."""
    if not 0 < ratio <= 0.5:
        raise UserError(f"ratio {ratio} must lie in (0, 0.5]: the share of samples taken from "
                        "each end of the score range")
    n = scores.shape[0]
    k = int(n * ratio)
    if k < 2:
        raise UserError(f"{n} samples x ratio {ratio} leave fewer than 2 per class: draw more "
                        "samples or raise the ratio")
    order = np.argsort(scores.numpy(), kind="stable")
    return order[:k], order[n - k:]


def first_layer(G: nn.Module, z_dim: int, layer: str | None = None) -> tuple[str, nn.Module]:
    """The module that first maps z: ``layer`` by name, else the first Linear /
    ConvTranspose2d / Conv2d (in registration order) that takes ``z_dim`` inputs."""
    mods = dict(G.named_modules())
    if layer is not None:
        if layer not in mods:
            names = ", ".join(n for n in mods if n) or "none"
            raise UserError(f"generator has no layer '{layer}': choose one of {names}")
        return layer, mods[layer]
    for name, m in mods.items():
        if isinstance(m, nn.Linear) and m.in_features == z_dim:
            return name, m
        if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)) and m.in_channels == z_dim:
            return name, m
    raise UserError(f"found no layer taking the {z_dim}-d latent in the generator: name one "
                    "with layer=NAME")


def layer_matrix(m: nn.Module) -> torch.Tensor:
    """The first layer as a matrix A (outputs x z_dim): y = A z (+ bias).

    Linear: its weight. ConvTranspose2d on z seen as a 1x1 map: weight (z, C, k, k) -> every
    output (c, i, j) is sum_z z * W[z, c, i, j], so A = W.reshape(z, -1).T. Conv2d on a 1x1 map:
    weight (C, z, k, k) read the same way.
    """
    w = m.weight.detach().double().cpu()
    if isinstance(m, nn.Linear):
        return w
    if isinstance(m, nn.ConvTranspose2d):
        return w.reshape(w.shape[0], -1).T
    if isinstance(m, nn.Conv2d):
        return w.permute(1, 0, 2, 3).reshape(w.shape[1], -1).T
    raise UserError(f"layer {type(m).__name__} is not Linear, ConvTranspose2d or Conv2d: "
                    "SeFa needs a linear first layer")


class _Stop(Exception):
    pass


@torch.no_grad()
def layer_outputs(ctx: DirectionContext, z: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """``module``'s output for each z, flattened (N, D) float32 (10,000 x 8192 values of
    dcgan64's first layer take 330 MB); G stops right after the module."""
    got: list[torch.Tensor] = []

    def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        got.append(out.detach().float().cpu().reshape(out.shape[0], -1))
        raise _Stop

    h = module.register_forward_hook(hook)
    try:
        with eval_mode(ctx.G):
            for i in range(0, z.shape[0], ctx.batch_size):
                with contextlib.suppress(_Stop):
                    ctx.G(z[i:i + ctx.batch_size].to(ctx.device))
    finally:
        h.remove()
    if len(got) * ctx.batch_size < z.shape[0]:  # pragma: no cover - the hook always runs
        raise UserError("the chosen layer is not used by the generator's forward pass")
    return torch.cat(got)


def make_direction(name: str, method: str, vector: np.ndarray, attribute: str | None,
                   details: dict[str, Any]) -> Direction:
    return Direction(name=check_name(name), method=method, vector=unit(vector),
                     attribute=attribute, details=details)


def find_directions(method: str, ctx: DirectionContext, **options: Any) -> list[Direction]:
    """Run the method registered as ``method`` (ConfigError listing the names if unknown)."""
    return METHODS.get(method).find(ctx, **options)


def _register_all() -> None:
    # local: import-time cycle, each method module imports this one (METHODS, DirectionContext)
    from ganscope.directions import ganspace, interfacegan, mean, sefa  # noqa: F401


_register_all()
