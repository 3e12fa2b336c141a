"""`ganscope sweep`: grid x seeds expansion, run names, one-line errors, resume, the spec check,
and the Ray backend on a local Ray instance (same results as the local pool)."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch

from ganscope.cli import main
from ganscope.errors import ConfigError, TrainingInterrupted
from ganscope.experiments.runner import plan_runs
from ganscope.experiments.sweep import (
    default_dir,
    entries,
    expand,
    load_spec,
    make_spec,
    parse_grid,
    parse_seeds,
    run_sweep,
    split_values,
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
    args = ["sweep", "e5-gan-adam", "--seeds", seeds, "--out", str(out), "--workers", "2",
            "--no-progress"]
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


GRID_ERRORS = [
    ("lose=bce", "unknown config key 'lose' in --grid lose=bce: valid keys at the top level "
                 "are preset, seed, data, model, loss, optim, train, eval, log"),
    ("train.epoch=1,2", "unknown config key 'train.epoch' in --grid train.epoch=1,2: valid "
                        "keys under 'train' are epochs, batch_size, n_critic, shuffle, "
                        "drop_last, device, precision, compile, channels_last, threads, "
                        "sample_every, n_samples, save_generators"),
    ("train=1", "--grid train=1: 'train' is a section; give one of its keys (epochs, "
                "batch_size, n_critic, shuffle, drop_last, device, precision, compile, "
                "channels_last, threads, sample_every, n_samples, save_generators)"),
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


def test_a_sweep_writes_its_spec_and_ordinary_runs(local_sweep, capsys):
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
        assert (run.figures / "losses.png").is_file()
    cfg = Run(local_sweep / "runs" / "loss-wgan-gp_optim-rmsprop-s1").config()
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
    # steps run here, so with one thread too: then the resumed run follows the very code path
    # of the uninterrupted one and its weights can be compared bit for bit below.
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
    # Resumed, the run's weights are those of the uninterrupted run.
    assert all(np.array_equal(got["G"][k], want["G"][k]) for k in want["G"])
    assert all(np.array_equal(got["D"][k], want["D"][k]) for k in want["D"])


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
    other = apply_overrides(src.config(), ["train.epochs=3"]).validate()
    dst = tmp_path / "runs" / src.name
    shutil.copytree(src.path, dst)
    with pytest.raises(Exception, match="was completed with another config"):
        plan_runs([(dst, other)])
    plan = plan_runs([(dst, src.config())])
    assert plan.kept == [str(dst)] and plan.todo == []


def test_ray_missing_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    rc, _, err = run_cli(capsys, *sweep_args(tmp_path / "sw", "loss=bce"), "--backend", "ray")
    assert rc == 2
    assert err == "error: the ray backend needs Ray: pip install 'ganscope[ray]'\n"
    assert not (tmp_path / "sw").exists()


def test_ray_backend_on_a_local_instance_gives_the_local_weights(local_sweep, tmp_path):
    import ray  # the [ray] extra is in [dev]: the Ray backend is always tested
    spec = load_spec(local_sweep)
    spec["cells"] = spec["cells"][-1:]  # one cell (WGAN-GP, RMSprop) x both seeds
    out = tmp_path / "ray-sweep"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        plan, results = run_sweep(out, spec, backend="ray", progress=False)
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
