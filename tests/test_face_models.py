"""Face models (dcgan32, dcgan64): shapes, parameter counts, widths, and the training loop on RGB."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganscope.config import RunConfig, apply_overrides
from ganscope.data import Dataset
from ganscope.errors import ConfigError
from ganscope.models import MODELS, build_models
from ganscope.models.faces import FaceDiscriminator, FaceGenerator
from ganscope.training.loop import train
from ganscope.training.run import Run, load_checkpoint

FACES = {"dcgan32": 32, "dcgan64": 64}
# (G, D) parameter counts with the default widths and z_dim 100, sigmoid D.
PARAMS = {"dcgan32": (1_068_928, 663_296), "dcgan64": (3_576_704, 2_765_568)}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registered():
    for name in FACES:
        assert name in MODELS
        assert "faces" in MODELS.get(name).summary


@pytest.mark.parametrize("name,size", FACES.items())
def test_shapes_range_and_parameter_counts(name, size):
    torch.manual_seed(0)
    G, D = build_models(name)
    assert (n_params(G), n_params(D)) == PARAMS[name]
    G.eval()
    x = G(torch.randn(4, 100) * 5)
    assert x.shape == (4, 3, size, size) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1  # tanh
    p = D.eval()(x)
    assert p.shape == (4, 1) and (p > 0).all() and (p < 1).all()
    _, D_raw = build_models(name, sigmoid=False)
    assert not any(isinstance(m, nn.Sigmoid) for m in D_raw.modules())
    assert D_raw(torch.rand(3, 3, size, size) * 2 - 1).shape == (3, 1)
    # G's first layer is a linear map of z (what SeFa factorises): ConvT(z, w0, 4, 1, 0).
    first = G.main[0]
    assert isinstance(first, nn.ConvTranspose2d) and first.in_channels == 100
    assert first.kernel_size == (4, 4) and first.stride == (1, 1)


@pytest.mark.parametrize("name,size", FACES.items())
def test_z_dim(name, size):
    G, _ = build_models(name, z_dim=16)
    assert G(torch.randn(2, 16)).shape == (2, 3, size, size)
    with pytest.raises(RuntimeError):
        G(torch.randn(2, 100))


def test_widths_are_parameters():
    G = FaceGenerator(100, 32, (32, 16, 8))
    D = FaceDiscriminator(True, 32, (8, 16, 32))
    assert G(torch.randn(2, 100)).shape == (2, 3, 32, 32)
    assert D(torch.zeros(2, 3, 32, 32)).shape == (2, 1)
    # ConvT 100->32 (4x4) + BN, 32->16 + BN, 16->8 + BN, 8->3; no biases.
    assert n_params(G) == 100 * 32 * 16 + 64 + 32 * 16 * 16 + 32 + 16 * 8 * 16 + 16 + 8 * 3 * 16
    assert n_params(D) == 3 * 8 * 16 + 8 * 16 * 16 + 32 + 16 * 32 * 16 + 64 + 32 * 16
    # From a config: model.g_hidden / model.d_hidden.
    G2, D2 = build_models("dcgan64", g_hidden=(64, 32, 16, 8), d_hidden=(8, 16, 32, 64))
    assert G2(torch.randn(2, 100)).shape == (2, 3, 64, 64)
    assert n_params(G2) < PARAMS["dcgan64"][0] / 20
    with pytest.raises(ConfigError) as e:
        build_models("dcgan32", g_hidden=(64, 32))
    assert str(e.value) == ("bad config: model.g_hidden for dcgan32 needs 3 channel widths "
                            "(one per stage), got 2")
    with pytest.raises(ConfigError) as e:
        build_models("dcgan64", d_hidden=(8, 16, 32))
    assert str(e.value) == ("bad config: model.d_hidden for dcgan64 needs 4 channel widths "
                            "(one per stage), got 3")


def test_wrong_image_size_is_a_config_error():
    _, D = build_models("dcgan32")
    with pytest.raises(ConfigError) as e:
        D(torch.zeros(2, 3, 64, 64))
    assert str(e.value) == ("bad config: model dcgan32 takes 3x32x32 images but the data are "
                            "3x64x64: set data.image_size=32 (face images) or pick the model for "
                            "that size")
    _, D = build_models("dcgan64")
    with pytest.raises(ConfigError) as e:
        D(torch.zeros(2, 1, 28, 28))
    assert str(e.value).startswith("bad config: model dcgan64 takes 3x64x64 images but the "
                                   "data are 1x28x28: ")


def test_dcgan_init():
    torch.manual_seed(0)
    G, D = build_models("dcgan64", init="dcgan")
    assert G.main[0].weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert D.main[0].weight.std().item() == pytest.approx(0.02, rel=0.1)


def rgb_dataset(n: int, size: int) -> Dataset:
    g = torch.Generator().manual_seed(0)
    return Dataset(torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8),
                   None, {"synthetic": "rgb"})


@pytest.mark.parametrize("name,size,loss", [("dcgan32", 32, "bce"), ("dcgan32", 32, "wgan-gp"),
                                            ("dcgan64", 64, "hinge")])
def test_training_loop_runs_on_rgb(tmp_path, name, size, loss):
    """Two generator steps of the real loop on 3xSxS data: losses, sample grid, checkpoints."""
    cfg = apply_overrides(RunConfig(), [f"model.name={name}", f"loss.name={loss}",
                                        "train.epochs=1", "train.batch_size=16",
                                        "train.n_samples=4", f"data.image_size={size}"])
    run = Run.create(cfg.validate(), tmp_path / "runs", "faces")
    train(run, dataset=rgb_dataset(32, size), progress=False)
    ev = run.read_events()
    assert len(ev) == 2
    assert all(np.isfinite([e["loss_d"], e["loss_g"], e["d_x"], e["d_g_z"]]).all() for e in ev)
    grid = Image.open(run.sample_grid(1))
    assert grid.mode == "RGB"
    # 4 samples in a 2x2 grid, 2 px padding, 2x nearest-neighbour scale
    assert grid.size == ((2 * (size + 2) + 2) * 2,) * 2
    ck = load_checkpoint(run.generator_checkpoint(1))
    from ganscope.sampling import generate_images
    from ganscope.training.run import load_generator

    G = load_generator(run)
    imgs = generate_images(G, torch.randn(3, 100))
    assert imgs.shape == (3, 3, size, size) and imgs.dtype == np.uint8
    assert ck["model"] == name


def test_eval_takes_face_runs_and_refuses_point_runs(tmp_path):
    """Face runs are scored in the attribute classifier's features (issue 17); a run whose
    domain has no feature extractor (2-D points) is refused in one line up front."""
    from ganscope.training.evaluation import check_evaluable

    cfg = apply_overrides(RunConfig(), ["model.name=dcgan32", "data.name=celeba"])
    check_evaluable(cfg, "faces")
    pts = apply_overrides(RunConfig(), ["model.name=mlp2d", "data.name=ring8"])
    with pytest.raises(ConfigError) as e:
        check_evaluable(pts, "points")
    assert str(e.value) == ("run 'points' trains on ring8: `ganscope eval` measures CelebA, "
                            "Fashion-MNIST and image folder runs only, each in its own "
                            "domain's feature extractor")
