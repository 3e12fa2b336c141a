"""`ganscope sweep`: grid x seeds expansion, run names, one-line errors, resume, the spec check,
the Ray backend on a local Ray instance (same results as the local pool), and sweep spec files
(`--spec`: named variants x grid x seeds, the shipped configs/sweeps/ablation-cpu.yaml)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from ganscope.cli import main
from ganscope.config import RunConfig, TrainConfig
from ganscope.errors import ConfigError, TrainingInterrupted
from ganscope.experiments.runner import RAY_NICENESS, plan_runs, start_local_ray, train_job
from ganscope.experiments.sweep import (
    default_dir,
    entries,
    expand,
    load_spec,
    make_spec,
    parse_grid,
    parse_seeds,
    read_sweep_file,
    run_sweep,
    split_values,
    write_spec,
)
from ganscope.training.loop import train
from ganscope.training.run import Run, load_checkpoint

# Tiny 2-D runs: 256 points, batch 64, 2 epochs = 8 generator steps, scored every epoch.
TINY = ["data.n_points=256", "train.epochs=2", "eval.every=1", "eval.n=100",
        "train.n_samples=100"]
GRID = ["loss=bce,wgan-gp", "optim=adam,rmsprop"]


def run_cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def sweep_args(out, *grid, seeds="0-1"):
    # --no-plot: these sweeps' runs are read for their numbers; the curves of tiny runs cost as
    # much as their training (the spec-file sweep below draws them and checks them)
    args = ["sweep", "e5-gan-adam", "--seeds", seeds, "--out", str(out), "--workers", "2",
            "--no-progress", "--no-plot"]
    for g in grid:
        args += ["--grid", g]
    for s in TINY:
        args += ["--set", s]
    return args


# --- parsing and expansion ----------------------------------------------------------------------


def test_seeds_parse_as_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,7") == [0, 2, 7]
    assert parse_seeds("0-2,9,1") == [0, 1, 2, 9]
    assert parse_seeds("3") == [3]
    for bad in ("a", "", "1-", "-1"):
        with pytest.raises(ConfigError) as e:
            parse_seeds(bad)
        assert str(e.value) == (f"bad --seeds '{bad}': give seeds as a range or a list, e.g. "
                                "0-4, 0,1,2 or 0-2,9")
    with pytest.raises(ConfigError, match=r"^bad --seeds '4-2': the range 4-2 runs backwards$"):
        parse_seeds("4-2")


def test_grid_keys_shorthand_and_values():
    assert parse_grid(["loss=bce,wgan-gp", "optim=adam,rmsprop", "optim.d.lr=1e-4,4e-4",
                       "model=mlp"]) == [
        ("loss.name", ["bce", "wgan-gp"]), ("optim.name", ["adam", "rmsprop"]),
        ("optim.d.lr", ["1e-4", "4e-4"]), ("model.name", ["mlp"])]
    assert split_values("[0.5,0.9], [0.9,0.999]") == ["[0.5,0.9]", "[0.9,0.999]"]
    assert parse_grid(["optim.betas=[0.5,0.9],[0.9,0.999]"]) == [
        ("optim.betas", ["[0.5,0.9]", "[0.9,0.999]"])]


# TrainConfig's keys, in order (the config grows; the message lists what it holds)
TRAIN_KEYS = ", ".join(f.name for f in dataclasses.fields(TrainConfig))
TOP_KEYS = ", ".join(f.name for f in dataclasses.fields(RunConfig))
GRID_ERRORS = [
    ("lose=bce", "unknown config key 'lose' in --grid lose=bce: valid keys at the top level "
                 f"are {TOP_KEYS}"),
    ("train.epoch=1,2", "unknown config key 'train.epoch' in --grid train.epoch=1,2: valid "
                        f"keys under 'train' are {TRAIN_KEYS}"),
    ("train=1", f"--grid train=1: 'train' is a section; give one of its keys ({TRAIN_KEYS})"),
    ("seed=1,2", "--grid seed=1,2: seeds come from --seeds (e.g. --seeds 0-4), not from the "
                 "grid"),
    ("loss", "bad --grid 'loss': write it as key=value,value,... e.g. --grid loss=bce,wgan-gp"),
    ("loss=", "bad --grid 'loss=': give one or more values separated by commas, none empty"),
    ("loss=bce,,hinge", "bad --grid 'loss=bce,,hinge': give one or more values separated by "
                        "commas, none empty"),
    ("loss=bce,bce", "bad --grid 'loss=bce,bce': a value is repeated"),
]


@pytest.mark.parametrize("item,line", GRID_ERRORS)
def test_bad_grid_items_are_one_line_errors(capsys, tmp_path, item, line):
    rc, _, err = run_cli(capsys, *sweep_args(tmp_path / "sw", item))
    assert rc == 2
    assert err == f"error: {line}\n"
    assert not (tmp_path / "sw").exists()


def test_bad_values_name_their_grid_and_a_key_given_twice(capsys, tmp_path):
    rc, _, err = run_cli(capsys, *sweep_args(tmp_path / "sw", "loss=bce,nope"))
    assert err == ("error: unknown loss 'nope': choose one of bce, hinge, lsgan, minimax, wgan, "
                   "wgan-gp (in --grid loss.name=bce,nope)\n")
    rc, _, err = run_cli(capsys, *sweep_args(tmp_path / "sw", "train.epochs=two"))
    assert err == ("error: bad value for train.epochs: expected an integer, got 'two' "
                   "(in --grid train.epochs=two)\n")
    rc, _, err = run_cli(capsys, *sweep_args(tmp_path / "sw", "loss=bce", "loss.name=hinge"))
    assert err == "error: --grid loss.name is given twice: put all its values in one --grid\n"
    rc, _, err = run_cli(capsys, *sweep_args(tmp_path / "sw", "loss=bce"), "--address",
                         "1.2.3.4:6379")
    assert err == "error: --address applies to --backend ray only\n"
    assert rc == 2 and not (tmp_path / "sw").exists()


def test_expansion_is_the_grid_product_times_seeds_with_deterministic_names(tmp_path):
    spec = make_spec("e5-gan-adam", TINY, GRID + ["optim.lr=1e-4,2e-4"], "0-2")
    assert [c["name"] for c in spec["cells"]] == [
        f"loss-{lo}_optim-{op}_lr-{lr}" for lo in ("bce", "wgan-gp")
        for op in ("adam", "rmsprop") for lr in ("1e-4", "2e-4")]
    assert spec["cells"][0]["overrides"] == ["loss.name=bce", "optim.name=adam",
                                             "optim.lr=1e-4"]
    assert spec["seeds"] == [0, 1, 2]
    ents = entries(tmp_path, spec)
    assert len(ents) == 8 * 3
    path, cfg = ents[-1]
    assert path == tmp_path / "runs" / "loss-wgan-gp_optim-rmsprop_lr-2e-4-s2"
    assert (cfg.loss.name, cfg.optim.name, cfg.optim.lr, cfg.seed) == (
        "wgan-gp", "rmsprop", 2e-4, 2)
    assert cfg.data.n_points == 256  # --set applies to every run
    # The same command finds the same sweep directory; another grid, another one.
    again = make_spec("e5-gan-adam", TINY, GRID + ["optim.lr=1e-4,2e-4"], "0-2")
    assert default_dir(spec, tmp_path) == default_dir(again, tmp_path)
    assert default_dir(spec, tmp_path).name.startswith("sweep-e5-gan-adam-")
    assert default_dir(make_spec("e5-gan-adam", TINY, GRID, "0-2"), tmp_path) != default_dir(
        spec, tmp_path)
    base = make_spec("e5-gan-adam", TINY, [], "0")
    assert [c["name"] for c in base["cells"]] == ["base"]
    long = expand(load_spec_base(base), parse_grid(["optim.lr=" + ",".join(
        f"0.000{i}123456789123456789123456789123456789" for i in range(1, 3))]))
    assert all(len(c.name) <= 80 for c in long) and len({c.name for c in long}) == 2


def load_spec_base(spec):
    from ganscope.config import from_dict

    return from_dict(spec["base"])


# --- running, resuming, refusing -----------------------------------------------------------------


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The 2 x 2 grid x 2 seeds, trained by the CLI with the local backend."""
    out = tmp_path_factory.mktemp("sweep") / "sw"
    assert main(sweep_args(out, *GRID)) == 0
    return out


def test_a_sweep_writes_its_spec_and_ordinary_runs(local_sweep, capsys, tmp_path):
    spec = json.loads((local_sweep / "sweep.json").read_text())
    assert spec["format"] == "ganscope-sweep-v1" and spec["seeds"] == [0, 1]
    assert spec["grid"] == [["loss.name", ["bce", "wgan-gp"]], ["optim.name", ["adam", "rmsprop"]]]
    names = sorted(p.name for p in (local_sweep / "runs").iterdir())
    assert names == sorted(f"loss-{lo}_optim-{op}-s{s}" for lo in ("bce", "wgan-gp")
                           for op in ("adam", "rmsprop") for s in (0, 1))
    for n in names:
        run = Run(local_sweep / "runs" / n)
        assert run.meta()["status"] == "completed"
        assert [r["epoch"] for r in run.read_metrics()] == [1, 2]
        assert run.meta()["execution"]["stacked"] == 2  # the two seeds of its configuration
        assert not list(run.figures.glob("*"))  # --no-plot
    cfg = Run(local_sweep / "runs" / "loss-wgan-gp_optim-rmsprop-s1").config()
    # `ganscope plot` draws later what --no-plot skipped: the curves and the 2-D animation
    run = shutil.copytree(local_sweep / "runs" / "loss-bce_optim-adam-s0", tmp_path / "r")
    rc, out, _ = run_cli(capsys, "plot", str(run))
    want = ["d_outputs.png", "losses.png", "metrics.png", "training.gif"]
    assert rc == 0 and sorted(Path(f).name for f in out.split()) == want
    assert sorted(p.name for p in (run / "figures").iterdir()) == want
    assert (cfg.loss.name, cfg.optim.name, cfg.seed) == ("wgan-gp", "rmsprop", 1)


def test_started_again_a_sweep_skips_finished_runs_and_resumes_an_interrupted_one(
        local_sweep, capsys, tmp_path):
    sw = tmp_path / "sw"
    shutil.copytree(local_sweep, sw)
    runs = {p.name: Run(p) for p in (sw / "runs").iterdir()}
    # One run interrupted after 3 of its 8 steps (as Ctrl-C does), one never started.
    victim = runs["loss-bce_optim-rmsprop-s1"]
    want = load_checkpoint(victim.last_checkpoint)
    cfg = victim.config()
    shutil.rmtree(victim.path)
    Run.create(cfg, sw / "runs", victim.name)
    # The sweep's workers train with one torch thread (experiments/runner.py); these first 3
    # steps run here, so with one thread too.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(TrainingInterrupted):
            train(victim, progress=False, should_stop=lambda step: step >= 3)
    finally:
        torch.set_num_threads(threads)
    assert victim.meta()["status"] == "interrupted"
    shutil.rmtree(runs["loss-wgan-gp_optim-adam-s0"].path)
    kept = {n: r.events_path.stat().st_mtime_ns for n, r in runs.items()
            if n not in ("loss-bce_optim-rmsprop-s1", "loss-wgan-gp_optim-adam-s0")}
    rc, out, err = run_cli(capsys, *sweep_args(sw, *GRID))
    assert rc == 0, err
    assert "8 runs; 6 completed before, 1 to resume, 1 to train (local)" in err
    assert out.splitlines()[0].startswith(f"sweep {sw}: 8 of 8 runs completed, 0 failed")
    assert {n: runs[n].events_path.stat().st_mtime_ns for n in kept} == kept
    got = load_checkpoint(victim.last_checkpoint)
    assert victim.meta()["status"] == "completed"
    # Resumed, the run's weights are those of the uninterrupted run: to float rounding, as that
    # one trained stacked with its other seed (batched kernels) and this one alone (bit for bit
    # on one path: tests/test_crash_resume.py, tests/test_stacked.py). Measured on a Xeon: 1.1e-5.
    for net in ("G", "D"):
        assert max((got[net][k] - want[net][k]).abs().max().item() for k in want[net]) < 2e-3


def test_a_different_spec_in_the_same_directory_is_refused(local_sweep, capsys):
    before = (local_sweep / "sweep.json").read_text()
    rc, _, err = run_cli(capsys, *sweep_args(local_sweep, "loss=bce,hinge"))
    assert rc == 2
    assert err == (f"error: sweep {local_sweep} was started with another spec (its grid "
                   f"differs): give another --out, or delete {local_sweep / 'sweep.json'} to "
                   "start it over\n")
    rc, _, err = run_cli(capsys, *sweep_args(local_sweep, *GRID, seeds="0-2"))
    assert rc == 2 and "was started with another spec (its seeds differ)" in err
    assert (local_sweep / "sweep.json").read_text() == before


def test_a_completed_run_with_another_config_is_never_overwritten(local_sweep, tmp_path):
    from ganscope.config import apply_overrides

    src = Run(local_sweep / "runs" / "loss-bce_optim-adam-s0")
    dst = tmp_path / "runs" / src.name
    shutil.copytree(src.path, dst)
    for change in (["optim.lr=0.001"], ["train.epochs=1"], ["train.epochs=3", "optim.lr=0.001"]):
        other = apply_overrides(src.config(), change).validate()
        with pytest.raises(Exception, match="was completed with another config"):
            plan_runs([(dst, other)])
    plan = plan_runs([(dst, src.config())])
    assert plan.kept == [str(dst)] and plan.todo == []
    assert Run(dst).config() == src.config()


def test_a_later_cap_extends_a_capped_run_and_keeps_a_converged_one(local_sweep, tmp_path):
    """Only train.epochs raised (lab2d --steps N again): a run that hit its cap resumes from its
    checkpoint to the new cap, as `train --resume --set train.epochs=N` would; a run its
    plateau rule stopped is kept as it is."""
    from ganscope.config import apply_overrides

    src = Run(local_sweep / "runs" / "loss-bce_optim-adam-s0")
    capped, converged = tmp_path / "runs" / "capped", tmp_path / "runs" / "converged"
    shutil.copytree(src.path, capped)
    shutil.copytree(src.path, converged)
    Run(converged).update_meta(stopped_early={"reason": "plateau", "epoch": 2, "step": 8,
                                              "patience": 1})
    longer = apply_overrides(src.config(), ["train.epochs=3"]).validate()
    events_before = Run(capped).read_events()
    plan = plan_runs([(capped, longer), (converged, longer)])
    assert plan.todo == [(str(capped), True)] and plan.kept == [str(converged)]
    assert Run(capped).config().train.epochs == 3  # rewritten, as resume does
    assert Run(converged).config().train.epochs == 2  # untouched
    (res,) = train_job(plan.todo, plots=False)
    assert res["status"] == "completed", res
    run = Run(capped)
    assert run.meta()["epochs_done"] == 3
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3]
    events = run.read_events()
    assert len(events) == 12 and events[:8] == events_before  # 4 G steps per epoch
    assert plan_runs([(capped, longer)]).kept == [str(capped)]  # done: kept next time


def test_ray_missing_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    rc, _, err = run_cli(capsys, *sweep_args(tmp_path / "sw", "loss=bce"), "--backend", "ray")
    assert rc == 2
    assert err == "error: the ray backend needs Ray: pip install 'ganscope[ray]'\n"
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("users", [None, "7"])
def test_a_local_ray_starts_its_workers_at_our_priority_unless_the_user_said(users,
                                                                             monkeypatch):
    seen = []
    fake = types.SimpleNamespace(init=lambda **kw: seen.append((os.environ.get(RAY_NICENESS),
                                                                kw)))
    if users is None:
        monkeypatch.delenv(RAY_NICENESS, raising=False)
    else:
        monkeypatch.setenv(RAY_NICENESS, users)
    start_local_ray(fake, num_cpus=3)
    assert seen == [(users or str(os.nice(0)), {"num_cpus": 3})]
    assert os.environ.get(RAY_NICENESS) == users  # ours was only there while Ray started


def test_ray_backend_on_a_local_instance_gives_the_local_weights(local_sweep, tmp_path,
                                                                 monkeypatch):
    import ray  # the [ray] extra is in [dev]: the Ray backend is always tested
    spec = load_spec(local_sweep)
    spec["cells"] = spec["cells"][-1:]  # one cell (WGAN-GP, RMSprop) x both seeds
    out = tmp_path / "ray-sweep"
    monkeypatch.delenv(RAY_NICENESS, raising=False)
    start_local_ray(ray, num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # Ray's own default is 15: a task then crawls beside any busy process (the other
        # xdist worker, say). The setting is the raylet's, not left in this environment.
        assert ray.get(ray.remote(lambda: os.nice(0)).remote()) == os.nice(0)
        assert RAY_NICENESS not in os.environ
        plan, results = run_sweep(out, spec, backend="ray", progress=False, plots=False)
    finally:
        ray.shutdown()
    assert sorted(r["status"] for r in results) == ["completed"] * 2
    assert [r.name for r in plan.runs] == ["loss-wgan-gp_optim-rmsprop-s0",
                                           "loss-wgan-gp_optim-rmsprop-s1"]
    for run in plan.runs:
        a = load_checkpoint(run.last_checkpoint)
        b = load_checkpoint(local_sweep / "runs" / run.name / "checkpoints" / "last.pt")
        for net in ("G", "D"):
            assert all(np.array_equal(a[net][k], b[net][k]) for k in a[net]), run.name
        assert run.read_metrics()[-1]["metrics"] == Run(
            local_sweep / "runs" / run.name).read_metrics()[-1]["metrics"]
        assert not list(run.figures.glob("*"))  # plots=False travels to the Ray task


# --- sweep spec files (--spec): named variants ---------------------------------------------------


SPEC_YAML = """\
preset: e5-gan-adam
seeds: 0-1
set: [data.n_points=256, train.epochs=2, eval.every=1, eval.n=100, train.n_samples=100]
variants:
  plain: []
  ema-sn: [tech.ema=0.9, tech.spectral_norm=d]
description: EMA and spectral norm on the 2-D GAN
"""


def write_yaml(path, text):
    path.write_text(text)
    return str(path)


def spec_cli_args(spec_file, out, *extra):
    return ["sweep", "--spec", str(spec_file), "--out", str(out), "--workers", "2",
            "--no-progress", *extra]


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


@pytest.fixture(scope="module")
def spec_sweep(tmp_path_factory):
    """2 variants x 2 seeds from a spec file, trained by the CLI with the local backend."""
    root = tmp_path_factory.mktemp("spec-sweep")
    f = write_yaml(root / "ablation.yaml", SPEC_YAML)
    out = root / "sw"
    assert main(spec_cli_args(f, out)) == 0
    return f, out


def test_a_spec_file_trains_its_variants_with_exactly_their_overrides(spec_sweep, capsys):
    from ganscope.config import apply_overrides, from_dict
    from ganscope.experiments.compare import compare_groups, sweep_groups

    f, sw = spec_sweep
    spec = json.loads((sw / "sweep.json").read_text())
    assert spec["file"] == f and spec["config"] == "e5-gan-adam"
    assert spec["description"] == "EMA and spectral norm on the 2-D GAN"
    assert spec["variants"] == [{"name": "plain", "overrides": []},
                                {"name": "ema-sn", "overrides": ["tech.ema=0.9",
                                                                 "tech.spectral_norm=d"]}]
    assert spec["cells"] == spec["variants"] and spec["grid"] == [] and spec["seeds"] == [0, 1]
    assert spec["set"] == TINY
    assert sorted(p.name for p in (sw / "runs").iterdir()) == [
        "ema-sn-s0", "ema-sn-s1", "plain-s0", "plain-s1"]
    base = from_dict(spec["base"])
    for seed in (0, 1):
        plain, ema = (Run(sw / "runs" / f"{v}-s{seed}") for v in ("plain", "ema-sn"))
        assert plain.meta()["status"] == ema.meta()["status"] == "completed"
        assert plain.config().to_dict() == apply_overrides(base, [f"seed={seed}"]).to_dict()
        a, b = flat(plain.config().to_dict()), flat(ema.config().to_dict())
        # the variant's run differs from the base run of its seed by the variant's keys alone
        assert {k: b[k] for k in a if a[k] != b[k]} == {"tech.ema": 0.9,
                                                        "tech.spectral_norm": "d"}
        assert (a["data.n_points"], a["train.epochs"], a["seed"]) == (256, 2, seed)
        for run in (plain, ema):  # without --no-plot, each run's curves and animation
            assert sorted(p.name for p in run.figures.iterdir()) == [
                "d_outputs.png", "losses.png", "metrics.png", "training.gif"], run.name
    # compare and report group a sweep's runs by cell: one configuration per variant
    _, groups = sweep_groups(sw)
    assert [(g.label, sorted(r.name for r in g.runs)) for g in groups] == [
        ("plain", ["plain-s0", "plain-s1"]), ("ema-sn", ["ema-sn-s0", "ema-sn-s1"])]
    assert [g["label"] for g in compare_groups(groups)["groups"]] == ["plain", "ema-sn"]
    rc, out, _ = run_cli(capsys, "compare", str(sw))
    assert rc == 0 and out.startswith("sw: 2 configurations, 4 runs\n")
    from ganscope.report.sweep import write_sweep_report

    html = write_sweep_report(sw).read_text()
    assert "EMA and spectral norm on the 2-D GAN" in html
    assert "no grid: the variants above, over seeds" in html
    assert "<td>ema-sn</td><td>tech.ema=0.9, tech.spectral_norm=d</td>" in html


def test_a_sweep_started_again_with_a_changed_variant_is_refused(spec_sweep, capsys, tmp_path):
    f, sw = spec_sweep
    before = (sw / "sweep.json").read_text()
    changed = write_yaml(tmp_path / "changed.yaml", SPEC_YAML.replace("tech.ema=0.9",
                                                                      "tech.ema=0.99"))
    rc, _, err = run_cli(capsys, *spec_cli_args(changed, sw))
    assert rc == 2
    assert err == (f"error: sweep {sw} was started with another spec (its variants differ): "
                   f"give another --out, or delete {sw / 'sweep.json'} to start it over\n")
    renamed = write_yaml(tmp_path / "renamed.yaml", SPEC_YAML.replace("plain:", "base:"))
    rc, _, err = run_cli(capsys, *spec_cli_args(renamed, sw))
    assert rc == 2 and "(its variants differ)" in err
    assert (sw / "sweep.json").read_text() == before
    # the description is a note, not part of what is trained: a new one is accepted (the
    # recorded one kept) and nothing is trained again
    noted = write_yaml(tmp_path / "noted.yaml", SPEC_YAML.replace("EMA and", "Only EMA and"))
    rc, _, err = run_cli(capsys, *spec_cli_args(noted, sw))
    assert rc == 0, err
    assert "4 runs; 4 completed before, 0 to resume, 0 to train (local)" in err
    assert (sw / "sweep.json").read_text() == before


def test_variants_times_a_grid_are_named_variant_then_grid(tmp_path):
    text = SPEC_YAML + "grid: {optim.lr: [1e-4, 2e-4]}\n"
    file = read_sweep_file(write_yaml(tmp_path / "s.yaml", text))
    spec = make_spec(None, [], [], None, file=file)
    assert [(c["name"], c["overrides"]) for c in spec["cells"]] == [
        ("plain_lr-1e-4", ["optim.lr=1e-4"]), ("plain_lr-2e-4", ["optim.lr=2e-4"]),
        ("ema-sn_lr-1e-4", ["tech.ema=0.9", "tech.spectral_norm=d", "optim.lr=1e-4"]),
        ("ema-sn_lr-2e-4", ["tech.ema=0.9", "tech.spectral_norm=d", "optim.lr=2e-4"])]
    path, cfg = entries(tmp_path, spec)[-1]
    assert path == tmp_path / "runs" / "ema-sn_lr-2e-4-s1"
    assert (cfg.tech.ema, cfg.tech.spectral_norm, cfg.optim.lr, cfg.seed) == (0.9, "d", 2e-4, 1)
    # a --grid joins the file's grid, after it
    spec = make_spec(None, [], ["loss=bce,hinge"], None, file=file)
    assert [c["name"] for c in spec["cells"]][:2] == ["plain_lr-1e-4_loss-bce",
                                                      "plain_lr-1e-4_loss-hinge"]
    assert len(spec["cells"]) == 8 and spec["grid"][1] == ["loss.name", ["bce", "hinge"]]
    # no variants: the grid alone, named as a --grid sweep names it
    grid_only = read_sweep_file(write_yaml(tmp_path / "g.yaml", "preset: e5-gan-adam\n"
                                           "grid: {loss: [bce, hinge], optim.lr: 1e-4}\n"))
    assert [c["name"] for c in make_spec(None, [], [], None, file=grid_only)["cells"]] == [
        "loss-bce_lr-1e-4", "loss-hinge_lr-1e-4"]
    assert make_spec(None, [], [], None, file=grid_only)["cells"] == make_spec(
        "e5-gan-adam", [], ["loss=bce,hinge", "optim.lr=1e-4"], None)["cells"]


def test_command_line_options_override_the_files(tmp_path, capsys, monkeypatch):
    import ganscope.experiments.sweep as S

    got = {}

    def fake_run_sweep(out, spec, **kw):  # no training: the spec the command built
        got.update(out=out, spec=spec)
        return types.SimpleNamespace(kept=[], resumed=[], todo=[]), []

    monkeypatch.setattr(S, "run_sweep", fake_run_sweep)
    f = write_yaml(tmp_path / "s.yaml", SPEC_YAML)

    def spec_of(*extra):
        rc, _, err = run_cli(capsys, *spec_cli_args(f, tmp_path / "sw", *extra))
        assert rc == 0, err
        return got["spec"]

    assert spec_of()["seeds"] == [0, 1]
    assert spec_of("--seeds", "5")["seeds"] == [5]
    spec = spec_of("--seeds", "0-2", "--set", "train.epochs=3", "--grid", "loss=bce,hinge")
    assert spec["seeds"] == [0, 1, 2]  # typed, the default's 0-2 beats the file's 0-1 too
    assert spec["set"] == [*TINY, "train.epochs=3"] and spec["base"]["train"]["epochs"] == 3
    assert [c["name"] for c in spec["cells"]] == ["plain_loss-bce", "plain_loss-hinge",
                                                  "ema-sn_loss-bce", "ema-sn_loss-hinge"]
    spec = spec_of("e5-wgan-adam")
    assert spec["config"] == "e5-wgan-adam" and spec["base"]["preset"] == "e5-wgan-adam"
    # without --out: RUNS_DIR/sweep-<the file's name>-<hash>
    rc, _, _ = run_cli(capsys, "sweep", "--spec", f, "--runs-dir", str(tmp_path / "runs"),
                       "--no-progress")
    assert rc == 0 and got["out"] == default_dir(got["spec"], str(tmp_path / "runs"))
    assert got["out"].name.startswith("sweep-s-") and got["out"].parent == tmp_path / "runs"


SPEC_ERRORS = [
    # (file text or None for a missing file, the error line after "error: ")
    (None, "sweep spec {f} not found: give the path of a YAML file with keys preset, seeds, "
           "set, grid, variants, description (e.g. configs/sweeps/ablation-cpu.yaml)"),
    (SPEC_YAML + "variant: {x: []}\n",
     "unknown key 'variant' in sweep spec {f}: valid keys are preset, seeds, set, grid, "
     "variants, description"),
    (SPEC_YAML.replace("set: [", "set: {").replace("100]", "100}"),
     "bad value for set in sweep spec {f}: expected a list of key=value overrides, e.g. "
     "[train.epochs=2], got {{'data.n_points=256': None, 'train.epochs=2': None, "
     "'eval.every=1': None, 'eval.n=100': None, 'train.n_samples=100': None}}"),
    (SPEC_YAML.replace("tech.ema=0.9", "tech.emma=0.9"),
     "unknown config key 'tech.emma': valid keys under 'tech' are {tech_keys} (in variant "
     "ema-sn of sweep spec {f})"),
    (SPEC_YAML.replace("tech.ema=0.9", "tech.ema=2"),
     "bad config: tech.ema must lie in (0, 1), e.g. 0.999 (0 = off) (in variant ema-sn of "
     "sweep spec {f})"),
    (SPEC_YAML.replace("tech.spectral_norm=d", "tech.augment=color,translation"),
     "bad override 'translation' in variants.ema-sn of sweep spec {f}: write it as key=value, "
     "e.g. tech.ema=0.999 (a value with commas needs quotes inside [...]: "
     "\"tech.augment=color,translation\")"),
    (SPEC_YAML.replace("plain:", "ema-sn:"),
     "sweep spec {f}: 'ema-sn' is given twice (line 6): give each key and each variant name "
     "once"),
    (SPEC_YAML.replace("plain:", "no/slash:"),
     "bad variant name 'no/slash' in sweep spec {f}: use letters, digits, '.', '_' and '-', "
     "starting with a letter or digit (at most 80); it names the runs"),
    (SPEC_YAML.replace("seeds: 0-1", "seeds: 2-1"),
     "bad seeds '2-1': the range 2-1 runs backwards (in sweep spec {f})"),
    (SPEC_YAML.replace("preset: e5-gan-adam\n", ""),
     "sweep spec {f} names no preset: add `preset: NAME` to it, or give the preset on the "
     "command line"),
    (SPEC_YAML + "grid: {optim.lr: [1e-4, 2e-4]}\n",  # with --grid optim.lr=... below
     "--grid optim.lr is also in the grid of sweep spec {f}: change its values there, or vary "
     "another key"),
]


@pytest.mark.parametrize("text,line", SPEC_ERRORS)
def test_spec_file_errors_are_one_line(capsys, tmp_path, text, line):
    from ganscope.config import TechConfig

    f = tmp_path / "spec.yaml"
    if text is not None:
        f.write_text(text)
    extra = ["--grid", "optim.lr=1e-3"] if "also in the grid" in line else []
    rc, _, err = run_cli(capsys, *spec_cli_args(f, tmp_path / "sw", *extra))
    tech_keys = ", ".join(x.name for x in dataclasses.fields(TechConfig))
    assert (rc, err) == (2, "error: " + line.format(f=f, tech_keys=tech_keys) + "\n")
    assert not (tmp_path / "sw").exists()


def test_a_sweep_without_a_preset_or_spec_is_one_line(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "sweep", "--out", str(tmp_path / "sw"))
    assert (rc, err) == (2, "error: give a preset (e.g. e1-mlp) or a YAML config, or --spec "
                            "FILE.yaml\n")


def test_grid_sweeps_keep_their_digest_and_old_specs_still_match(tmp_path):
    """A sweep.json written before spec files (no variants, file, description) is the same
    sweep, found in the same default directory."""
    import hashlib

    spec = make_spec("e5-gan-adam", TINY, GRID, "0-1")
    old = {k: v for k, v in spec.items() if k not in ("variants", "file", "description")}
    want = hashlib.sha256(json.dumps({k: old[k] for k in ("base", "grid", "seeds", "cells")},
                                     sort_keys=True).encode()).hexdigest()[:8]
    assert default_dir(spec, tmp_path).name == f"sweep-e5-gan-adam-{want}"
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(old))
    assert write_spec(tmp_path / "sw", spec) == old


SHIPPED = Path(__file__).resolve().parent.parent / "configs" / "sweeps" / "ablation-cpu.yaml"


def test_the_shipped_ablation_is_six_variants_by_three_seeds_and_no_preset(tmp_path):
    from ganscope.config import load_config, preset_names

    assert "ablation-cpu" not in preset_names() and "sweeps" not in preset_names()
    with pytest.raises(ConfigError, match="unknown preset 'ablation-cpu'"):
        load_config("ablation-cpu")
    assert "ganscope sweep --spec configs/sweeps/ablation-cpu.yaml --workers 2" in (
        SHIPPED.read_text())
    file = read_sweep_file(SHIPPED)
    assert (file.preset, file.seeds, file.set) == ("e2-dcgan-fixed", "0-2",
                                                   ("train.minutes=3", "eval.every=1"))
    ema = ["tech.ema=0.995", "tech.ema_start=100"]
    sn = [*ema, "tech.spectral_norm=d"]
    tt = [*sn, "loss.name=hinge", "optim.d.lr=4.0e-4", "optim.g.lr=1.0e-4"]
    want = [("dcgan-fixed", []), ("ema", ema), ("ema-sn", sn), ("ema-sn-ttur-hinge", tt),
            ("ema-sn-ttur-hinge-diffaug", [*tt, "tech.augment=color,translation,cutout"]),
            ("ema-sn-ttur-hinge-r1", [*tt, "tech.r1=0.1", "tech.reg_every=4"])]
    assert [(v.name, list(v.overrides)) for v in file.variants] == want
    spec = make_spec(None, [], [], None, file=file)  # checks every variant against the config
    assert [(c["name"], c["overrides"]) for c in spec["cells"]] == want
    ents = entries(tmp_path, spec)  # no data read, nothing trained
    assert len(ents) == 6 * 3
    assert [p.name for p, _ in ents[:4]] == ["dcgan-fixed-s0", "dcgan-fixed-s1",
                                             "dcgan-fixed-s2", "ema-s0"]
    cfgs = {p.name: c for p, c in ents}
    for c in cfgs.values():
        assert (c.preset, c.train.minutes, c.eval.every) == ("e2-dcgan-fixed", 3.0, 1)
    c = {n: cfgs[f"{n}-s2"] for n, _ in want}
    assert (c["dcgan-fixed"].tech.ema, c["dcgan-fixed"].tech.spectral_norm) == (0.0, "none")
    assert (c["ema-sn"].tech.ema, c["ema-sn"].tech.spectral_norm) == (0.995, "d")
    h = c["ema-sn-ttur-hinge"]
    assert (h.loss.name, h.optim.resolved("d")["lr"], h.optim.resolved("g")["lr"]) == (
        "hinge", 4e-4, 1e-4)
    assert c["ema-sn-ttur-hinge-diffaug"].tech.augment == "color,translation,cutout"
    r1 = c["ema-sn-ttur-hinge-r1"].tech
    assert (r1.r1, r1.reg_every, r1.augment) == (0.1, 4, "")
    assert default_dir(spec, tmp_path).name.startswith("sweep-ablation-cpu-")


def test_the_shipped_best_cpu_benchmark_trains_exactly_the_preset_against_e2_dcgan_fixed(
        tmp_path):
    from ganscope.config import load_config

    path = SHIPPED.parent / "best-cpu.yaml"
    assert "ganscope sweep --spec configs/sweeps/best-cpu.yaml --workers 2" in path.read_text()
    file = read_sweep_file(path)
    spec = make_spec(None, [], [], None, file=file)
    ents = entries(tmp_path, spec)
    assert [p.name for p, _ in ents] == [f"{v}-s{s}" for v in ("e2-dcgan-fixed", "best-cpu")
                                         for s in range(3)]
    cfgs = {p.name: c for p, c in ents}
    for name, c in cfgs.items():  # the same budget, evaluated once at the end
        assert (c.train.minutes, c.train.epochs, c.eval.every) == (15.0, 100, 1000), name
    base = load_config("e2-dcgan-fixed").to_dict()
    got = cfgs["e2-dcgan-fixed-s1"].to_dict()
    assert {k: v for k, v in got.items() if k not in ("train", "eval", "seed")} == \
        {k: v for k, v in base.items() if k not in ("train", "eval", "seed")}
    # the benchmark's best-cpu is the preset: every field but the name and the evaluation
    preset = load_config("best-cpu").to_dict()
    bench = cfgs["best-cpu-s0"].to_dict()
    assert {k: v for k, v in bench.items() if k not in ("preset", "eval")} == \
        {k: v for k, v in preset.items() if k not in ("preset", "eval")}


def test_the_shipped_faces_benchmark_trains_e6_faces_against_its_half_widths(tmp_path):
    from ganscope.config import load_config

    path = SHIPPED.parent / "faces-cpu.yaml"
    assert "ganscope sweep --spec configs/sweeps/faces-cpu.yaml --workers 2" in path.read_text()
    spec = make_spec(None, [], [], None, file=read_sweep_file(path))
    cfgs = {p.name: c for p, c in entries(tmp_path, spec)}
    assert sorted(cfgs) == ["e6-faces-half-s0", "e6-faces-s0"]
    for c in cfgs.values():  # the same budget, scored once at the end against the train faces
        assert (c.train.minutes, c.eval.every, c.eval.reference) == (25.0, 1000, "train")
    base, half = cfgs["e6-faces-s0"], cfgs["e6-faces-half-s0"]
    preset = load_config("e6-faces")
    assert (base.model, base.optim, base.train.epochs) == (preset.model, preset.optim, 30)
    assert (half.model.g_hidden, half.model.d_hidden) == ((128, 64, 32), (32, 64, 128))
    assert (half.optim.lr, half.train.epochs, half.data) == (5e-4, 100, preset.data)
