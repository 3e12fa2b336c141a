"""The latent explorer's class selector (``ganscope serve``) for conditional and InfoGAN runs:
the latent info names the classes and code dims, ``class=`` on the image sets z[0] as
``ganscope generate --class`` does.

Tiny runs (one epoch of 96 labelled synthetic images) are trained by the one loop in a
temporary runs dir, as tests/test_conditional.py does. The page's test is in
tests/test_serve_classes_browser.py (skipped where chromium is absent).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

with warnings.catch_warnings():  # starlette asks for httpx2, which is not packaged yet
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from ganscope.cli import main  # noqa: E402
from ganscope.config import RunConfig, apply_overrides  # noqa: E402
from ganscope.data import Dataset  # noqa: E402
from ganscope.data.fashion_mnist import CLASSES  # noqa: E402
from ganscope.latent.conditional import class_latents  # noqa: E402
from ganscope.models.conditional import class_latent  # noqa: E402
from ganscope.sampling import generate_images, latents_from_seed  # noqa: E402
from ganscope.serve import create_app  # noqa: E402
from ganscope.serve.latent import GAP, class_names, png_strip  # noqa: E402
from ganscope.training.loop import train  # noqa: E402
from ganscope.training.run import Run, load_generator  # noqa: E402

BASE = "http://127.0.0.1"


def labelled_images(n: int = 96, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return Dataset(images=imgs, labels=torch.arange(n) % 10, source={"synthetic": True})


def make_run(root: Path, name: str, *overrides: str) -> Run:
    cfg = apply_overrides(RunConfig(), ["train.epochs=1", "train.batch_size=32",
                                        "train.n_samples=16", "seed=1", *overrides])
    run = Run.create(cfg.validate(), root, name)
    train(run, dataset=labelled_images(), progress=False)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve-classes") / "runs"
    # data.name is the default, fashion-mnist: the classes have Fashion-MNIST's names
    make_run(root, "cond", "model.conditional=projection", "model.n_classes=10",
             "loss.name=hinge")
    make_run(root, "info", "model.conditional=infogan", "model.n_classes=10", "model.n_cont=2")
    make_run(root, "plain")
    return root


@pytest.fixture
def client(runs):
    with TestClient(create_app(runs, poll_s=0.05, lab_plots=False), base_url=BASE) as c:
        yield c


def err(resp) -> str:
    return resp.json()["error"]


def png_array(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


def image(client, run: str = "cond", **params) -> np.ndarray:
    r = client.get(f"/api/runs/{run}/latent/image", params=params)
    assert r.status_code == 200, r.text
    return png_array(r.content)


# --- the latent info ----------------------------------------------------------------------------


def test_latent_info_names_the_classes_and_code_dims(client):
    cond = client.get("/api/runs/cond/latent").json()
    assert cond["conditional"] == "projection"
    assert cond["classes"] == list(CLASSES) and len(cond["classes"]) == 10
    assert cond["codes"] == {"0": "the class"}
    info = client.get("/api/runs/info/latent").json()
    assert info["conditional"] == "infogan"
    assert info["classes"] == [f"code {i}" for i in range(10)]
    assert info["codes"] == {"0": "the categorical code (10 values)",
                             "1": "continuous code 1", "2": "continuous code 2"}
    plain = client.get("/api/runs/plain/latent").json()
    assert (plain["conditional"], plain["classes"], plain["codes"]) == (None, [], {})


def test_classes_of_data_without_class_names_are_numbered():
    cfg = apply_overrides(RunConfig(), ["data.name=folder", "model.conditional=acgan",
                                        "model.n_classes=3"])
    assert class_names(cfg) == ["class 0", "class 1", "class 2"]


# --- the image ----------------------------------------------------------------------------------


def test_a_class_image_is_what_ganscope_generate_class_makes(client, runs, tmp_path):
    run = Run(runs / "cond")
    got3 = image(client, seed=7, n=4, **{"class": 3})
    got4 = image(client, seed=7, n=4, **{"class": 4})
    assert got3.shape == (28, 4 * 28 + 3 * GAP)
    assert not np.array_equal(got3, got4)
    # the reference: generate --class's latents, G, and the server's own rendering
    z, per_class = class_latents(run.config(), latents_from_seed(7, 4, 100), "3")
    want = generate_images(load_generator(run), z)
    assert np.array_equal(got3, png_array(png_strip(want, nrow=per_class)))
    # and the CLI's own images
    out = tmp_path / "g.npy"
    assert main(["generate", "cond", "--runs-dir", str(runs), "--class", "3", "-n", "4",
                 "--seed", "7", "--no-progress", "--out", str(out)]) == 0
    cli = np.load(out)
    for i in range(4):
        assert np.array_equal(got3[:, i * (28 + GAP):i * (28 + GAP) + 28], cli[i])


def test_shifts_move_z_after_the_class_is_set(client, runs):
    run = Run(runs / "cond")
    got = image(client, seed=7, n=2, shift="0:1.5,5:-2", **{"class": 3})
    z = latents_from_seed(7, 2, 100)
    z[:, 0] = class_latent(3, 10) + 1.5
    z[:, 5] -= 2
    want = generate_images(load_generator(run), z)
    assert np.array_equal(got, png_array(png_strip(want)))
    assert not np.array_equal(got, image(client, seed=7, n=2, **{"class": 3}))


def test_class_all_gives_one_row_per_class(client):
    grid = image(client, seed=11, n=3, **{"class": "all"})
    assert grid.shape == (10 * 28 + 9 * GAP, 3 * 28 + 2 * GAP)
    row3 = grid[3 * (28 + GAP):3 * (28 + GAP) + 28]
    assert np.array_equal(row3, image(client, seed=11, n=3, **{"class": 3}))
    # InfoGAN's categorical codes the same way
    assert image(client, "info", seed=11, n=2, **{"class": "ALL"}).shape == (
        10 * 28 + 9 * GAP, 2 * 28 + GAP)


def test_classes_share_one_loaded_generator(client):
    cache = client.app.state.cache
    image(client, seed=1)
    before = cache.info()["loads"]
    images = [image(client, seed=1, **{"class": c}) for c in ("0", "1", "all")]
    assert cache.info()["loads"] == before  # the class moves z, not G
    assert not np.array_equal(images[0], images[1])


@pytest.mark.parametrize("run, value, message", [
    ("plain", "3", "run 'plain' has no classes: class= is for conditional and InfoGAN runs "
                   "(model.conditional)"),
    ("cond", "10", "class 10 is out of range: give a class index from 0 to 9 or 'all'"),
    ("cond", "-1", "class -1 is out of range: give a class index from 0 to 9 or 'all'"),
    ("cond", "2.5", "bad class '2.5': give a class index from 0 to 9 or 'all'"),
    ("cond", "Sneaker", "bad class 'Sneaker': give a class index from 0 to 9 or 'all'"),
    ("info", "12", "class 12 is out of range: give a class index from 0 to 9 or 'all'"),
])
def test_bad_classes_are_one_line_400s(client, run, value, message):
    r = client.get(f"/api/runs/{run}/latent/image", params={"class": value})
    assert (r.status_code, err(r)) == (400, message)


def test_an_empty_class_is_zs_own(client):
    assert np.array_equal(image(client, seed=2, **{"class": ""}), image(client, seed=2))
    assert image(client, "plain", seed=2, **{"class": ""}).shape == (28, 28)
