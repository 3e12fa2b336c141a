"""The loop's techniques (ganscope.techniques): each one's math against a hand computation or
autograd, and what switching it on does to a run (checkpoints, readers, exact resume)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganscope.config import RunConfig, apply_overrides
from ganscope.data import Dataset
from ganscope.errors import ConfigError, TrainingInterrupted
from ganscope.techniques.ema import GeneratorEMA
from ganscope.techniques.penalties import gradient_norm_sq, gradient_penalty_r
from ganscope.techniques.spectral import apply_spectral_norm
from ganscope.training.loop import train
from ganscope.training.run import Run, build_nets, load_checkpoint, load_generator


def tiny_images(n: int = 128, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return Dataset(images=imgs, labels=None, source={"synthetic": True})


def make_run(tmp_path, name: str, *overrides: str) -> Run:
    cfg = apply_overrides(RunConfig(), ["train.epochs=2", "train.batch_size=32",
                                        "train.n_samples=16", "seed=5", *overrides])
    return Run.create(cfg.validate(), tmp_path / "runs", name)


def top_singular(m: nn.Module) -> float:
    w = m.weight  # the parametrised (normalised) weight
    if isinstance(m, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return float(torch.linalg.matrix_norm(w.detach().reshape(w.size(0), -1), ord=2))


# --- spectral normalisation ------------------------------------------------------------------

def test_spectral_norm_makes_every_layers_largest_singular_value_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 4, 4, 2),
                        nn.Flatten(), nn.Linear(4 * 22 * 22, 5))
    layers = [net[0], net[2], net[4]]
    with torch.no_grad():
        for m in layers:
            m.weight.mul_(4.0)  # make every layer's norm far from 1
    before = [top_singular(m) for m in layers]
    assert apply_spectral_norm(net) == 3
    assert apply_spectral_norm(net) == 0  # twice is once
    x = torch.randn(2, 3, 12, 12)
    for _ in range(60):  # one power iteration per training forward
        net(x)
    after = [top_singular(m) for m in layers]
    # the unnormalised norms were 2.3-3.7; 60 power iterations converge to 3e-4 here
    assert all(b > 2 for b in before)
    assert after == pytest.approx([1.0, 1.0, 1.0], abs=2e-3)


def test_spectral_norm_option_reaches_the_nets_every_reader_rebuilds(tmp_path):
    run = make_run(tmp_path, "sn", "tech.spectral_norm=gd")
    G, D = build_nets(run)
    assert sum(hasattr(m, "parametrizations") for m in D.modules()) == 2  # mlp D: 2 linears
    assert sum(hasattr(m, "parametrizations") for m in G.modules()) == 2
    run_d = make_run(tmp_path, "sn-d", "tech.spectral_norm=d")
    G, D = build_nets(run_d)
    assert not any(hasattr(m, "parametrizations") for m in G.modules())
    train(run, dataset=tiny_images(), progress=False)
    G = load_generator(run)  # the checkpoint's parametrised keys load into the rebuilt G
    assert G(torch.zeros(3, 100)).shape == (3, 1, 28, 28)
    _, D = build_nets(run)
    D.load_state_dict(load_checkpoint(run.last_checkpoint)["D"])
    assert [top_singular(m) for m in D.modules() if isinstance(m, nn.Linear)] == pytest.approx(
        [1.0] * 2, abs=0.05)


# --- EMA of G ---------------------------------------------------------------------------------

def test_ema_equals_the_hand_computed_average_after_its_warm_up():
    G = nn.Linear(1, 1, bias=False)
    ema = GeneratorEMA(G, decay=0.9, start=2)
    values = [1.0, 2.0, 4.0, 8.0, 16.0]
    expected, avg = [], None
    for step, v in enumerate(values, 1):
        G.weight.data.fill_(v)
        ema.update(G, step)
        avg = v if step <= 2 else 0.9 * avg + 0.1 * v  # a copy for the first `start` steps
        expected.append(avg)
        assert float(ema.G.weight) == pytest.approx(avg, rel=1e-6)
    assert expected == pytest.approx([1.0, 2.0, 2.2, 2.78, 4.102])
    assert not ema.G.weight.requires_grad


def test_ema_copies_batchnorm_statistics_until_read_and_refuses_bad_decay():
    G = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ema = GeneratorEMA(G, 0.99, z_dim=2, batch_size=8)
    G(torch.randn(16, 2) * 5 + 3)  # running stats move
    ema.update(G, 1)
    assert ema.stale and torch.equal(ema.G[1].running_mean, G[1].running_mean)
    with pytest.raises(ValueError, match="decay"):
        GeneratorEMA(G, 1.0, z_dim=2)
    with pytest.raises(ValueError, match="z_dim"):  # standing statistics need latents
        GeneratorEMA(G, 0.9)


def test_ema_standing_statistics_are_the_averages_own_batch_statistics():
    """BigGAN's standing statistics, by hand: the running mean is the mean of the averaged
    G's pre-BatchNorm activations over the fixed latents, the running variance the mean of the
    batches' unbiased variances; the raw G's statistics are not kept."""
    from ganscope.techniques.ema import STAT_BATCHES
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = GeneratorEMA(G, 0.5, z_dim=3, batch_size=10, seed=7)
    G(torch.randn(32, 3) * 4 + 9)  # the raw G's running statistics: far from the average's
    with torch.no_grad():
        G[0].weight.mul_(3.0)
    ema.update(G, 1)  # a copy (step <= start)
    ema.update(G, 2)  # an average: 0.5 * old + 0.5 * new, so neither G's statistics fit
    gen = torch.Generator().manual_seed(7)
    batches = [ema.G[0](torch.randn(10, 3, generator=gen)) for _ in range(STAT_BATCHES)]
    want_mean = torch.stack([b.mean(0) for b in batches]).mean(0)
    want_var = torch.stack([b.var(0, unbiased=True) for b in batches]).mean(0)
    out = ema.generator()
    assert out is ema.G and not out.training and not out[1].training
    # measured gap (AMD EPYC): 6.8e-8 relative in the mean, 1.9e-7 in the variance, only the
    # order of 16 float32 additions; rtol 1e-5 leaves a 50x margin (not measured on a Xeon)
    assert torch.allclose(out[1].running_mean, want_mean, rtol=1e-5, atol=1e-6)
    assert torch.allclose(out[1].running_var, want_var, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out[1].running_mean, G[1].running_mean, atol=0.1)
    assert out[1].momentum == G[1].momentum  # restored after the cumulative average
    again = ema.state_dict()  # read again without an update: no second pass, same numbers
    assert torch.equal(again["1.running_mean"], out[1].running_mean)
    # a fresh average loaded from that state is standing already
    other = GeneratorEMA(G, 0.5, z_dim=3, batch_size=10, seed=99)
    other.load_state_dict(again)
    assert not other.stale and torch.equal(other.generator()[1].running_var,
                                           out[1].running_var)


def test_ema_standing_statistics_leave_spectral_norms_vectors_alone():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.Linear(6, 2))
    apply_spectral_norm(G)
    ema = GeneratorEMA(G, 0.9, z_dim=3, batch_size=8)
    G(torch.randn(8, 3))
    ema.update(G, 1)
    us = [b.clone() for n, b in ema.G.named_buffers() if n.endswith("_u")]
    assert us
    ema.generator()
    assert all(torch.equal(u, b) for u, b in
               zip(us, [b for n, b in ema.G.named_buffers() if n.endswith("_u")], strict=True))


def test_ema_of_a_batchnorm_generator_samples_as_its_own_batches_do(tmp_path):
    """The defect standing statistics mend: an averaged DCGAN evaluated with the raw G's
    running statistics draws other images than it does normalised by its own batches."""
    run = train(make_run(tmp_path, "ema-bn", "model.name=dcgan", "model.init=dcgan",
                         "tech.ema=0.8", "train.epochs=1", "train.batch_size=16",
                         "train.n_samples=4"),
                dataset=tiny_images(128), progress=False)
    ck = load_checkpoint(run.last_checkpoint)
    mean = [k for k in ck["G"] if k.endswith("running_mean")]
    assert mean and all(not torch.equal(ck["G"][k], ck["G_ema"][k]) for k in mean)
    G = load_generator(run)
    z = torch.randn(512, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        standing = G(z)
        G.train()
        own = G(z)  # normalised by this batch's own statistics
        G.eval()
        G.load_state_dict({**G.state_dict(), **{k: v for k, v in ck["G"].items()
                                                 if "running" in k}})
        copied = G(z)
    gap_standing = (standing - own).abs().mean().item()
    gap_copied = (copied - own).abs().mean().item()
    # measured on an AMD EPYC: 0.004 against 0.18, a 48x margin
    assert gap_standing < 0.5 * gap_copied, (gap_standing, gap_copied)


def test_ema_run_trains_the_same_weights_and_readers_get_the_average(tmp_path):
    ds = tiny_images()
    plain = train(make_run(tmp_path, "plain"), dataset=ds, progress=False)
    ema = train(make_run(tmp_path, "ema", "tech.ema=0.8"), dataset=ds, progress=False)
    a, b = load_checkpoint(plain.last_checkpoint), load_checkpoint(ema.last_checkpoint)
    for k in a["G"]:  # averaging only reads G: the trained weights are bit-identical
        assert torch.equal(a["G"][k], b["G"][k])
    assert "G_ema" not in a
    w, w_ema = b["G"]["fc1.weight"], b["G_ema"]["fc1.weight"]
    assert not torch.equal(w, w_ema)
    assert torch.equal(load_generator(ema).fc1.weight, w_ema)
    assert torch.equal(load_generator(ema, raw=True).fc1.weight, w)
    per_epoch = load_checkpoint(ema.generator_checkpoint(2))
    assert torch.equal(per_epoch["G_ema"]["fc1.weight"], w_ema)


# --- R1 / R2 ----------------------------------------------------------------------------------

class TinyD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x.flatten(1))))


def test_r1_equals_autograds_per_sample_gradient_norm():
    torch.manual_seed(1)
    D, x = TinyD(), torch.randn(5, 3)
    got = gradient_norm_sq(D, x)
    want = []
    for i in range(5):  # each sample alone, no batching at all
        xi = x[i:i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(D(xi).sum(), xi)
        want.append(float(g.pow(2).sum()))
    assert got.tolist() == pytest.approx(want, rel=1e-5)
    r1 = gradient_penalty_r(D, x, x * 0, r1=10.0, r2=0.0, every=1, d_step=0)
    assert float(r1) == pytest.approx(5.0 * sum(want) / 5, rel=1e-5)


def test_r1_trains_d_and_lazy_steps_weigh_by_k():
    D = nn.Linear(3, 1)  # grad_x D = w for every x: R1 = gamma/2 |w|^2, d/dw = gamma w
    x = torch.randn(4, 3)
    w = D.weight.detach().clone()
    pen = gradient_penalty_r(D, x, x, r1=2.0, r2=0.0, every=1, d_step=0)
    assert float(pen) == pytest.approx(float(w.pow(2).sum()), rel=1e-6)
    pen.backward()
    assert torch.allclose(D.weight.grad, 2.0 * w, rtol=1e-6)
    both = gradient_penalty_r(D, x, x, r1=2.0, r2=4.0, every=1, d_step=0)
    assert float(both) == pytest.approx(3 * float(w.pow(2).sum()), rel=1e-6)
    assert gradient_penalty_r(D, x, x, r1=2.0, r2=0, every=4, d_step=1) is None
    lazy = gradient_penalty_r(D, x, x, r1=2.0, r2=0, every=4, d_step=8)
    assert float(lazy) == pytest.approx(4 * float(w.pow(2).sum()), rel=1e-6)
    assert gradient_penalty_r(D, x, x, r1=0, r2=0, every=1, d_step=0) is None


# --- the options together: resume is exact, configs are checked ------------------------------

ALL_ON = ("tech.ema=0.9", "tech.ema_start=3", "tech.spectral_norm=d", "tech.r1=1.0",
          "tech.reg_every=2", "tech.augment=color,translation,cutout", "tech.ada_target=0.6",
          "tech.ada_interval=2", "tech.ada_speed=2000", "tech.augment_p=0.2")


@pytest.mark.parametrize("stop_at", [3, 6])  # mid-epoch 1, mid-epoch 2
def test_every_technique_on_resumes_exactly(tmp_path, stop_at):
    ds = tiny_images()
    full = train(make_run(tmp_path, "full", *ALL_ON), dataset=ds, progress=False)
    part = make_run(tmp_path, "part", *ALL_ON)
    with pytest.raises(TrainingInterrupted):
        train(part, dataset=ds, progress=False, should_stop=lambda step: step == stop_at)
    train(part, dataset=ds, resume=True, progress=False)
    a, b = load_checkpoint(full.last_checkpoint), load_checkpoint(part.last_checkpoint)
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"
    assert a["ada"] == b["ada"]
    assert full.read_events() == part.read_events()
    # ADA moved p from its start (0.2) by whole increments of batch * interval / speed
    p = full.meta()["ada"]["p"]
    assert p != pytest.approx(0.2)
    assert ((p - 0.2) / (32 * 2 / 2000)) == pytest.approx(round((p - 0.2) / (32 * 2 / 2000)))


@pytest.mark.parametrize("setting, message", [
    ("tech.spectral_norm=g", "bad config: tech.spectral_norm must be none, d, gd (which nets "
                             "get it)"),
    ("tech.ema=1.5", "bad config: tech.ema must lie in (0, 1), e.g. 0.999 (0 = off)"),
    ("tech.ada_target=0.6", "bad config: tech.ada_target adapts the augmentation: give "
                            "tech.augment too, e.g. color,translation,cutout"),
    ("tech.augment=flip", "bad config: unknown augmentation 'flip' (known: color, "
                          "translation, cutout)"),
])
def test_technique_settings_are_checked_with_one_line(setting, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), [setting]).validate()
    assert str(e.value) == message


def test_augmenting_points_is_refused():
    cfg = apply_overrides(RunConfig(), ["data.name=ring8", "model.name=mlp2d", "model.z_dim=2",
                                        "tech.augment=translation"])
    with pytest.raises(ConfigError, match="tech.augment transforms images; ring8 holds points"):
        cfg.validate()


def test_export_and_generate_use_the_average_with_spectral_norm_baked_in(tmp_path, capsys):
    from safetensors.torch import load_file

    from ganscope.cli import main
    from ganscope.export import export_generator
    from ganscope.models import build_models

    run = train(make_run(tmp_path, "sn-ema", "tech.spectral_norm=gd", "tech.ema=0.8"),
                dataset=tiny_images(), progress=False)
    got = load_file(export_generator(run, "safetensors", tmp_path / "g.safetensors"))
    G, _ = build_models("mlp", 100)  # a plain G, as the sidecar's recipe rebuilds it
    G.load_state_dict(got)
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = load_generator(run)(z)  # the EMA generator, spectral norm applied
        assert torch.allclose(G.eval()(z), want, atol=1e-6)
        assert not torch.allclose(load_generator(run, raw=True)(z), want, atol=1e-3)
    runs_dir = str(tmp_path / "runs")
    for flag, name in (([], "ema.npy"), (["--no-ema"], "raw.npy")):
        assert main(["generate", "sn-ema", "--runs-dir", runs_dir, "-n", "4", "--no-progress",
                     "--out", str(tmp_path / name), *flag]) == 0
    import numpy as np

    ema_img, raw_img = (np.load(tmp_path / n) for n in ("ema.npy", "raw.npy"))
    assert ema_img.shape == raw_img.shape == (4, 28, 28)
    assert not np.array_equal(ema_img, raw_img)


def test_eval_scores_the_average_and_the_trained_weights_on_request(tmp_path, capsys,
                                                                    tiny_fmnist_dir):
    import json

    from ganscope.cli import main

    train(make_run(tmp_path, "ema-eval", "tech.ema=0.8"), dataset=tiny_images(),
          progress=False)
    base = ["eval", "ema-eval", "--runs-dir", str(tmp_path / "runs"), "-n", "64", "--json",
            "--no-progress", "--data-dir", str(tiny_fmnist_dir)]
    recs = {}
    for flag in ("", "--no-ema"):
        assert main(base + ([flag] if flag else [])) == 0
        recs[flag] = json.loads(capsys.readouterr().out)[0]
    assert "raw" not in recs[""] and recs["--no-ema"]["raw"] is True
    # the same latents, other weights: other images, other scores
    assert recs[""]["metrics"]["fid"] != recs["--no-ema"]["metrics"]["fid"]
    saved = Run(tmp_path / "runs" / "ema-eval").read_metrics()
    assert [bool(r.get("raw")) for r in saved] == [False, True]
    assert main(["eval", "--images", str(tmp_path / "x.npy"), "--no-ema"]) == 2
    assert capsys.readouterr().err == ("error: --checkpoint, --no-save and --no-ema apply to "
                                       "runs, not to --images\n")


# --- train.minutes: a wall-clock budget --------------------------------------------------------

def test_time_budget_ends_a_run_mid_epoch_evaluated_and_extendable(tmp_path, monkeypatch):
    import itertools

    from ganscope.training import loop

    ticks = itertools.count()  # a clock that moves 1 s each time the loop reads it
    monkeypatch.setattr(loop, "_clock", lambda: float(next(ticks)))
    ds = tiny_images()  # 128 images / 32 = 4 steps an epoch
    run = make_run(tmp_path, "timed", "train.minutes=0.1", "train.epochs=5",
                   "train.sample_every=5")
    train(run, dataset=ds, progress=False)
    meta = run.meta()
    # the clock is read at the start, after each step but an epoch's last, at the epoch's
    # end and by its checkpoint: 1, 2, 3, (epoch end) 4, 5, then 6 s after step 5
    assert meta["status"] == "completed" and meta["step"] == 5
    assert meta["stopped_early"] == {"reason": "time", "epoch": 2, "step": 5, "minutes": 0.1}
    assert meta["epochs_done"] == 1.25
    assert run.sample_epochs() == [2]  # the part epoch's samples, as at a last epoch
    assert run.generator_epochs() == [1, 2]
    ck = load_checkpoint(run.last_checkpoint)
    assert (ck["epoch"], ck["iter"], ck["step"]) == (1, 1, 5)
    # more time continues the very run: the same weights as an untimed run of 5 epochs
    ticks2 = itertools.count()
    monkeypatch.setattr(loop, "_clock", lambda: float(next(ticks2)))
    cfg = apply_overrides(run.config(), ["train.minutes=10"])
    run.config_path.write_text(__import__("ganscope.config", fromlist=["x"]).save_yaml(cfg))
    train(run, dataset=ds, resume=True, progress=False)
    full = train(make_run(tmp_path, "untimed", "train.epochs=5", "train.sample_every=5"),
                 dataset=ds, progress=False)
    a, b = load_checkpoint(full.last_checkpoint), load_checkpoint(run.last_checkpoint)
    assert b["step"] == 20 and run.meta()["stopped_early"] is None
    for k in a["G"]:
        assert torch.equal(a["G"][k], b["G"][k])


def test_time_budget_records_an_evaluation_of_the_part_epoch(tmp_path, monkeypatch):
    import itertools

    from ganscope.training import loop

    ticks = itertools.count()
    monkeypatch.setattr(loop, "_clock", lambda: float(next(ticks)))
    cfg = apply_overrides(RunConfig(), [
        "data.name=ring8", "data.n_points=512", "model.name=mlp2d", "model.z_dim=2",
        "train.batch_size=64", "train.epochs=4", "train.minutes=0.05", "eval.every=3",
        "eval.n=200", "train.n_samples=64"]).validate()
    run = train(Run.create(cfg, tmp_path / "runs", "pts"), progress=False)
    assert run.meta()["stopped_early"]["reason"] == "time"
    recs = run.read_metrics()
    assert [r["epoch"] for r in recs] == [1]  # 8 steps an epoch, out of time after 3
    assert recs[0]["metrics"]["n_modes"] == 8


def test_best_cpu_trains_a_quarter_width_dcgan_until_its_15_minutes_are_spent(
        tmp_path, monkeypatch, tiny_fmnist_dir, capsys):
    """The preset as a user runs it (`ganscope train best-cpu`), its budget on a clock that
    moves 100 s per read: the run stops on time, mid-training, with the preset's nets."""
    import itertools

    from ganscope.cli import main
    from ganscope.training import loop

    ticks = itertools.count(step=100)
    monkeypatch.setattr(loop, "_clock", lambda: float(next(ticks)))
    assert main(["train", "best-cpu", "--data-dir", str(tiny_fmnist_dir), "--runs-dir",
                 str(tmp_path), "--name", "b", "--no-progress", "--no-plot"]) == 0
    run = Run(tmp_path / "b")
    meta = run.meta()
    assert meta["stopped_early"]["reason"] == "time" and meta["stopped_early"]["minutes"] == 15
    # the summary line rounds the fractional epochs and says why the run ended short
    done = meta["epochs_done"]
    shown = f"{done:.0f}" if float(done).is_integer() else f"{done:.2f}"
    assert (f"status:   completed ({shown} of 100 epochs, stopped by its 15-minute budget, "
            "last loss_d ") in capsys.readouterr().out
    assert 0 < meta["step"] < 100 * 4  # 256 images: 4 steps an epoch, 100 epochs the ceiling
    G = load_generator(run)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [tuple(c.weight.shape[:2]) for c in convs] == [(100, 64), (64, 32), (32, 1)]
    cfg = run.config()
    assert (cfg.optim.lr, cfg.model.d_hidden, cfg.train.minutes) == (5e-4, (32, 64), 15.0)


def test_sngan_resnet_trains_in_the_loop_with_spectral_norm_and_hinge(tmp_path):
    run = make_run(tmp_path, "resnet", "model.name=sngan-resnet28", "model.g_hidden=[16]",
                   "model.d_hidden=[16]", "loss.name=hinge", "tech.spectral_norm=d",
                   "tech.ema=0.9", "train.epochs=1", "train.batch_size=16")
    train(run, dataset=tiny_images(48), progress=False)
    ev = run.read_events()
    assert len(ev) == 3 and all(abs(e["d_x"]) < 10 for e in ev)  # SN keeps D's scores small
    G = load_generator(run)
    with torch.no_grad():
        x = G(torch.randn(4, 100))
    assert x.shape == (4, 1, 28, 28) and float(x.abs().max()) <= 1.0


# --- train.precision=auto -----------------------------------------------------------------------

def test_precision_auto_follows_the_cpus_bf16_units(tmp_path, monkeypatch):
    from ganscope import environment
    from ganscope.training.loop import resolve_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(environment, "cpu_flags", lambda: {"avx2", "amx_bf16", "avx512f"})
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(environment, "cpu_flags", lambda: {"avx2", "fma"})
    assert resolve_precision("auto", cpu) == "fp32"
    # AVX512-BF16 without AMX: measured slower in bf16 than fp32 (benchmarks/precision_fid.py)
    monkeypatch.setattr(environment, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(environment, "cpu_flags", lambda: {"amx_bf16"})
    run = train(make_run(tmp_path, "auto", "train.precision=auto", "train.epochs=1"),
                dataset=tiny_images(64), progress=False)
    ex = run.meta()["execution"]
    assert (ex["precision"], ex["precision_asked"]) == ("bf16", "auto")


def test_a_mapped_data_set_trains_the_same_weights_as_in_memory(tmp_path):
    """Dataset.mapped gathers and converts each batch on its own: the same numbers."""
    import dataclasses

    ds = tiny_images(64)
    path = tmp_path / "images.npy"
    np_images = ds.images.numpy()
    __import__("numpy").save(path, np_images)
    mm = __import__("numpy").load(path, mmap_mode="c")  # a memory-mapped file
    mapped = dataclasses.replace(ds, images=torch.from_numpy(mm), mapped=True)
    # a conv model: its batches go channels-last, gathered ones too
    a = train(make_run(tmp_path, "ram", "model.name=tiny-cnn", "train.epochs=1"), dataset=ds,
              progress=False)
    b = train(make_run(tmp_path, "mmap", "model.name=tiny-cnn", "train.epochs=1"),
              dataset=mapped, progress=False)
    ca, cb = load_checkpoint(a.last_checkpoint), load_checkpoint(b.last_checkpoint)
    for k in ca["G"]:
        assert torch.equal(ca["G"][k], cb["G"][k]), k
