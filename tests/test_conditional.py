"""Conditional models and InfoGAN (ganscope.models.conditional): the latent code layout, the
projection discriminator's formula, the heads, and conditional runs through the one loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganscope.cli import main
from ganscope.config import RunConfig, apply_overrides
from ganscope.data import Dataset
from ganscope.errors import ConfigError, UserError
from ganscope.models import build_models
from ganscope.models.conditional import (
    CodedDiscriminator,
    CodedGenerator,
    aux_loss,
    class_latent,
    class_of,
)
from ganscope.training.loop import train
from ganscope.training.run import Run, load_checkpoint, load_generator


def test_class_codes_are_uniform_and_invert():
    for k in (2, 3, 10):
        assert [int(class_of(torch.tensor([class_latent(c, k)]), k)) for c in range(k)] == \
            list(range(k))
    z0 = torch.randn(100_000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(class_of(z0, 10), minlength=10).numpy()
    # uniform: each count is Binomial(1e5, 0.1), sd 95; 6 sd is a bound no fair draw breaks
    assert np.abs(counts - 10_000).max() < 6 * 95


def test_coded_generator_feeds_noise_one_hot_and_codes():
    base = nn.Identity()
    G = CodedGenerator(base, n_classes=4, n_cont=2)
    z = torch.tensor([[class_latent(2, 4), 0.0, 10.0, 7.0, 8.0]])
    out = G(z)
    # noise (z[3:]), one-hot class 2 of 4, then the codes 2 Phi(z) - 1: 0 -> 0, 10 -> ~1
    assert out[0, :2].tolist() == [7.0, 8.0]
    assert out[0, 2:6].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert out[0, 6:].tolist() == pytest.approx([0.0, 1.0], abs=1e-6)


def test_projection_discriminator_equals_its_formula():
    torch.manual_seed(0)
    _, base = build_models("mlp", 100, sigmoid=False)
    D = CodedDiscriminator(base, "projection", n_classes=10)
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 9, 9])
    phi = base.nonlin1(base.fc1(x.flatten(1)))
    psi = nn.functional.linear(phi, base.fc2.weight, base.fc2.bias)  # not via the hook
    want = psi[:, 0] + (D.embed(y) * phi).sum(1)  # psi(phi) + <embed(y), phi>
    assert torch.allclose(D(x, y)[:, 0], want, atol=1e-5)
    with pytest.raises(ValueError, match="needs the class labels"):
        D(x)


def test_heads_read_the_score_layers_features_also_on_a_conv_score():
    torch.manual_seed(0)
    _, base = build_models("dcgan", 100, sigmoid=True)  # its score: a 7x7 conv over 7x7
    D = CodedDiscriminator(base, "infogan", n_classes=10, n_cont=2)
    out = D(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 1) and D.aux_out.shape == (3, 12)
    y, c = torch.tensor([1, 2, 3]), torch.zeros(3, 2)
    want = (nn.functional.cross_entropy(D.aux_out[:, :10], y)
            + 0.5 * D.aux_out[:, 10:].pow(2).sum(1).mean())
    assert float(aux_loss(D.aux_out, y, c, 10).detach()) == pytest.approx(float(want.detach()),
                                                            rel=1e-6)


def test_mlp_head_is_the_papers_q_on_the_score_layers_features():
    torch.manual_seed(0)
    _, base = build_models("dcgan", 100, sigmoid=True)  # score: a 7x7 conv over 256 x 7 x 7
    D = CodedDiscriminator(base, "infogan", n_classes=10, n_cont=2, aux_head="mlp")
    fc1, bn, act, fc2 = D.aux
    assert (fc1.in_features, fc1.out_features, bn.num_features, act.negative_slope,
            fc2.out_features) == (256 * 7 * 7, 128, 128, 0.1, 12)
    x = torch.randn(5, 1, 28, 28)
    D.train()
    D(x)
    aux_loss(D.aux_out, torch.arange(5), torch.zeros(5, 2), 10).backward()
    # the loss reaches every layer of the head and D's body (Q shares D's body)
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in [*D.aux.parameters(), base.main[0].weight])
    D.eval()  # BatchNorm on running statistics: the head is then a plain function of phi
    with torch.no_grad():
        out = D(x)
        phi = base.main[:5](x).flatten(1)  # what the score layer reads
        want = fc2(act(bn(fc1(phi))))
    assert out.shape == (5, 1) and D.aux_out.shape == (5, 12)
    assert torch.allclose(D.aux_out, want, atol=1e-6)


def labelled_images(n: int = 96, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return Dataset(images=imgs, labels=torch.arange(n) % 10, source={"synthetic": True})


def make_run(tmp_path, name, *overrides) -> Run:
    cfg = apply_overrides(RunConfig(), ["train.epochs=1", "train.batch_size=32",
                                        "train.n_samples=16", "seed=1", "model.n_classes=10",
                                        *overrides])
    return Run.create(cfg.validate(), tmp_path / "runs", name)


@pytest.mark.parametrize("mode, extra", [("projection", ["loss.name=hinge"]),
                                         ("acgan", []),
                                         ("infogan", ["model.n_cont=2"]),
                                         ("infogan", ["model.n_cont=2", "model.aux_head=mlp"])])
def test_conditional_runs_train_and_generate_by_class(tmp_path, mode, extra):
    run = make_run(tmp_path, mode, f"model.conditional={mode}", *extra)
    train(run, dataset=labelled_images(), progress=False)
    ck = load_checkpoint(run.last_checkpoint)
    head = ("embed.weight" if mode == "projection" else
            "aux.3.weight" if "model.aux_head=mlp" in extra else "aux.weight")
    assert ck["D"][head].shape[0] == (12 if mode == "infogan" else 10)
    G = load_generator(run)
    assert isinstance(G, CodedGenerator) and G.labelled == (mode != "infogan")
    out = tmp_path / "grid.npy"
    assert main(["generate", mode, "--runs-dir", str(tmp_path / "runs"), "--class", "all",
                 "-n", "3", "--no-progress", "--out", str(out)]) == 0
    imgs = np.load(out)
    assert imgs.shape == (30, 28, 28)
    # the rows share z and differ in the class alone: different images per class
    assert not np.array_equal(imgs[0], imgs[3])


def test_class_names_resolve_for_labelled_runs_and_errors_are_one_line(tmp_path, capsys):
    run = make_run(tmp_path, "proj", "model.conditional=projection")
    train(run, dataset=labelled_images(), progress=False)
    runs = str(tmp_path / "runs")
    out = str(tmp_path / "g.npy")
    assert main(["generate", "proj", "--runs-dir", runs, "--class", "Sneaker,0", "-n", "2",
                 "--no-progress", "--out", out]) == 0
    assert np.load(out).shape == (4, 28, 28)
    assert main(["generate", "proj", "--runs-dir", runs, "--class", "11", "--out", out]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: class index 11 is out of range: the run has classes 0..9")


def test_conditional_settings_and_missing_labels_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="needs model.n_classes >= 2"):
        apply_overrides(RunConfig(), ["model.conditional=acgan"]).validate()
    with pytest.raises(ConfigError, match="model.n_cont applies to model.conditional=infogan"):
        apply_overrides(RunConfig(), ["model.n_cont=2"]).validate()
    with pytest.raises(ConfigError, match="model.aux_head applies to model.conditional=acgan "
                                          "or infogan$"):
        apply_overrides(RunConfig(), ["model.aux_head=mlp"]).validate()
    with pytest.raises(ConfigError, match="a projection D has no head"):
        apply_overrides(RunConfig(), ["model.conditional=projection", "model.n_classes=10",
                                      "model.aux_head=mlp"]).validate()
    with pytest.raises(ConfigError, match="model.aux_head must be linear, mlp"):
        apply_overrides(RunConfig(), ["model.conditional=acgan", "model.n_classes=10",
                                      "model.aux_head=deep"]).validate()
    _, base = build_models("mlp", 100, sigmoid=True)
    with pytest.raises(ConfigError, match="model.aux_head must be linear, mlp"):
        CodedDiscriminator(base, "acgan", n_classes=10, aux_head="deep")  # not only via config
    run = make_run(tmp_path, "nolabels", "model.conditional=acgan")
    unlabelled = Dataset(images=labelled_images().images, labels=None, source={})
    with pytest.raises(UserError, match="trains on class labels and fashion-mnist has none"):
        train(run, dataset=unlabelled, progress=False)


def test_export_recipe_rebuilds_a_conditional_generator(tmp_path, monkeypatch):
    import json

    from ganscope.export import export_generator

    run = make_run(tmp_path, "acgan", "model.conditional=acgan")
    train(run, dataset=labelled_images(), progress=False)
    export_generator(run, "safetensors", tmp_path / "g.safetensors")
    meta = json.loads((tmp_path / "g.json").read_text())
    monkeypatch.chdir(tmp_path)  # the recipe names the weights file beside it
    env: dict = {}
    exec(meta["rebuild"]["code"], env)  # the sidecar's code, as a user would run it
    z = torch.randn(5, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(env["G"](z), load_generator(run)(z))


def test_probe_names_an_infogan_runs_codes(tmp_path):
    from ganscope.latent.probe.runs import run_probe

    run = make_run(tmp_path, "info", "model.conditional=infogan", "model.n_cont=2")
    train(run, dataset=labelled_images(), progress=False)
    res, _ = run_probe(run, n_base=16, n_null=8, dims=[0, 1, 2, 3], out_dir=tmp_path / "p")
    assert res.sentence(0).startswith("dim 0 (InfoGAN categorical code, 10 values):")
    assert res.sentence(2).startswith("dim 2 (InfoGAN continuous code 2):")
    assert res.sentence(3).startswith("dim 3:")
    assert "dim 1 (InfoGAN continuous code 1)" in (tmp_path / "p" / "ranked.txt").read_text()


def test_infogan_codes_benchmark_measures_a_run(tmp_path, monkeypatch):
    import math
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    sys.modules.pop("infogan_codes", None)
    import infogan_codes

    # normalised MI: 1 when a code value is a class, 0 when independent, and a hand-worked table
    assert infogan_codes.nmi(np.eye(3) * 5) == pytest.approx(1.0)
    assert infogan_codes.nmi(np.outer([1, 3], [2, 2, 4])) == pytest.approx(0.0, abs=1e-12)
    mi = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    h_rows, h_cols = math.log(2), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert infogan_codes.nmi(np.array([[2, 0], [1, 1]])) == pytest.approx(
        mi / (0.5 * (h_rows + h_cols)), rel=1e-12)
    assert infogan_codes.code_latent(0.0) == pytest.approx(0.0)
    assert infogan_codes.code_latent(0.9) == pytest.approx(1.6449, abs=1e-4)  # Phi^-1(0.95)

    run = make_run(tmp_path, "info", "model.conditional=infogan", "model.n_cont=2",
                   "model.aux_head=mlp")
    train(run, dataset=labelled_images(), progress=False)
    res = infogan_codes.measure(str(run.path), None, None, n=8, seed=0)
    cat = res["category"]
    assert np.asarray(cat["table"]).shape == (10, 10) and np.sum(cat["table"]) == 80
    assert cat["chance_purity"] <= cat["purity"] <= 1.0 and 0.0 <= cat["nmi"] <= 1.0
    assert 0.0 <= res["recovery"]["category_accuracy"] <= 1.0
    assert len(res["recovery"]["continuous_corr"]) == 2 == len(res["continuous_dx"])
    # the category changes G's input, so the same noise gives other images
    assert cat["dx"] > 0 and res["noise_dx"] > 0
