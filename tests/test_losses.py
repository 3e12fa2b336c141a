"""Every GAN objective on tiny hand-computed cases, plus the WGAN-GP penalty's invariants."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganscope.config import LossConfig
from ganscope.errors import ConfigError
from ganscope.losses import LOSSES, build_loss
from ganscope.losses.wgan_gp import gradient_penalty

LN8, LN6, LN2, LN4 = math.log(0.8), math.log(0.6), math.log(0.2), math.log(0.4)


def t(*values: float) -> torch.Tensor:
    """A D output batch of shape (N, 1), as the models return."""
    return torch.tensor(values, dtype=torch.float64).unsqueeze(1)


def loss(name: str, **kw):
    return build_loss(LossConfig(name=name, **kw))


def test_registry_names_and_unknown_loss():
    assert LOSSES.names() == ["bce", "hinge", "lsgan", "minimax", "wgan", "wgan-gp"]
    with pytest.raises(ConfigError) as excinfo:
        loss("l1")
    assert str(excinfo.value) == (
        "unknown loss 'l1': choose one of bce, hinge, lsgan, minimax, wgan, wgan-gp"
    )


@pytest.mark.parametrize("name,sigmoid", [("bce", True), ("minimax", True), ("lsgan", False),
                                          ("hinge", False), ("wgan", False), ("wgan-gp", False)])
def test_sigmoid_flags(name, sigmoid):
    built = loss(name)
    assert built.sigmoid is sigmoid
    assert built.name == name


def test_bce():
    d_real, d_fake = t(0.8, 0.6), t(0.2, 0.4)
    built = loss("bce")
    # BCE(D(x), 1) + BCE(D(G(z)), 0): a sum of two means.
    assert built.d_loss(d_real, d_fake).item() == pytest.approx(
        -(LN8 + LN6) / 2 - (LN8 + LN6) / 2, abs=1e-12)
    # Non-saturating G: -mean log D(G(z)).
    assert built.g_loss(d_fake).item() == pytest.approx(-(LN2 + LN4) / 2, abs=1e-12)


def test_minimax():
    d_real, d_fake = t(0.8, 0.6), t(0.2, 0.4)
    built = loss("minimax")
    assert built.d_loss(d_real, d_fake).item() == pytest.approx(-(LN8 + LN6), abs=1e-12)
    # Saturating G: mean log(1 - D(G(z))).
    assert built.g_loss(d_fake).item() == pytest.approx((LN8 + LN6) / 2, abs=1e-12)


def test_minimax_saturates_where_bce_does_not():
    # With D confidently rejecting fakes (D(G(z)) -> 0), minimax's G gradient vanishes.
    d_fake = t(0.001, 0.002).requires_grad_(True)
    (g_mm,) = torch.autograd.grad(loss("minimax").g_loss(d_fake), d_fake)
    (g_ns,) = torch.autograd.grad(loss("bce").g_loss(d_fake), d_fake)
    # d/dD mean log(1-D) = -1 / (N (1-D));  d/dD -mean log D = -1 / (N D)
    assert g_mm.flatten().tolist() == pytest.approx([-0.5 / 0.999, -0.5 / 0.998])
    assert g_ns.flatten().tolist() == pytest.approx([-0.5 / 0.001, -0.5 / 0.002])


def test_lsgan():
    d_real, d_fake = t(1.0, 0.0), t(0.5, -1.0)
    built = loss("lsgan")
    # 0.5 * mean((D(x) - 1)^2) + 0.5 * mean(D(G(z))^2) = 0.5 * 0.5 + 0.5 * 0.625
    assert built.d_loss(d_real, d_fake).item() == pytest.approx(0.5625, abs=1e-12)
    # 0.5 * mean((D(G(z)) - 1)^2) = 0.5 * (0.25 + 4) / 2
    assert built.g_loss(d_fake).item() == pytest.approx(1.0625, abs=1e-12)


def test_hinge_both_sides_of_the_margin():
    built = loss("hinge")
    # real 2.0 is beyond the margin (no loss), real 0.5 inside it (loss 0.5);
    # fake -2.0 beyond (no loss), fake 0.5 inside (loss 1.5).
    d_real, d_fake = t(2.0, 0.5), t(-2.0, 0.5)
    assert built.d_loss(d_real, d_fake).item() == pytest.approx(0.25 + 0.75, abs=1e-12)
    assert built.g_loss(d_fake).item() == pytest.approx(0.75, abs=1e-12)
    # Everything beyond the margin: zero D loss.
    assert built.d_loss(t(1.0, 3.0), t(-1.0, -5.0)).item() == 0.0


def test_wgan_values():
    built = loss("wgan")
    d_real, d_fake = t(3.0, -1.0), t(0.5, 2.5)
    assert built.d_loss(d_real, d_fake).item() == pytest.approx(1.5 - 1.0, abs=1e-12)
    assert built.g_loss(d_fake).item() == pytest.approx(-1.5, abs=1e-12)


def test_wgan_clipping_clamps_every_parameter():
    built = loss("wgan", clip=0.05)
    assert built.clip == 0.05
    D = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    with torch.no_grad():
        D[0].weight.copy_(torch.tensor([[0.5, -0.5, 0.01], [-0.03, 0.05, -0.05]]))
        D[0].bias.copy_(torch.tensor([-1.0, 0.02]))
        D[1].weight.copy_(torch.tensor([[0.049, 7.0]]))
        D[1].bias.copy_(torch.tensor([-0.0499]))
    built.after_d_step(D)
    # Out-of-range values land exactly on the bound; in-range ones are left bit-for-bit alone.
    assert torch.equal(D[0].weight, torch.tensor([[0.05, -0.05, 0.01], [-0.03, 0.05, -0.05]]))
    assert torch.equal(D[0].bias, torch.tensor([-0.05, 0.02]))
    assert torch.equal(D[1].weight, torch.tensor([[0.049, 0.05]]))
    assert torch.equal(D[1].bias, torch.tensor([-0.0499]))
    assert all(p.abs().max().item() <= torch.tensor(0.05).item() for p in D.parameters())


def test_wgan_default_clip_and_no_clipping_elsewhere():
    assert loss("wgan").clip == 0.01
    D = nn.Linear(2, 1)
    with torch.no_grad():
        D.weight.fill_(3.0)
    for name in ("bce", "minimax", "lsgan", "hinge", "wgan-gp"):
        loss(name).after_d_step(D)
    assert D.weight.tolist() == [[3.0, 3.0]]


# --------------------------------------------------------------------------------------------
# WGAN-GP


class LinearCritic(nn.Module):
    """D(x) = <w, x> over all non-batch dims; its input gradient is w for every sample."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1, keepdim=True)


class SquareCritic(nn.Module):
    """D(x) = sum(x^2) per sample; its input gradient is 2x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x**2).flatten(1).sum(1, keepdim=True)


def batch(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(n, 1, 2, 2, generator=g, dtype=torch.float64) * 2 - 1
    fake = torch.rand(n, 1, 2, 2, generator=g, dtype=torch.float64) * 2 - 1
    return real, fake


@pytest.mark.parametrize("w,expected", [
    ([[1.0, 0.0], [0.0, 0.0]], 0.0),  # ||w|| = 1
    ([[0.6, 0.0], [0.0, 0.8]], 0.0),  # ||w|| = 1, spread over rows
    ([[2.0, 1.0], [2.0, 0.0]], 4.0),  # ||w|| = 3 -> (3 - 1)^2
])
def test_gp_of_a_linear_critic_is_norm_minus_one_squared(w, expected):
    real, fake = batch()
    D = LinearCritic(torch.tensor([w], dtype=torch.float64))  # shape (1, 2, 2)
    gp = gradient_penalty(D, real, fake, torch.Generator().manual_seed(1))
    assert gp.item() == pytest.approx(expected, abs=1e-12)


def test_gp_norm_runs_over_the_whole_image():
    # Rows of w have norms 3 and 4, the whole image 5: the penalty must be (5 - 1)^2 = 16,
    # not the per-row mean ((3 - 1)^2 + (4 - 1)^2) / 2 = 6.5.
    real, fake = batch()
    D = LinearCritic(torch.tensor([[[3.0, 0.0], [0.0, 4.0]]], dtype=torch.float64))
    gp = gradient_penalty(D, real, fake)
    assert gp.item() == pytest.approx(16.0, abs=1e-12)
    # Same with two channels: per-channel norms 3 and 4, whole-sample norm 5.
    real2, fake2 = (torch.cat([a, a], dim=1) for a in batch())
    w2 = torch.zeros(2, 2, 2, dtype=torch.float64)
    w2[0, 0, 0], w2[1, 1, 1] = 3.0, 4.0
    assert gradient_penalty(LinearCritic(w2), real2, fake2).item() == pytest.approx(16.0)


def test_gp_alpha_is_drawn_per_sample():
    real, fake = batch(n=6, seed=3)
    gp = gradient_penalty(SquareCritic(), real, fake, torch.Generator().manual_seed(42))

    alpha = torch.rand((6, 1, 1, 1), generator=torch.Generator().manual_seed(42),
                       dtype=torch.float64)
    x_hat = alpha * real + (1 - alpha) * fake
    norms = (2 * x_hat).flatten(1).norm(dim=1)
    manual = ((norms - 1) ** 2).mean()
    assert gp.item() == pytest.approx(manual.item(), rel=1e-12)

    # A single alpha shared by the batch would give a different number.
    shared = alpha[0] * real + (1 - alpha[0]) * fake
    shared_gp = (((2 * shared).flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert abs(shared_gp.item() - gp.item()) > 1e-3
    # Same generator seed, same penalty: the draw comes from the generator passed in.
    again = gradient_penalty(SquareCritic(), real, fake, torch.Generator().manual_seed(42))
    assert again.item() == gp.item()


def test_wgan_gp_d_loss_combines_critic_and_penalty():
    real, fake = batch()
    D = LinearCritic(torch.tensor([[[2.0, 1.0], [2.0, 0.0]]], dtype=torch.float64))  # gp = 4
    d_real, d_fake = D(real), D(fake)
    built = loss("wgan-gp", gp_lambda=5.0)
    assert built.gp_lambda == 5.0
    got = built.d_loss(d_real, d_fake, real=real, fake=fake, D=D)
    expected = d_fake.mean() - d_real.mean() + 5.0 * 4.0
    assert got.item() == pytest.approx(expected.item(), abs=1e-12)
    assert loss("wgan-gp").gp_lambda == 10.0
    assert built.g_loss(t(1.0, 2.0)).item() == pytest.approx(-1.5)


def test_gp_is_differentiable_wrt_critic_parameters():
    real, fake = batch()
    w = torch.tensor([[[2.0, 1.0], [2.0, 0.0]]], dtype=torch.float64)
    D = LinearCritic(w)
    fake = fake.clone().requires_grad_(True)
    gp = gradient_penalty(D, real, fake)
    gp.backward()
    assert D.w.grad is not None
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 2 * w / 3
    assert torch.allclose(D.w.grad, 4.0 * w / 3.0, atol=1e-12)
    # The penalty does not push gradients into G through the fake batch.
    assert fake.grad is None


def test_gp_backward_through_a_real_model():
    from ganscope.models import build_models

    torch.manual_seed(0)
    _, D = build_models("mlp", sigmoid=False)
    real, fake = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
    loss("wgan-gp").d_loss(D(real), D(fake), real=real, fake=fake, D=D).backward()
    grads = [p.grad for p in D.parameters()]
    assert all(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)
    assert D.fc1.weight.grad.abs().sum().item() > 0
