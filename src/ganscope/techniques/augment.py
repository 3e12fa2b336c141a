"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training"), applied per image with probability p whose value
ADA's controller steers (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data").

Why: with few training images D memorises them, its outputs on reals and fakes drift apart and
G's gradients stop carrying information. Augmenting *both* the real and the generated batches
before D (and differentiably, so G's gradient flows back through the augmentation) makes D see
many more distinct images without ever teaching G to produce augmented ones. ADA adds that each
augmentation applies to each image with probability p only, raised while D overfits and
lowered while it does not, so the augmentations do not leak into G's outputs.

Each op is split into drawing its random numbers (on the CPU, from a given torch.Generator, so
a CUDA run draws exactly what a CPU run draws and a resumed run can replay them) and applying
them to a batch on any device. The draws do not depend on the image size: positions are drawn
as uniforms in [0, 1) and turned into whole pixels when the size is known, so one draw can serve
a real and a fake batch alike. The three ops are DiffAugment's published policies:

- ``color``: brightness (add U(-0.5, 0.5)), then saturation (scale each pixel's deviation from
  its channel mean by U(0, 2)), then contrast (scale the deviation from the image mean by
  U(0.5, 1.5)), in DiffAugment's order. On grey images saturation is the identity.
- ``translation``: shift by a whole number of pixels in [-s, s] per axis, s = int(size / 8 +
  0.5), filling with zeros.
- ``cutout``: zero one rectangle of int(size / 2 + 0.5) pixels per axis (a square on square
  images) whose centre is uniform over DiffAugment's range, clipped at the image border.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from ganscope.errors import ConfigError

Params = dict[str, torch.Tensor]


def _uniform(n: int, generator: torch.Generator) -> torch.Tensor:
    """n uniforms in [0, 1) drawn on the CPU in float64, so every device sees the same numbers
    and turning them into integers never rounds up to the open end."""
    return torch.rand(n, generator=generator, dtype=torch.float64, device="cpu")


def _per_image(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-image parameter as an N x 1 x 1 x 1 tensor on x's device and dtype, to broadcast."""
    return t.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def _whole(u: torch.Tensor, choices: int) -> torch.Tensor:
    """Uniforms in [0, 1) to integers uniform in {0, ..., choices - 1}."""
    return torch.floor(u * choices).long().clamp_(0, choices - 1)


# ---- color ---------------------------------------------------------------------------------


def draw_color(n: int, generator: torch.Generator) -> Params:
    """DiffAugment's color factors: brightness offset U(-0.5, 0.5), saturation factor U(0, 2),
    contrast factor U(0.5, 1.5), drawn in that order."""
    return {
        "brightness": _uniform(n, generator) - 0.5,
        "saturation": _uniform(n, generator) * 2.0,
        "contrast": _uniform(n, generator) + 0.5,
    }


def apply_color(x: torch.Tensor, params: Params) -> torch.Tensor:
    """Brightness, saturation, contrast in DiffAugment's order; affine in x, so autograd passes
    through it (the gradient of a sum of the output is all ones: the mean terms cancel)."""
    x = x + _per_image(params["brightness"], x)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _per_image(params["saturation"], x) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_image(params["contrast"], x) + mean


# ---- translation ---------------------------------------------------------------------------


def max_shift(size: int) -> int:
    """DiffAugment's largest shift along an axis of ``size`` pixels: 1/8 of it, rounded."""
    return int(size * 0.125 + 0.5)


def draw_translation(n: int, generator: torch.Generator) -> Params:
    """Uniforms for the vertical then the horizontal shift; whole pixels once the size is
    known (translation_shifts)."""
    return {"u_h": _uniform(n, generator), "u_w": _uniform(n, generator)}


def translation_shifts(params: Params, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image integer shifts (down, right) in [-max_shift, max_shift] for an h x w image: the
    pixel at (i, j) moves to (i + down, j + right). CPU int64 tensors."""
    sh, sw = max_shift(h), max_shift(w)
    return _whole(params["u_h"], 2 * sh + 1) - sh, _whole(params["u_w"], 2 * sw + 1) - sw


def apply_translation(x: torch.Tensor, params: Params) -> torch.Tensor:
    """Shift each image by its whole-pixel offset with zero fill, as a gather from a zero-padded
    copy (advanced indexing), which autograd differentiates: the gradient flows back to the
    source pixel of every output pixel and to nothing for pixels shifted out."""
    n, _, h, w = x.shape
    down, right = translation_shifts(params, h, w)
    sh, sw = max_shift(h), max_shift(w)
    padded = torch.nn.functional.pad(x, (sw, sw, sh, sh))
    dev = x.device
    rows = (torch.arange(h).view(1, h) - down.view(n, 1) + sh).to(dev)  # N x H, in padded coords
    cols = (torch.arange(w).view(1, w) - right.view(n, 1) + sw).to(dev)  # N x W
    batch = torch.arange(n, device=dev).view(n, 1, 1)
    # padded as N x Hp x Wp x C so one index picks whole pixels: result N x H x W x C
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()


# ---- cutout --------------------------------------------------------------------------------


def cutout_size(size: int) -> int:
    """DiffAugment's cutout side along an axis of ``size`` pixels: half of it, rounded."""
    return int(size * 0.5 + 0.5)


def draw_cutout(n: int, generator: torch.Generator) -> Params:
    """Uniforms for the centre row then the centre column; whole pixels once the size is known
    (cutout_boxes)."""
    return {"u_h": _uniform(n, generator), "u_w": _uniform(n, generator)}


def cutout_boxes(params: Params, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image top row and left column of the cutout rectangle (may be negative or run past
    the border: the zeroed region is its part inside the image), as DiffAugment places it: the
    centre is uniform over {0, ..., size - 1} for an odd side and {0, ..., size} for an even one,
    and the rectangle starts side // 2 before it. CPU int64 tensors."""
    ch, cw = cutout_size(h), cutout_size(w)
    centre_h = _whole(params["u_h"], h + 1 - ch % 2)
    centre_w = _whole(params["u_w"], w + 1 - cw % 2)
    return centre_h - ch // 2, centre_w - cw // 2


def cutout_mask(params: Params, h: int, w: int) -> torch.Tensor:
    """N x 1 x H x W float mask on the CPU: 0 inside each image's cutout rectangle, 1 elsewhere."""
    top, left = cutout_boxes(params, h, w)
    ch, cw = cutout_size(h), cutout_size(w)
    rows = torch.arange(h).view(1, h)
    cols = torch.arange(w).view(1, w)
    in_rows = (rows >= top.view(-1, 1)) & (rows < top.view(-1, 1) + ch)  # N x H
    in_cols = (cols >= left.view(-1, 1)) & (cols < left.view(-1, 1) + cw)  # N x W
    inside = in_rows.unsqueeze(2) & in_cols.unsqueeze(1)
    return (~inside).to(torch.float32).unsqueeze(1)


def apply_cutout(x: torch.Tensor, params: Params) -> torch.Tensor:
    """Multiply by the cutout mask: differentiable, the gradient is the mask itself."""
    _, _, h, w = x.shape
    return x * cutout_mask(params, h, w).to(device=x.device, dtype=x.dtype)


# ---- the ops and the policy ----------------------------------------------------------------


@dataclass(frozen=True)
class AugmentOp:
    """One DiffAugment policy: ``draw(n, generator)`` gives its random parameters for n images
    as CPU tensors; ``apply(x, params)`` applies them to an N x C x H x W batch differentiably."""

    name: str
    draw: Callable[[int, torch.Generator], Params]
    apply: Callable[[torch.Tensor, Params], torch.Tensor]


OPS: Mapping[str, AugmentOp] = MappingProxyType({
    "color": AugmentOp("color", draw_color, apply_color),
    "translation": AugmentOp("translation", draw_translation, apply_translation),
    "cutout": AugmentOp("cutout", draw_cutout, apply_cutout),
})


def _check_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Reject unknown and repeated op names with a one-line ConfigError."""
    seen: set[str] = set()
    for name in names:
        if name not in OPS:
            raise ConfigError(f"bad config: unknown augmentation '{name}' "
                              f"(known: {', '.join(OPS)})")
        if name in seen:
            raise ConfigError(f"bad config: augmentation '{name}' appears twice in the policy")
        seen.add(name)
    return tuple(names)


def parse_policy(text: str) -> tuple[str, ...]:
    """A policy as written in a config ("color, translation,cutout"; "" for none) to its op
    names in the given order, so a typo fails at config time rather than mid-run."""
    names = tuple(part.strip() for part in text.split(","))
    if names == ("",):
        return ()
    return _check_names(names)


class Augment:
    """Augment a batch with the ops of ``policy`` in order, each applied to each image with
    probability p (ADA); p = 1 is plain DiffAugment, p = 0 or an empty policy is the identity.

    Set ``p`` between steps (e.g. from AdaptiveP). The random stream consumed by a draw depends
    on the policy and n only, never on p, so changing p does not shift later draws.
    """

    def __init__(self, policy: tuple[str, ...], p: float = 1.0) -> None:
        self.policy = _check_names(tuple(policy))
        self.p = p

    @property
    def p(self) -> float:
        """The probability that each op applies to each image."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ValueError(f"augmentation probability p must be in [0, 1], got {value}")
        self._p = value

    def __repr__(self) -> str:
        return f"Augment(policy={self.policy!r}, p={self.p})"

    def draw(self, n: int, generator: torch.Generator) -> dict[str, Params]:
        """Every op's parameters for n images, then its per-image Bernoulli(p) mask ("mask", a
        bool tensor), op after op in policy order. The mask is drawn as uniforms compared with
        p even when p is 0 or 1, so the stream consumed does not depend on p. Returns
        {op name: {parameter name: CPU tensor}}."""
        params: dict[str, Params] = {}
        for name in self.policy:
            op_params = dict(OPS[name].draw(n, generator))
            op_params["mask"] = _uniform(n, generator) < self.p
            params[name] = op_params
        return params

    def apply(self, x: torch.Tensor, params: dict[str, Params]) -> torch.Tensor:
        """Apply the drawn ops in policy order; an image whose mask is off for an op passes
        through that op unchanged (bit for bit). Returns x itself when nothing applies."""
        for name in self.policy:
            op_params = params[name]
            mask = op_params["mask"]
            if mask.shape[0] != x.shape[0]:
                raise ValueError(f"augmentation parameters are for {mask.shape[0]} images, "
                                 f"the batch has {x.shape[0]}")
            if not bool(mask.any()):  # mask lives on the CPU: no device sync
                continue
            out = OPS[name].apply(x, op_params)
            if not bool(mask.all()):
                out = torch.where(mask.to(x.device).view(-1, 1, 1, 1), out, x)
            x = out
        return x

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Draw for x's batch size from ``generator``, then apply."""
        return self.apply(x, self.draw(x.shape[0], generator))

    def pair(self, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator,
             same: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a real and a fake batch. ``same``: one draw for both, so real[i] and fake[i]
        get the identical transformation (the batches must be the same size); otherwise
        independent draws, the real batch's first."""
        if same:
            if real.shape[0] != fake.shape[0]:
                raise ValueError(f"pair(same=True) needs equal batch sizes, got {real.shape[0]} "
                                 f"real and {fake.shape[0]} fake images")
            params = self.draw(real.shape[0], generator)
            return self.apply(real, params), self.apply(fake, params)
        real_params = self.draw(real.shape[0], generator)
        fake_params = self.draw(fake.shape[0], generator)
        return self.apply(real, real_params), self.apply(fake, fake_params)


class AdaptiveP:
    """ADA's controller of the augmentation probability p (Karras et al. 2020).

    D overfits when it grows sure the reals are real: the overfitting heuristic r_t = E[sign(
    D(x_real))] (raw outputs) rises towards 1. Every ``interval`` observations, p moves by
    sign(r_t - target) * batch_size * interval / speed_images, so p can go from 0 to 1 in
    ``speed_images`` real images shown, and is clamped to [0, 1]. The signs are summed on their
    own device and read once per adjustment, so observing does not wait for the device.
    """

    def __init__(self, target: float = 0.6, interval: int = 4, speed_images: int = 500_000,
                 p: float = 0.0) -> None:
        if interval < 1:
            raise ValueError(f"AdaptiveP interval must be at least 1, got {interval}")
        if speed_images <= 0:
            raise ValueError(f"AdaptiveP speed_images must be positive, got {speed_images}")
        self.target = float(target)
        self.interval = int(interval)
        self.speed_images = int(speed_images)
        self._p = min(max(float(p), 0.0), 1.0)
        self._r_t: float | None = None
        self._sign_sum: float | torch.Tensor = 0.0
        self._sign_count = 0
        self._calls = 0

    @property
    def p(self) -> float:
        """The current probability."""
        return self._p

    @property
    def r_t(self) -> float | None:
        """The overfitting heuristic at the last adjustment; None before the first."""
        return self._r_t

    def observe(self, d_real_signs: torch.Tensor, batch_size: int) -> None:
        """Accumulate sign(D(x_real)) (+1 / -1 / 0, already computed, any shape) for one step;
        on every ``interval``-th call, adjust p from the mean sign since the last adjustment."""
        signs = d_real_signs.detach()
        self._sign_sum = signs.sum(dtype=torch.float32) + self._sign_sum
        self._sign_count += signs.numel()
        self._calls += 1
        if self._calls % self.interval:
            return
        total = float(self._sign_sum)
        count = self._sign_count
        self._sign_sum, self._sign_count = 0.0, 0
        if count == 0:
            return
        self._r_t = total / count
        step = batch_size * self.interval / self.speed_images
        direction = (self._r_t > self.target) - (self._r_t < self.target)
        self._p = min(max(self._p + direction * step, 0.0), 1.0)

    def state_dict(self) -> dict[str, Any]:
        """Plain Python numbers only, loadable with torch.load(weights_only=True)."""
        return {
            "p": self._p,
            "r_t": self._r_t,
            "target": self.target,
            "interval": self.interval,
            "speed_images": self.speed_images,
            "sign_sum": float(self._sign_sum),
            "sign_count": self._sign_count,
            "calls": self._calls,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state_dict() so a resumed run adjusts p exactly as the uninterrupted one."""
        self._p = float(state["p"])
        self._r_t = None if state["r_t"] is None else float(state["r_t"])
        self.target = float(state["target"])
        self.interval = int(state["interval"])
        self.speed_images = int(state["speed_images"])
        self._sign_sum = float(state["sign_sum"])
        self._sign_count = int(state["sign_count"])
        self._calls = int(state["calls"])
