"""Many seeds in one process (ganscope.training.stacked): each run of a stack trains as its solo
run would, to float rounding, and keeps a solo run's directory, checkpoints and resume."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from ganscope.config import apply_overrides, load_config
from ganscope.errors import TrainingInterrupted, UserError
from ganscope.experiments import runner
from ganscope.experiments.runner import make_jobs
from ganscope.models import build_models
from ganscope.optim import build_optimizer
from ganscope.training import loop
from ganscope.training.loop import train
from ganscope.training.run import Run, load_checkpoint
from ganscope.training.stacked import train_stacked, why_not_stackable
from ganscope.training.stacked_net import (
    StackedNet,
    stack_optimizer_states,
    unstack_optimizer_state,
)

# ring8 with 640 points: 10 batches of 64 per epoch
SMALL = ["data.n_points=640", "train.n_samples=64", "train.save_generators=false"]
# Measured on a 2-core Intel Xeon (AVX-512), the largest gap between a stacked run's weights and
# its solo run's in these tests: 6.7e-5 for WGAN-GP (100 critic steps; Adam divides by sqrt(v),
# which magnifies rounding where a gradient is near zero), 6.9e-6 WGAN, 2e-7 BCE, 1.3e-5 the conv
# net under vmap. 2e-3 leaves a 30x margin for other kernels (AVX2 machines: not measured).
WEIGHT_TOL = 2e-3


def cfg_for(preset: str, seed: int, *extra: str):
    return apply_overrides(load_config(preset), [f"seed={seed}", *SMALL, *extra]).validate()


def max_diff(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def make_runs(tmp_path, where: str, preset: str, seeds, *extra: str) -> list[Run]:
    return [Run.create(cfg_for(preset, s, *extra), tmp_path / where, f"s{s}") for s in seeds]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("model,z", [("mlp2d", 2), ("mlp", 100)])
def test_a_stacked_net_computes_each_solo_net(model, z, fast):
    """Batched matmuls (the MLPs' fast path, with mlp's reshapes) and vmap (any net) both give
    run k the solo net's function, and its slice back as the solo state_dict."""
    torch.manual_seed(0)
    nets = [build_models(model, z, True) for _ in range(3)]
    for i in (0, 1):
        solo = [n[i] for n in nets]
        stacked = StackedNet(solo[0], [n.state_dict() for n in solo], fast)
        assert stacked.fast == fast
        x = torch.randn(3, 5, z if i == 0 else (2 if model == "mlp2d" else 784))
        want = torch.stack([n(xi) for n, xi in zip(solo, x)])
        assert torch.allclose(stacked(x), want, atol=1e-6, rtol=1e-5)
        for k, n in enumerate(solo):
            assert max_diff(stacked.unstack(k), n.state_dict()) == 0
        # the stacked parameters line up with the solo ones, name for name (the fast path
        # keeps Linear weights transposed and turns them back on the way out)
        shapes = [p.shape[1:][::-1] if j in stacked.transposed_idx else p.shape[1:]
                  for j, p in enumerate(stacked.parameters())]
        assert shapes == [p.shape for p in solo[0].parameters()]
        assert bool(stacked.transposed_idx) == fast


def test_optimiser_state_stacks_and_unstacks_exactly():
    torch.manual_seed(0)
    nets = [nn.Linear(3, 2) for _ in range(2)]
    states = []
    for net in nets:
        opt = build_optimizer(net.parameters(), {"name": "adam", "lr": 1e-3, "betas": (0.5, 0.9),
                                                 "eps": 1e-8, "weight_decay": 0.0})
        net(torch.randn(4, 3)).sum().backward()
        opt.step()
        states.append(opt.state_dict())
    both = stack_optimizer_states(states)
    assert both["state"][0]["exp_avg"].shape == (2, 2, 3)
    for k, s in enumerate(states):
        back = unstack_optimizer_state(both, k)
        assert back["param_groups"] == s["param_groups"]
        for idx in s["state"]:
            for key, v in s["state"][idx].items():
                assert torch.equal(back["state"][idx][key], v)


@pytest.mark.parametrize("preset,extra", [
    ("e5-wgan-gp-adam", ["train.epochs=2"]),  # the gradient penalty, EMA, 5 critic steps
    ("e5-wgan-rmsprop", ["train.epochs=2"]),  # weight clipping, RMSprop
    ("e5-gan-adam", ["train.epochs=2"]),  # BCE: D ends in a sigmoid
])
def test_each_stacked_run_follows_its_solo_run(tmp_path, preset, extra):
    seeds = [0, 1, 2]
    solo = make_runs(tmp_path, "solo", preset, seeds, *extra)
    for r in solo:
        train(r, progress=False, verbose=False)
    stack = make_runs(tmp_path, "stack", preset, seeds, *extra)
    train_stacked(stack, progress=False, verbose=False)
    for a, b in zip(solo, stack):
        ca, cb = load_checkpoint(a.last_checkpoint), load_checkpoint(b.last_checkpoint)
        assert set(ca) == set(cb)  # the solo checkpoint format, key for key
        assert ca["step"] == cb["step"] > 0
        for net in ("G", "D", *(("G_ema",) if "G_ema" in ca else ())):
            assert max_diff(ca[net], cb[net]) < WEIGHT_TOL, net
        # the runs really differ from each other (each has its own init, data and noise)
        assert max_diff(ca["G"], load_checkpoint(stack[0].last_checkpoint)["G"]) > 1e-3 or (
            a.name == "s0")
        assert torch.equal(ca["noise_state"], cb["noise_state"])  # the same draws, in order
        ea, eb = a.read_events(), b.read_events()
        assert [e["step"] for e in ea] == [e["step"] for e in eb]
        assert max(abs(x["loss_d"] - y["loss_d"]) for x, y in zip(ea, eb)) < 1e-3
        meta = b.meta()
        assert meta["status"] == "completed" and meta["execution"]["stacked"] == 3
        assert meta["epochs_done"] == a.meta()["epochs_done"]
        assert sorted(p.name for p in b.samples.glob("*.png")) == sorted(
            p.name for p in a.samples.glob("*.png"))


def test_an_interrupted_stack_resumes_exactly_and_a_run_resumes_alone(tmp_path):
    extra = ["train.epochs=3"]
    whole = make_runs(tmp_path, "whole", "e5-wgan-gp-adam", [0, 1], *extra)
    train_stacked(whole, progress=False, verbose=False)
    cut = make_runs(tmp_path, "cut", "e5-wgan-gp-adam", [0, 1], *extra)
    with pytest.raises(TrainingInterrupted):
        train_stacked(cut, progress=False, verbose=False, should_stop=lambda s: s == 3)
    assert {r.meta()["status"] for r in cut} == {"interrupted"}
    train_stacked(cut, resume=True, progress=False, verbose=False)
    for a, b in zip(whole, cut):  # the same path on one machine: bit for bit
        ca, cb = load_checkpoint(a.last_checkpoint), load_checkpoint(b.last_checkpoint)
        for net in ("G", "D", "G_ema"):
            assert max_diff(ca[net], cb[net]) == 0
        assert a.read_events() == b.read_events()
    # one run of a stack, resumed alone by the solo loop, finishes as its stacked twin
    alone = make_runs(tmp_path, "alone", "e5-wgan-gp-adam", [0, 1], *extra)
    with pytest.raises(TrainingInterrupted):
        train_stacked(alone, progress=False, verbose=False, should_stop=lambda s: s == 3)
    train(alone[1], resume=True, progress=False, verbose=False)
    ca, cb = load_checkpoint(whole[1].last_checkpoint), load_checkpoint(alone[1].last_checkpoint)
    assert cb["step"] == ca["step"]
    assert max_diff(ca["G"], cb["G"]) < WEIGHT_TOL
    assert alone[1].meta()["status"] == "completed" and alone[0].meta()["status"] == "interrupted"


def test_a_plateaued_run_leaves_the_stack_and_the_others_go_on(tmp_path, monkeypatch):
    extra = ["train.epochs=4", "eval.every=1", "eval.n=200", "eval.patience=1"]
    plain = make_runs(tmp_path, "plain", "e5-wgan-gp-adam", [0, 1, 2], *extra[:1])
    train_stacked(plain, progress=False, verbose=False)
    real = loop.plateau_reached

    def planted(records, ec):  # s1 stops after its 2nd evaluation; the others never do
        return len(records) >= 2 and records[-1]["run"] == "s1"
    monkeypatch.setattr(loop, "plateau_reached", planted)
    runs = make_runs(tmp_path, "stop", "e5-wgan-gp-adam", [0, 1, 2], *extra)
    train_stacked(runs, progress=False, verbose=False)
    assert real is not planted
    steps = {r.name: load_checkpoint(r.last_checkpoint)["step"] for r in runs}
    assert steps == {"s0": 8, "s1": 4, "s2": 8}  # 2 generator steps per epoch
    assert runs[1].meta()["stopped_early"]["reason"] == "plateau"
    assert runs[1].meta()["status"] == "completed"
    assert [len(r.read_metrics()) for r in runs] == [4, 2, 4]
    for a, b in zip(plain, runs):
        if b.name != "s1":  # the survivors train on as without the stop
            assert max_diff(load_checkpoint(a.last_checkpoint)["G"],
                            load_checkpoint(b.last_checkpoint)["G"]) < WEIGHT_TOL


def test_an_interrupted_stack_reports_its_plateaued_run_as_completed(tmp_path, monkeypatch):
    """train_job's results (what a batch and the E5 benchmark report) take each run's own
    status: the run its plateau rule completed is not called interrupted with the others."""
    monkeypatch.setattr(loop, "plateau_reached",
                        lambda records, ec: len(records) >= 2 and records[-1]["run"] == "s1")
    real = runner.train_stacked
    monkeypatch.setattr(runner, "train_stacked", lambda *a, **kw: real(
        *a, should_stop=lambda step: step == 6, **kw))  # Ctrl-C at step 6, after s1 left at 4
    runs = make_runs(tmp_path, "cut", "e5-wgan-gp-adam", [0, 1, 2], "train.epochs=4",
                     "eval.every=1", "eval.n=200", "eval.patience=1")
    results = runner.train_job([(str(r.path), False) for r in runs], plots=False)
    assert [(Path(x["run"]).name, x["status"], x["error"]) for x in results] == [
        ("s0", "interrupted", None), ("s1", "completed", None), ("s2", "interrupted", None)]
    assert [r.meta()["status"] for r in runs] == ["interrupted", "completed", "interrupted"]


def test_what_cannot_stack_trains_alone(tmp_path):
    base = cfg_for("e5-wgan-gp-adam", 0)
    assert why_not_stackable(base) is None
    for over, why in [("train.minutes=1", "train.minutes"), ("tech.spectral_norm=d",
                      "spectral norm"), ("tech.r1=1", "R1/R2"), ("train.precision=bf16",
                      "mixed precision")]:
        assert why in why_not_stackable(apply_overrides(copy.deepcopy(base), [over]))
    assert "BatchNorm" in why_not_stackable(load_config("e2-dcgan-fixed"))
    assert why_not_stackable(load_config("e2-tiny-cnn")) is None  # conv, no BatchNorm: vmap
    # jobs: seeds of one config share one; another config, or a non-stackable run, its own
    runs = (make_runs(tmp_path, "a", "e5-wgan-gp-adam", [0, 1, 2])
            + make_runs(tmp_path, "b", "e5-gan-adam", [0, 1])
            + make_runs(tmp_path, "c", "e5-gan-adam", [0, 1], "train.minutes=1"))
    jobs = make_jobs([(str(r.path), False) for r in runs], stack=True)
    assert [[p.split("/")[-2] + p[-1] for p, _ in j] for j in jobs] == [
        ["c0"], ["c1"], ["a0", "a1", "a2"], ["b0", "b1"]]
    assert len(make_jobs([(str(r.path), False) for r in runs], stack=False)) == 7
    with pytest.raises(UserError, match="share their config but for the seed"):
        train_stacked([runs[0], runs[3]], progress=False)
    with pytest.raises(UserError, match=r"cannot train in a stack \(a wall-clock budget"):
        train_stacked(runs[5:], progress=False)


def test_a_conv_net_stacks_under_vmap_and_follows_its_solo_runs(tmp_path, tiny_fmnist_dir):
    extra = [f"data.dir={tiny_fmnist_dir}", "data.limit=256", "train.epochs=2"]
    solo = make_runs(tmp_path, "solo", "e2-tiny-cnn", [0, 1], *extra)
    for r in solo:
        train(r, progress=False, verbose=False)
    stack = make_runs(tmp_path, "stack", "e2-tiny-cnn", [0, 1], *extra)
    train_stacked(stack, progress=False, verbose=False)
    for a, b in zip(solo, stack):
        ca, cb = load_checkpoint(a.last_checkpoint), load_checkpoint(b.last_checkpoint)
        assert ca["step"] == cb["step"] == 8
        for net in ("G", "D"):  # measured: 1.3e-5 after 8 steps
            assert max_diff(ca[net], cb[net]) < WEIGHT_TOL


def test_sweep_and_lab2d_stack_unless_told_not_to():
    from ganscope.cli import build_parser

    p = build_parser()
    assert p.parse_args(["lab2d"]).stack is True
    assert p.parse_args(["lab2d", "--no-stack"]).stack is False
    assert p.parse_args(["sweep", "e1-mlp"]).stack is True
    assert p.parse_args(["sweep", "e1-mlp", "--no-stack"]).stack is False
