"""Direction methods on generators with planted answers, and the yaw proxy.

Every method must find what was planted: SeFa and GANSpace a dominant singular direction of the
first layer; InterFaceGAN and the mean difference the w of an attribute score sigmoid(k w.z)
read off the images; the conditional variant the target's part orthogonal to the condition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ganscope.config import RunConfig, apply_overrides
from ganscope.directions.base import (
    METHODS,
    DirectionContext,
    context_for_run,
    find_directions,
    layer_matrix,
)
from ganscope.directions.interfacegan import project_out
from ganscope.directions.store import load_direction, save_direction
from ganscope.domains.faces.yaw import YAW, yaw, yaw_scorer
from ganscope.errors import ConfigError, UserError
from ganscope.io import atomic_torch_save
from ganscope.models.faces import FaceGenerator
from ganscope.training.run import CHECKPOINT_FORMAT, Run

REAL = Path("/work/shared/data/celeba-10k")
Z = 16


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def cos(a, b) -> float:
    return float(unit(a) @ unit(b))


def orthonormal(n: int, k: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, k)))
    return q


# ----------------------------------------------------------------------------------------------
# Planted generators


def planted_first_layer(out: int, spectrum: list[float], seed: int = 0) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """A = U diag(s) V^T (out x Z): V's columns are the planted z-directions, s their gains."""
    s = np.array(spectrum + [1.0] * (Z - len(spectrum)))
    U, V = orthonormal(out, Z, seed), orthonormal(Z, Z, seed + 1)
    return U @ np.diag(s) @ V.T, V


class TwoLayerG(nn.Module):
    """Linear(z -> 48) with planted weights, tanh, Linear(48 -> 3x4x4), tanh: an RGB 'image'."""

    def __init__(self, A: np.ndarray) -> None:
        super().__init__()
        self.fc1 = nn.Linear(Z, A.shape[0])
        self.fc2 = nn.Linear(A.shape[0], 48)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.from_numpy(A))
            self.fc1.bias.uniform_(-0.1, 0.1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc2(torch.tanh(self.fc1(z) / 4))).view(-1, 3, 4, 4)


class LinearImageG(nn.Module):
    """x = reshape(M z): every linear function of z is a linear function of the image."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.fc = nn.Linear(Z, 48, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(
                np.random.default_rng(seed).standard_normal((48, Z)) / 4))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z).view(-1, 3, 4, 4)


def image_scorer(G: LinearImageG, ws: list[np.ndarray], k: float = 3.0, noise: float = 0.0):
    """Scores sigmoid(k w.z + noise) for each w, computed from the images only: with
    p = M (M^T M)^-1 w, p.x = w.z."""
    M = G.fc.weight.detach().double().numpy()
    P = torch.from_numpy(np.stack([M @ np.linalg.solve(M.T @ M, w) for w in ws], 1))
    calls = []

    def score(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        logits = k * (x.reshape(x.shape[0], -1).double() @ P)
        if noise:
            g = torch.Generator().manual_seed(len(calls))
            logits = logits + noise * torch.randn(logits.shape, generator=g, dtype=torch.float64)
        return torch.sigmoid(logits)

    score.calls = calls  # type: ignore[attr-defined]
    return score


W_MALE = unit(np.random.default_rng(5).standard_normal(Z))
_perp = project_out(np.random.default_rng(6).standard_normal(Z), [W_MALE])
W_PERP = unit(_perp)
W_YOUNG = unit(0.6 * W_MALE + 0.8 * W_PERP)  # correlated with Male: cos 0.6


def attr_ctx(noise: float = 0.0, n: int = 4000) -> DirectionContext:
    G = LinearImageG()
    return DirectionContext(G, Z, scorer=image_scorer(G, [W_MALE, W_YOUNG], noise=noise),
                            attributes=("Male", "Young"), n_samples=n, seed=1)


# ----------------------------------------------------------------------------------------------
# Registry and interface


def test_registry():
    assert METHODS.names() == ["ganspace", "interfacegan", "interfacegan-cond", "mean", "sefa"]
    assert METHODS.get("interfacegan").needs_attribute
    assert not METHODS.get("sefa").needs_attribute
    with pytest.raises(ConfigError) as e:
        find_directions("pca", attr_ctx())
    assert str(e.value) == ("unknown direction method 'pca': choose one of ganspace, "
                            "interfacegan, interfacegan-cond, mean, sefa")


def test_latents_are_the_seeded_ones_and_shared():
    ctx = attr_ctx(n=500)
    torch.manual_seed(1)
    assert torch.equal(ctx.latents(), torch.randn(500, Z))
    state = torch.get_rng_state()
    ctx.latents()
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched
    find_directions("interfacegan", ctx, attribute="Male")
    n_calls = len(ctx.scorer.calls)
    find_directions("mean", ctx, attribute="Young")
    find_directions("interfacegan-cond", ctx, attribute="Young", conditions=["Male"])
    assert len(ctx.scorer.calls) == n_calls  # one scoring pass serves every method


# ----------------------------------------------------------------------------------------------
# InterFaceGAN, conditional, mean


@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_interfacegan_recovers_the_planted_boundary(noise):
    ctx = attr_ctx(noise)
    [d] = find_directions("interfacegan", ctx, attribute="Male")
    assert d.name == "male-interfacegan" and d.method == "interfacegan" and d.attribute == "Male"
    assert np.linalg.norm(d.vector) == pytest.approx(1.0)
    assert cos(d.vector, W_MALE) > 0.9  # and pointing towards the attribute, not away
    assert d.details["accuracy_val"] > 0.9 and d.details["accuracy_fit"] > 0.9
    assert d.details["n_fit"] + d.details["n_val"] == 2 * int(4000 * 0.25)
    assert d.details["score_high"] > d.details["score_low"]
    if noise == 0.0:
        assert cos(d.vector, W_MALE) > 0.99


def test_mean_difference_recovers_the_planted_direction():
    [d] = find_directions("mean", attr_ctx(1.0), attribute="Young", ratio=0.3)
    assert d.name == "young-mean" and d.method == "mean"
    assert cos(d.vector, W_YOUNG) > 0.9
    assert d.details["separation"] > 2 and d.details["n_pos"] == d.details["n_neg"] == 1200


def test_conditional_removes_the_condition_and_keeps_the_rest():
    ctx = attr_ctx()
    [male] = find_directions("interfacegan", ctx, attribute="Male")
    [young] = find_directions("interfacegan", ctx, attribute="Young")
    [d] = find_directions("interfacegan-cond", ctx, attribute="Young", conditions=["Male"])
    assert d.name == "young-without-male" and d.method == "interfacegan-cond"
    assert abs(cos(d.vector, male.vector)) < 1e-9  # exactly orthogonal to the found normal
    assert abs(cos(d.vector, W_MALE)) < 0.1  # and so to the planted one
    assert cos(d.vector, W_PERP) > 0.9  # what is left is Young's own part
    assert d.details["conditioned_on"] == ["Male"]
    assert d.details["cosine_before"][0] == pytest.approx(cos(young.vector, male.vector))
    assert d.details["cosine_before"][0] == pytest.approx(0.6, abs=0.1)
    assert d.details["kept_norm"] == pytest.approx(0.8, abs=0.1)
    # The plain Young direction is not orthogonal to Male; the conditional one is.
    assert cos(young.vector, W_MALE) > 0.5


def test_conditioning_on_all_projects_out_every_other_attribute():
    ctx = attr_ctx()  # the scorer measures Male and Young
    [d] = find_directions("interfacegan-cond", ctx, attribute="Young", conditions=["all"])
    [named] = find_directions("interfacegan-cond", ctx, attribute="Young", conditions=["Male"])
    assert d.details["conditioned_on"] == ["Male"] and d.name == "young-without-all"
    assert np.allclose(d.vector, named.vector)


def test_project_out():
    n1, n2 = unit([1.0, 1.0, 0.0]), unit([1.0, 0.0, 0.0])
    assert np.allclose(project_out(n1, [n2]), n1 - (n1 @ n2) * n2)
    both = project_out(unit([1.0, 2.0, 3.0]), [n2, unit([0.0, 1.0, 0.0])])
    assert np.allclose(both[:2], 0.0) and both[2] > 0


def test_supervised_errors():
    ctx = attr_ctx(n=200)
    with pytest.raises(UserError) as e:
        find_directions("interfacegan", ctx, attribute="Smiling")
    assert str(e.value) == "unknown attribute 'Smiling': the scorer gives Male, Young"
    with pytest.raises(UserError) as e:
        find_directions("mean", ctx)
    assert str(e.value) == "mean needs an attribute (e.g. Male, Smiling, Young)"
    with pytest.raises(UserError) as e:
        find_directions("interfacegan-cond", ctx, attribute="Young")
    assert str(e.value).startswith("interfacegan-cond needs at least one condition attribute")
    with pytest.raises(UserError) as e:
        find_directions("interfacegan", ctx, attribute="Male", ratio=0.7)
    assert str(e.value).startswith("ratio 0.7 must lie in (0, 0.5]")
    no_scorer = DirectionContext(LinearImageG(), Z, n_samples=100)
    with pytest.raises(UserError) as e:
        find_directions("interfacegan", no_scorer, attribute="Male")
    assert str(e.value).startswith("this direction method needs attribute scores")


# ----------------------------------------------------------------------------------------------
# SeFa and GANSpace


def test_sefa_recovers_the_planted_singular_directions():
    A, V = planted_first_layer(40, [10.0, 5.0])
    ctx = DirectionContext(TwoLayerG(A), Z)
    dirs = find_directions("sefa", ctx, n_components=3)
    assert [d.name for d in dirs] == ["sefa-0", "sefa-1", "sefa-2"]
    assert abs(cos(dirs[0].vector, V[:, 0])) > 0.99
    assert abs(cos(dirs[1].vector, V[:, 1])) > 0.99
    vals = [d.details["eigenvalue"] for d in dirs]
    assert vals[0] == pytest.approx(100.0) and vals[1] == pytest.approx(25.0)
    assert vals == sorted(vals, reverse=True)
    assert dirs[0].details["layer"] == "fc1" and dirs[0].details["layer_shape"] == [40, Z]
    assert dirs[0].details["eigenvalue_ratio"] == pytest.approx(100 / (100 + 25 + 14))
    # deterministic sign: the largest entry is positive
    v = dirs[0].vector
    assert v[np.argmax(np.abs(v))] > 0


def test_sefa_on_a_face_generator_reads_the_convtranspose_weight():
    G = FaceGenerator(Z, 32, (8, 4, 2))
    A, V = planted_first_layer(8 * 16, [8.0])
    with torch.no_grad():  # weight (z, C, 4, 4) such that W.reshape(z, -1).T == A
        G.main[0].weight.copy_(torch.from_numpy(A.T.reshape(Z, 8, 4, 4)))
    assert np.allclose(layer_matrix(G.main[0]).numpy(), A)
    [d] = find_directions("sefa", DirectionContext(G, Z), n_components=1)
    assert abs(cos(d.vector, V[:, 0])) > 0.99 and d.details["layer"] == "main.0"
    # The planted direction really changes G's output most: a step along it moves the first
    # layer's output 8x as far as a step along a random orthogonal direction.
    other = project_out(np.random.default_rng(0).standard_normal(Z), [V[:, 0]])
    assert np.linalg.norm(A @ d.vector) / np.linalg.norm(A @ unit(other)) > 7


def test_ganspace_recovers_the_planted_principal_direction():
    A, V = planted_first_layer(40, [10.0, 5.0])
    ctx = DirectionContext(TwoLayerG(A), Z, n_samples=3000, seed=2)
    dirs = find_directions("ganspace", ctx, n_components=3)
    assert [d.name for d in dirs] == ["ganspace-0", "ganspace-1", "ganspace-2"]
    assert abs(cos(dirs[0].vector, V[:, 0])) > 0.95
    assert abs(cos(dirs[1].vector, V[:, 1])) > 0.9
    ev = [d.details["explained_variance"] for d in dirs]
    assert ev == sorted(ev, reverse=True)
    assert ev[0] == pytest.approx(100.0, rel=0.1)  # var of (A z) along u0 = s0^2
    assert dirs[0].details["explained_variance_ratio"] == pytest.approx(100 / 139, rel=0.1)
    assert dirs[0].details["linear_r2"] > 0.999  # the first layer is linear in z
    assert dirs[0].details["layer"] == "fc1" and dirs[0].details["n_samples"] == 3000


def test_ganspace_on_a_deeper_layer_and_a_wide_one():
    A, V = planted_first_layer(40, [10.0])
    G = TwoLayerG(A)
    [d] = find_directions("ganspace", DirectionContext(G, Z, n_samples=2000), n_components=1,
                          layer="fc2")
    assert d.details["layer"] == "fc2" and d.details["linear_r2"] < 1.0
    # a layer wider than 2048 values goes through the randomized SVD
    Gw = FaceGenerator(Z, 32, (256, 4, 2))
    Aw, Vw = planted_first_layer(256 * 16, [10.0])
    with torch.no_grad():
        Gw.main[0].weight.copy_(torch.from_numpy(Aw.T.reshape(Z, 256, 4, 4)))
    [dw] = find_directions("ganspace", DirectionContext(Gw, Z, n_samples=600), n_components=1)
    assert abs(cos(dw.vector, Vw[:, 0])) > 0.95 and dw.details["layer_size"] == 4096
    with pytest.raises(UserError) as e:
        find_directions("ganspace", DirectionContext(G, Z, n_samples=100), layer="fc9")
    assert str(e.value) == "generator has no layer 'fc9': choose one of fc1, fc2"


def test_unsupervised_methods_orient_by_an_attribute_when_given_one():
    G = LinearImageG()
    A, V = planted_first_layer(48, [6.0])
    with torch.no_grad():
        G.fc.weight.copy_(torch.from_numpy(A))
    top = V[:, 0]
    ctx = DirectionContext(G, Z, scorer=image_scorer(G, [-top]), attributes=("Smiling",),
                           n_samples=2000)
    for method in ("sefa", "ganspace"):
        [d] = find_directions(method, ctx, n_components=1, attribute="Smiling",
                              name=f"smile-{method}")
        assert d.name == f"smile-{method}-0" and d.attribute == "Smiling"
        assert cos(d.vector, -top) > 0.95  # oriented so that the score grows along +d
        assert d.details["attribute_correlation"] > 0.5


def test_directions_save_and_load_through_the_store(tmp_path):
    ctx = attr_ctx(n=1000)
    [d] = find_directions("interfacegan", ctx, attribute="Male")
    run = Run.create(RunConfig(), tmp_path / "runs", "r")
    save_direction(run, d)
    back = load_direction(run, "male-interfacegan")
    assert np.allclose(back.vector, d.vector) and back.details == d.details
    assert back.method == "interfacegan" and back.attribute == "Male"


def test_context_for_a_trained_run(tmp_path):
    cfg = apply_overrides(RunConfig(), ["model.name=dcgan32", "model.g_hidden=[8, 4, 2]",
                                        "model.d_hidden=[2, 4, 8]", "model.z_dim=16"])
    run = Run.create(cfg.validate(), tmp_path / "runs", "faces")
    G = FaceGenerator(16, 32, (8, 4, 2))
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "G": G.state_dict(), "epoch": 1,
                       "model": "dcgan32", "z_dim": 16}, run.last_checkpoint)
    ctx = context_for_run(run, n_samples=64, seed=3)
    assert ctx.z_dim == 16 and not ctx.G.training
    dirs = find_directions("sefa", ctx, n_components=2)
    want = np.linalg.eigh(layer_matrix(G.main[0]).numpy().T @ layer_matrix(G.main[0]).numpy())[1]
    assert abs(cos(dirs[0].vector, want[:, -1])) > 0.999


# ----------------------------------------------------------------------------------------------
# The yaw proxy


def face_blob(size: int = 64, shift: float = 0.0) -> torch.Tensor:
    """A face-like RGB image (3, S, S) in [0, 255]: a skin-coloured oval on a dark background,
    two dark eyes, a nose line and a mouth, all mirror-symmetric about x = centre + shift."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    c = (size - 1) / 2 + shift
    s = size / 64
    img = np.zeros((size, size, 3))
    img[:] = (40, 50, 60)
    face = ((xx - c) / (20 * s)) ** 2 + ((yy - 34 * s) / (27 * s)) ** 2 < 1
    img[face] = (220, 170, 140)
    for ex in (-9, 9):
        eye = ((xx - c - ex * s) / (4 * s)) ** 2 + ((yy - 28 * s) / (2.5 * s)) ** 2 < 1
        img[eye] = (30, 30, 30)
    img[(abs(xx - c) < 1.5 * s) & (yy > 30 * s) & (yy < 40 * s)] = (170, 120, 100)
    mouth = ((xx - c) / (7 * s)) ** 2 + ((yy - 47 * s) / (2 * s)) ** 2 < 1
    img[mouth] = (150, 40, 50)
    return torch.from_numpy(img.transpose(2, 0, 1)).to(torch.uint8)


def test_yaw_is_antisymmetric_on_synthetic_images():
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (16, 3, 32, 32), generator=g, dtype=torch.uint8)
    blobs = torch.stack([face_blob(64, s) for s in (-6, -2.5, 0, 3, 7)])
    for x in (noise, blobs):
        y = yaw(x)
        assert torch.allclose(yaw(x.flip(-1)), -y, atol=1e-6)
    assert yaw(noise).abs().max() > 1e-3  # not trivially zero


@pytest.mark.parametrize("size", [32, 64])
def test_yaw_sign_and_size_on_a_shifted_face_blob(size):
    """The face's mirror axis moving right of the centre means the visible face widened on
    the right: the head turned towards the image's left, yaw < 0 (and the reverse)."""
    assert abs(yaw(face_blob(size).unsqueeze(0)).item()) < 1e-3
    for px in (2, 4, 6):
        d = px * size / 64
        right = yaw(face_blob(size, d).unsqueeze(0)).item()
        left = yaw(face_blob(size, -d).unsqueeze(0)).item()
        assert right < 0 < left
        assert right == pytest.approx(-d / size, rel=0.3)
        assert left == pytest.approx(-right, abs=1e-6)


def test_yaw_ignores_intensity_range_and_scorer_shape():
    x = torch.stack([face_blob(32, 3), face_blob(32, -1)])
    as_gan = x.float() / 127.5 - 1
    assert torch.allclose(yaw(x), yaw(as_gan), atol=1e-6)
    assert yaw_scorer(as_gan).shape == (2, 1) and YAW == "Yaw"
    assert torch.allclose(yaw(torch.zeros(2, 3, 32, 32)), torch.zeros(2), atol=1e-6)  # blank


real = pytest.mark.skipif(not (REAL / "list_attr_celeba.txt").is_file(),
                          reason=f"CelebA subset not in {REAL}")


@real
@pytest.mark.realdata
def test_yaw_on_real_faces():
    from ganscope.data.celeba import load_celeba

    ds = load_celeba(REAL, image_size=64, limit=200)
    y = yaw(ds.images)
    assert torch.allclose(yaw(ds.images.flip(-1)), -y, atol=1e-6)
    assert 0.03 < y.std().item() < 0.1 and abs(y.median().item()) < 0.02
    # Faces picked by eye (viewed at 2-3x): 000041, 000073, 000075 and 000183 are clearly
    # turned towards the image's left, 000120 clearly towards its right.
    rank = torch.argsort(torch.argsort(y)).numpy() / (len(y) - 1)
    for left in (40, 72, 74, 182):
        assert rank[left] < 0.2, (left, rank[left])
    assert rank[119] > 0.8
