"""The CLI: commands end to end on tiny data in the real format, exact error lines, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganscope.cli import main
from ganscope.data import to_uint8
from ganscope.data.fashion_mnist import write_idx_gz
from ganscope.sampling import latents_from_seed
from ganscope.training.run import Run, load_generator


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(0)
    for split, n in (("train", 320), ("t10k", 64)):
        write_idx_gz(d / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx_gz(d / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return d


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """One tiny E1 run shared by the read-only command tests."""
    runs = tmp_path_factory.mktemp("runs")
    rc = main(["train", "e1-mlp", "--runs-dir", str(runs), "--data-dir", str(data_dir),
               "--name", "tiny", "--seed", "1", "--set", "train.epochs=2",
               "--set", "train.batch_size=32", "--no-progress"])
    assert rc == 0
    return runs, Run(runs / "tiny")


def run_cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_writes_the_run_and_prints_where(capsys, tmp_path, data_dir):
    rc, out, err = run_cli(capsys, "train", "e1-mlp", "--runs-dir", str(tmp_path), "--data-dir",
                           str(data_dir), "--name", "r1", "--set", "train.epochs=1",
                           "--set", "optim.lr=1e-4", "--seed", "3", "--no-progress")
    assert rc == 0, err
    run = Run(tmp_path / "r1")
    cfg = run.config()
    assert cfg.seed == 3 and cfg.optim.lr == 1e-4 and cfg.train.epochs == 1
    assert cfg.preset == "e1-mlp" and cfg.data.dir == str(data_dir)
    assert f"run:      {run.path}" in out
    assert "figures/losses.png" in out and "figures/d_outputs.png" in out
    assert (run.figures / "losses.png").is_file() and (run.figures / "d_outputs.png").is_file()
    assert run.meta()["status"] == "completed"


def test_train_from_yaml_path(capsys, tmp_path, data_dir):
    y = tmp_path / "my.yaml"
    y.write_text("model: {name: tiny-cnn}\ntrain: {epochs: 1, batch_size: 64}\n")
    rc, out, err = run_cli(capsys, "train", str(y), "--runs-dir", str(tmp_path / "runs"),
                           "--data-dir", str(data_dir), "--name", "y", "--no-progress",
                           "--no-plot")
    assert rc == 0, err
    cfg = Run(tmp_path / "runs" / "y").config()
    assert cfg.preset == "my" and cfg.model.name == "tiny-cnn"


def test_runs_lists_name_preset_epochs_status_losses(capsys, trained):
    runs, run = trained
    rc, out, _ = run_cli(capsys, "runs", "--runs-dir", str(runs))
    assert rc == 0
    head, row = out.splitlines()[:2]
    assert head.split() == ["NAME", "PRESET", "EPOCHS", "STATUS", "LOSS_D", "LOSS_G",
                            "BEST_FID", "FLAGS"]
    last = run.read_events()[-1]
    assert row.split() == ["tiny", "e1-mlp", "2/2", "completed", f"{last['loss_d']:.4f}",
                           f"{last['loss_g']:.4f}", "-", "-"]
    rc, out, _ = run_cli(capsys, "runs", "--runs-dir", str(runs), "--json")
    assert json.loads(out)[0]["epochs_done"] == 2


def test_runs_dir_from_environment(capsys, trained, monkeypatch):
    runs, _ = trained
    monkeypatch.setenv("GANSCOPE_RUNS", str(runs))
    rc, out, _ = run_cli(capsys, "runs")
    assert rc == 0 and "tiny" in out
    rc, out, _ = run_cli(capsys, "generate", "tiny", "-n", "2", "--out",
                         str(runs.parent / "env.png"))
    assert rc == 0


def test_generate_e3_uses_the_seeds_exact_z(capsys, trained, tmp_path):
    runs, run = trained
    out_npy = tmp_path / "e3.npy"
    rc, _, err = run_cli(capsys, "generate", "tiny", "--runs-dir", str(runs), "--seed", "23231",
                         "-n", "8", "--out", str(out_npy))
    assert rc == 0, err
    torch.manual_seed(23231)
    z = torch.randn(8, 100)  # exactly the seed's code
    assert torch.equal(z, latents_from_seed(23231, 8))
    G = load_generator(run)
    with torch.no_grad():
        expect = ((G(z).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0].numpy()
    got = np.load(out_npy)
    assert got.dtype == np.uint8 and got.shape == (8, 28, 28)
    assert np.array_equal(got, expect)
    # The PNG grid holds the same pixels: 8 tiles in one row, scale 1, 2-pixel padding.
    png = tmp_path / "e3.png"
    assert main(["generate", "tiny", "--runs-dir", str(runs), "--seed", "23231", "-n", "8",
                 "--out", str(png), "--scale", "1"]) == 0
    grid = np.asarray(Image.open(png))
    assert grid.shape == (2 + 30, 2 + 8 * 30)
    for i in range(8):
        assert np.array_equal(grid[2:30, 2 + 30 * i: 30 + 30 * i], expect[i])


def test_generate_from_a_chosen_z_file(capsys, trained, tmp_path):
    runs, run = trained
    z = np.zeros((3, 100), dtype=np.float32)
    z[1, 20] = 5.0
    np.save(tmp_path / "z.npy", z)
    rc, _, err = run_cli(capsys, "generate", str(run.path), "--z", str(tmp_path / "z.npy"),
                         "--out", str(tmp_path / "o.npy"))
    assert rc == 0, err
    imgs = np.load(tmp_path / "o.npy")
    assert imgs.shape == (3, 28, 28) and imgs.dtype == np.uint8
    # The saved images are G(z) for exactly the given z: the run's generator, loaded from its
    # checkpoint, on the same 3 latents in one batch (the CLI's code path, so equal bytes).
    G = load_generator(run)
    with torch.no_grad():
        expect = to_uint8(G(torch.from_numpy(z)))[:, 0].numpy()
    assert np.array_equal(imgs, expect)
    # rows 0 and 2 are the same z (zeros), row 1 differs in one dim
    assert np.array_equal(imgs[0], imgs[2]) and not np.array_equal(imgs[0], imgs[1])


def test_generate_many_for_evaluation(capsys, trained, tmp_path):
    runs, _ = trained
    rc, _, _ = run_cli(capsys, "generate", "tiny", "--runs-dir", str(runs), "-n", "2500",
                       "--out", str(tmp_path / "s.npy"))
    a = np.load(tmp_path / "s.npy")
    assert rc == 0 and a.shape == (2500, 28, 28) and a.dtype == np.uint8


def test_generate_by_epoch(capsys, trained, tmp_path):
    runs, _ = trained
    a, b = tmp_path / "1.npy", tmp_path / "2.npy"
    assert main(["generate", "tiny", "--runs-dir", str(runs), "--epoch", "1", "--out", str(a)]) == 0
    assert main(["generate", "tiny", "--runs-dir", str(runs), "--epoch", "2", "--out", str(b)]) == 0
    assert not np.array_equal(np.load(a), np.load(b))
    rc, _, err = run_cli(capsys, "generate", "tiny", "--runs-dir", str(runs), "--epoch", "9",
                         "--out", str(a))
    assert rc == 2
    assert err == "error: run 'tiny' has no generator for epoch 9: available 1, 2\n"


def test_plot_command(capsys, trained):
    runs, run = trained
    rc, out, _ = run_cli(capsys, "plot", "tiny", "--runs-dir", str(runs))
    assert rc == 0
    assert out.split() == [str(run.figures / "losses.png"), str(run.figures / "d_outputs.png")]


def test_models_and_show_model(capsys):
    rc, out, _ = run_cli(capsys, "models")
    assert rc == 0
    assert [line.split()[0] for line in out.splitlines()] == [
        "cnn", "dcgan", "dcgan32", "dcgan64", "mlp", "mlp2d", "sngan-resnet28", "sngan-resnet32",
        "tiny-cnn"]
    rc, out, _ = run_cli(capsys, "show-model", "mlp")
    assert out == (
        "Generator(\n"
        "  (fc1): Linear(in_features=100, out_features=128, bias=True)\n"
        "  (nonlin1): LeakyReLU(negative_slope=0.2)\n"
        "  (fc2): Linear(in_features=128, out_features=784, bias=True)\n"
        ")\n"
        "Discriminator(\n"
        "  (fc1): Linear(in_features=784, out_features=128, bias=True)\n"
        "  (nonlin1): LeakyReLU(negative_slope=0.2)\n"
        "  (fc2): Linear(in_features=128, out_features=1, bias=True)\n"
        ")\n"
    )
    _, out, _ = run_cli(capsys, "show-model", "dcgan", "--loss", "wgan")
    assert "Sigmoid" not in out
    _, out, _ = run_cli(capsys, "show-model", "dcgan")
    assert "(6): Sigmoid()" in out


def test_resume_through_the_cli(capsys, tmp_path, data_dir, monkeypatch):
    import ganscope.training.loop as loop

    real_train = loop.train

    def stop_at_5(run, **kw):
        return real_train(run, should_stop=lambda s: s == 5, **kw)

    monkeypatch.setattr(loop, "train", stop_at_5)
    args = ["train", "e1-mlp", "--runs-dir", str(tmp_path), "--data-dir", str(data_dir),
            "--name", "r", "--set", "train.epochs=2", "--no-progress", "--no-plot"]
    rc, _, err = run_cli(capsys, *args)
    assert rc == 130
    assert err.strip().endswith(
        f"interrupted: checkpoint saved in {tmp_path / 'r'}; continue with "
        f"`ganscope train --resume {tmp_path / 'r'}`")
    monkeypatch.setattr(loop, "train", real_train)
    rc, out, err = run_cli(capsys, "train", "--resume", "r", "--runs-dir", str(tmp_path),
                           "--no-progress", "--no-plot")
    assert rc == 0, err
    assert Run(tmp_path / "r").meta()["epochs_done"] == 2
    assert len(Run(tmp_path / "r").read_events()) == 10  # 320 / 64 = 5 steps x 2 epochs
    # Extending a finished run: only train.epochs may change.
    rc, _, err = run_cli(capsys, "train", "--resume", "r", "--runs-dir", str(tmp_path),
                         "--set", "optim.lr=1", "--no-progress")
    assert rc == 2
    assert err == ("error: only train.epochs, train.minutes and how to run (device, precision, "
                   "compile, threads, channels_last, log.sinks) can change when resuming (got "
                   "--set optim.lr=1): "
                   "start a new run for other changes\n")
    rc, _, err = run_cli(capsys, "train", "--resume", "r", "--runs-dir", str(tmp_path),
                         "--set", "train.epochs=3", "--no-progress", "--no-plot")
    assert rc == 0, err
    assert Run(tmp_path / "r").meta()["epochs_done"] == 3


ERROR_CASES = [
    (["train", "nope"],
     "error: unknown preset 'nope': choose one of best-cpu, cond-cpu, e1-mlp, e2-cnn, e2-dcgan, "
     "e2-dcgan-fixed, e2-tiny-cnn, e5-gan-adam, e5-gan-rmsprop, e5-wgan-adam, e5-wgan-gp-adam, "
     "e5-wgan-gp-rmsprop, e5-wgan-rmsprop, e6-faces, e6-faces-gpu, faces-cpu, fast-mlp, "
     "infogan-fmnist, "
     "or give a path to a YAML config"),
    (["train", "e1-mlp", "--set", "train.epoch=3"],
     "error: unknown config key 'train.epoch' in --set train.epoch=3: valid keys under 'train' "
     "are epochs, minutes, batch_size, n_critic, shuffle, drop_last, device, precision, compile, "
     "channels_last, threads, flush_denormals, sample_every, n_samples, save_generators"),
    (["train", "e1-mlp", "--set", "train.epochs=ten"],
     "error: bad value for train.epochs: expected an integer, got 'ten' (in --set "
     "train.epochs=ten)"),
    (["train", "e1-mlp", "--set", "model.name=resnet"],
     "error: unknown model 'resnet': choose one of cnn, dcgan, dcgan32, dcgan64, mlp, mlp2d, "
     "sngan-resnet28, sngan-resnet32, tiny-cnn"),
    (["train", "e1-mlp", "--set", "loss.name=ns"],
     "error: unknown loss 'ns': choose one of bce, hinge, lsgan, minimax, wgan, wgan-gp"),
    (["train", "e1-mlp", "--set", "optim.d.name=adamw"],
     "error: unknown optimizer 'adamw': choose one of adam, rmsprop, sgd"),
    (["train", "e1-mlp", "--set", "train.epochs=0"],
     "error: bad config: train.epochs must be at least 1"),
    (["generate", "ghost", "--out", "x.png"],
     "error: no run named 'ghost' in {runs}: see `ganscope runs` for the list, or give the "
     "run's path (or --runs-dir)"),
    (["plot", "ghost"],
     "error: no run named 'ghost' in {runs}: see `ganscope runs` for the list, or give the "
     "run's path (or --runs-dir)"),
    (["train", "--resume", "ghost"],
     "error: no run named 'ghost' in {runs}: see `ganscope runs` for the list, or give the "
     "run's path (or --runs-dir)"),
    (["show-model", "vae"],
     "error: unknown model 'vae': choose one of cnn, dcgan, dcgan32, dcgan64, mlp, mlp2d, "
     "sngan-resnet28, sngan-resnet32, tiny-cnn"),
    (["train"],
     "error: give a preset name or a YAML config (see `ganscope presets`)"),
    (["frobnicate"],
     "error: unknown command 'frobnicate': choose one of train, runs, plot, generate, eval, "
     "compare, metrics, lab2d, models, show-model, presets, config, completion, latent, "
     "directions, serve, sweep, report, lab, export"),
]


@pytest.mark.parametrize("args,line", ERROR_CASES)
def test_expected_failures_are_one_line_exit_2(capsys, tmp_path, args, line):
    runs = tmp_path / "runs"
    rc, out, err = run_cli(capsys, *args, *(["--runs-dir", str(runs)] if args[0] != "show-model"
                                            and args[0] != "frobnicate" else []))
    assert rc == 2
    assert err == line.format(runs=runs) + "\n"
    assert not runs.exists() or not any(runs.iterdir())  # nothing half-made


def test_missing_data_leaves_no_run_behind(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = run_cli(capsys, "train", "e1-mlp", "--runs-dir", str(tmp_path / "runs"),
                         "--data-dir", str(empty))
    assert rc == 2
    assert err == (f"error: Fashion-MNIST train files missing in {empty}: "
                   "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz; put the original .gz "
                   "files there or drop --data-dir to search the usual places\n")
    assert not (tmp_path / "runs").exists()


def test_existing_run_name_is_refused(capsys, trained, data_dir):
    runs, _ = trained
    rc, _, err = run_cli(capsys, "train", "e1-mlp", "--runs-dir", str(runs), "--data-dir",
                         str(data_dir), "--name", "tiny")
    assert rc == 2
    assert err == (f"error: run 'tiny' already exists in {runs}: pick another --name, or "
                   "continue it with `ganscope train --resume tiny`\n")


def test_corrupt_generator_checkpoint(capsys, trained, tmp_path):
    import shutil

    runs, run = trained
    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy)
    (copy / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    rc, _, err = run_cli(capsys, "generate", str(copy), "--out", str(tmp_path / "x.png"))
    assert rc == 2
    assert err.startswith(f"error: corrupt checkpoint {copy / 'checkpoints' / 'last.pt'} (")
    assert err.count("\n") == 1


def test_bad_latent_file(capsys, trained, tmp_path):
    runs, _ = trained
    np.save(tmp_path / "z.npy", np.zeros((2, 7)))
    rc, _, err = run_cli(capsys, "generate", "tiny", "--runs-dir", str(runs), "--z",
                         str(tmp_path / "z.npy"), "--out", str(tmp_path / "x.png"))
    assert rc == 2
    assert err == (f"error: latent file {tmp_path / 'z.npy'} has shape (2, 7), expected (N, 100) "
                   "for this run's model\n")
    bad = np.full((1, 100), np.nan)
    np.save(tmp_path / "n.npy", bad)
    rc, _, err = run_cli(capsys, "generate", "tiny", "--runs-dir", str(runs), "--z",
                         str(tmp_path / "n.npy"), "--out", str(tmp_path / "x.png"))
    assert err == (f"error: latent file {tmp_path / 'n.npy'} holds non-finite or non-numeric "
                   "values: fix the file\n")


def test_console_script_has_no_traceback_on_errors(tmp_path):
    """The installed entry point, in a real process: one line on stderr, exit code 2."""
    p = subprocess.run([sys.executable, "-m", "ganscope", "train", "e1-mlp", "--set", "x=1",
                        "--runs-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr == ("error: unknown config key 'x' in --set x=1: valid keys at the top level "
                        "are preset, seed, data, model, loss, optim, train, eval, tech, log\n")
    assert p.stdout == ""


def test_unknown_output_type_is_refused_before_any_work(capsys, tmp_path):
    # No run exists: the output check comes first, so the line names the output, not the run.
    rc, _, err = run_cli(capsys, "generate", "ghost", "--runs-dir", str(tmp_path), "-n", "10000",
                         "--out", str(tmp_path / "grid.jpg"))
    assert rc == 2
    assert err == (f"error: unknown output type .jpg for {tmp_path / 'grid.jpg'}: use .png "
                   "(a grid) or .npy (raw uint8 images)\n")
    assert not (tmp_path / "grid.jpg").exists()


# --- eval / compare / metrics -----------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, data_dir):
    """Two tiny runs; the first evaluated at every epoch by `ganscope eval`."""
    runs = tmp_path_factory.mktemp("eval-runs")
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("GANSCOPE_CACHE", str(cache))
    try:
        for name, seed in (("a", 1), ("b", 2)):
            assert main(["train", "e1-mlp", "--runs-dir", str(runs), "--data-dir", str(data_dir),
                         "--name", name, "--seed", str(seed), "--set", "train.epochs=2",
                         "--set", "train.batch_size=32", "--no-progress", "--no-plot"]) == 0
    finally:
        mp.undo()
    return runs


def test_eval_prints_a_table_and_appends_records(capsys, evaluated):
    runs = evaluated
    rc, out, err = run_cli(capsys, "eval", "a", "--runs-dir", str(runs), "--checkpoint", "all",
                           "-n", "64")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["EPOCH", "FID", "KID", "PREC", "RECALL", "DENSITY", "COVER",
                                "CLASSES", "CLASS_KL", "CONF"]
    recs = Run(runs / "a").read_metrics()
    assert [r["epoch"] for r in recs] == [1, 2]
    for line, r in zip(lines[1:3], recs):
        cells = line.split()
        assert cells[0] == str(r["epoch"]) and cells[1] == f"{r['metrics']['fid']:.2f}"
        assert cells[7] == str(r["metrics"]["classes_covered"])
    assert lines[3].startswith("extractor fmnist-cnn-v1 (sha256 ")
    assert lines[3].endswith("reference fashion-mnist test (64 images), 64 generated, seed 0")
    best = Run(runs / "a").meta()["best"]
    assert lines[4] == (f"saved to {runs / 'a' / 'metrics.jsonl'}; best FID {best['fid']:.2f} "
                        f"at epoch {best['epoch']}")
    # --json is the same records, machine-readable; --no-save leaves the file alone.
    rc, out, _ = run_cli(capsys, "eval", "a", "--runs-dir", str(runs), "-n", "64", "--json",
                         "--no-save")
    assert json.loads(out)[0]["metrics"] == recs[1]["metrics"]
    assert len(Run(runs / "a").read_metrics()) == 2
    # The metrics figure comes with `plot` once a run has metrics.
    rc, out, _ = run_cli(capsys, "plot", "a", "--runs-dir", str(runs))
    assert rc == 0 and out.splitlines()[-1].endswith("figures/metrics.png")


def test_eval_images_scores_any_image_set(capsys, tmp_path, data_dir):
    imgs = np.random.default_rng(3).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "x.npy", imgs)
    rc, out, err = run_cli(capsys, "eval", "--images", str(tmp_path / "x.npy"), "--data-dir",
                           str(data_dir), "--json", "--metrics", "fid,classes")
    assert rc == 0, err
    rec = json.loads(out)[0]
    assert rec["images"] == str(tmp_path / "x.npy") and rec["n_fake"] == 40
    assert set(rec["metrics"]) == {"fid", "class_hist", "classes_covered", "class_kl",
                                   "confidence"}
    rc, out, _ = run_cli(capsys, "eval", "--images", str(tmp_path / "x.npy"), "--data-dir",
                         str(data_dir), "-n", "20", "--metrics", "fid")
    assert out.splitlines()[0].split() == ["IMAGES", "FID"]
    assert "20 generated" in out


def test_compare_one_table_for_several_runs(capsys, evaluated):
    runs = evaluated
    assert main(["eval", "a", "--runs-dir", str(runs), "-n", "64", "--no-save"]) == 0
    capsys.readouterr()
    rc, out, err = run_cli(capsys, "compare", "a", "b", "--runs-dir", str(runs))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["RUN", "PRESET", "EPOCH", "FID"]
    assert lines[0].split()[-2:] == ["BEST_FID@EP", "FLAGS"]
    last = max(Run(runs / "a").read_metrics(), key=lambda r: r["epoch"])
    assert lines[1].split()[:4] == ["a", "e1-mlp", str(last["epoch"]),
                                    f"{last['metrics']['fid']:.2f}"]
    assert lines[2].split()[:4] == ["b", "e1-mlp", "-", "-"]
    assert lines[-1] == "note: run 'b' has no metrics yet: `ganscope eval b`"
    rc, out, _ = run_cli(capsys, "compare", "a", "b", "--runs-dir", str(runs), "--json")
    got = json.loads(out)
    assert [g["run"] for g in got] == ["a", "b"] and got[1]["last"] is None


def test_metrics_command_lists_names_and_extractor(capsys):
    rc, out, _ = run_cli(capsys, "metrics", "--json")
    info = json.loads(out)
    assert info["metrics"] == ["class_match", "classes", "fid", "intra_fid", "kid", "prdc"]
    assert info["extractor"] == "fmnist-cnn-v1" and len(info["sha256"]) == 64
    rc, out, _ = run_cli(capsys, "metrics")
    lines = out.splitlines()
    # every metric says what it is in one line (a registered function without a docstring
    # printed its name alone)
    assert [ln.split()[0] for ln in lines[:-1]] == info["metrics"]
    assert all(len(ln.split()) >= 4 for ln in lines[:-1]), lines
    assert lines[-1] == f"features: fmnist-cnn-v1 (sha256 {info['sha256'][:12]})"


EVAL_ERRORS = [
    (["eval"], "error: give a run to evaluate, or --images FILE.npy|DIR, but not both"),
    (["eval", "nope"], "error: no run named 'nope' in {runs}: see `ganscope runs` for the list, or give "
     "the run's path (or --runs-dir)"),
    (["eval", "--images", "x.npy", "--no-save"],
     "error: --checkpoint, --no-save and --no-ema apply to runs, not to --images"),
    (["eval", "--images", "/nonexistent/x.npy"],
     "error: image set /nonexistent/x.npy not found: give a .npy file or a folder of PNG images"),
    (["eval", "--images", "/nonexistent/x.npy", "-n", "3"], "error: -n must be at least 10"),
    (["eval", "--images", "/nonexistent/x.npy", "--metrics", "fid,isc"],
     "error: unknown metric 'isc': choose one of class_match, classes, fid, intra_fid, kid, "
     "prdc"),
    (["compare", "ghost"], "error: no run named 'ghost' in {runs}: see `ganscope runs` for the list, or give "
     "the run's path (or --runs-dir)"),
]


@pytest.mark.parametrize("args,line", EVAL_ERRORS)
def test_eval_errors_are_one_line_exit_2(capsys, tmp_path, args, line):
    runs = tmp_path / "runs"
    runs.mkdir()
    rc, out, err = run_cli(capsys, *args, "--runs-dir", str(runs))
    assert (rc, out) == (2, "")
    assert err == line.format(runs=runs) + "\n"
