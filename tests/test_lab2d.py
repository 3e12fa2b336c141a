"""The 2-D lab through the one loop: point data, per-epoch snapshots and metrics, the matrix."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ganscope.cli import main
from ganscope.config import RunConfig, apply_overrides
from ganscope.errors import ConfigError
from ganscope.lab2d.matrix import Cell, cell_config, summarize
from ganscope.training.loop import train
from ganscope.training.run import Run, load_checkpoint

SMALL = ["data.n_points=512", "eval.n=300", "train.batch_size=64"]


def run_cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_literature_and_same_settings_per_cell():
    c = cell_config("ring8", Cell("wgan", "rmsprop"), 3, 1000)
    assert (c.loss.name, c.optim.name, c.optim.lr, c.loss.clip, c.train.n_critic) == (
        "wgan", "rmsprop", 5e-5, 0.01, 5)
    gp = cell_config("ring8", Cell("wgan-gp", "adam"), 0, 1000)
    assert (gp.optim.lr, gp.optim.betas, gp.train.n_critic, gp.loss.gp_lambda) == (
        1e-4, (0.5, 0.9), 5, 0.1)  # the WGAN-GP toy script's lambda, not the image-data 10
    gan = cell_config("ring8", Cell("gan", "adam"), 0, 1000)
    assert (gan.loss.name, gan.train.n_critic, gan.model.name, gan.model.z_dim) == (
        "bce", 1, "mlp2d", 2)
    assert (gan.optim.lr, gan.optim.betas) == (2e-4, (0.5, 0.999))  # DCGAN's Adam
    # Length is in generator steps: 20000 points / 64 = 313 batches -> 313 G steps per epoch for
    # a GAN, 62 with n_critic 5; epochs round up.
    assert gan.train.epochs == 4 and c.train.epochs == 17
    assert c.seed == 3 and c.preset == "lab2d-wgan-rmsprop"
    for cell in (Cell("gan", "rmsprop"), Cell("wgan-gp", "adam")):
        same = cell_config("ring8", cell, 0, 1000, setup="same")
        assert (same.optim.lr, same.train.n_critic, same.loss.gp_lambda) == (1e-4, 1, 10.0)
    with pytest.raises(ConfigError, match="unknown setup"):
        cell_config("ring8", Cell("gan", "adam"), 0, 10, setup="best")


def test_a_point_run_trains_snapshots_and_scores(tmp_path):
    cfg = apply_overrides(RunConfig(), [
        "data.name=ring8", "model.name=mlp2d", "model.z_dim=2", "loss.name=wgan-gp",
        "train.n_critic=2", "train.epochs=4", "train.n_samples=200", "train.sample_every=2",
        "eval.every=2", "train.save_generators=false", *SMALL]).validate()
    run = train(Run.create(cfg, tmp_path / "runs", "p"), progress=False)
    assert run.meta()["data"]["spec"].startswith("ring8:")
    assert len(run.read_events()) == 4 * (8 // 2)
    snaps = sorted(p.name for p in run.samples.glob("*.png"))
    assert snaps == ["epoch-0002.png", "epoch-0004.png"]
    assert Image.open(run.samples / snaps[0]).size[0] > 300
    recs = run.read_metrics()
    assert [r["epoch"] for r in recs] == [2, 4]
    m = recs[-1]["metrics"]
    assert m["n_modes"] == 8 and 0 <= m["hq_fraction"] <= 1 and 0 <= m["modes_covered"] <= 8
    assert m["sliced_wasserstein"] > 0 and recs[-1]["n_fake"] == 300
    # Same seed, same weights (the points are drawn from the run's seed too).
    again = train(Run.create(cfg, tmp_path / "runs", "q"), progress=False)
    a, b = load_checkpoint(run.last_checkpoint), load_checkpoint(again.last_checkpoint)
    assert all(np.array_equal(a["G"][k], b["G"][k]) for k in a["G"])
    from ganscope.viz.curves import plot_run

    assert [p.name for p in plot_run(run)] == ["losses.png", "d_outputs.png", "metrics.png"]


def test_user_point_file_through_the_cli(capsys, tmp_path):
    pts = np.random.default_rng(0).normal(size=(300, 2))
    f = tmp_path / "pts.csv"
    f.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in pts))
    y = tmp_path / "c.yaml"
    y.write_text(f"data: {{name: 'points:{f}'}}\nmodel: {{name: mlp2d, z_dim: 2}}\n"
                 "train: {epochs: 2, batch_size: 50, n_samples: 100, save_generators: false}\n"
                 "eval: {every: 1, n: 200}\n")
    rc, out, err = run_cli(capsys, "train", str(y), "--runs-dir", str(tmp_path / "runs"),
                           "--name", "u", "--no-progress")
    assert rc == 0, err
    run = Run(tmp_path / "runs" / "u")
    assert "figures/training.gif" in out and Image.open(run.figures / "training.gif").n_frames == 2
    rec = run.read_metrics()[-1]
    m = rec["metrics"]
    # one Gaussian blob: BIC finds one mode in the file's points
    assert m["n_modes"] == 1 and 0 <= m["hq_fraction"] <= 1 and m["energy_distance"] >= 0
    assert rec["reference"]["modes"].startswith("found")
    assert run.meta()["data"]["n"] == 300
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n" * 40)
    y.write_text(f"data: {{name: 'points:{bad}'}}\nmodel: {{name: mlp2d, z_dim: 2}}\n")
    rc, out, err = run_cli(capsys, "train", str(y), "--runs-dir", str(tmp_path / "runs"),
                           "--name", "b", "--no-progress")
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "3 columns" in err
    assert not (tmp_path / "runs" / "b").exists()


def test_unknown_dataset_lists_the_choices(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "train", "e1-mlp", "--set", "data.name=ring9",
                         "--runs-dir", str(tmp_path))
    assert rc == 2
    assert err == ("error: unknown dataset 'ring9': choose one of celeba, fashion-mnist, folder, a point set "
                   "(circles, grid25, moons, ring8, spiral, swissroll) or points:FILE\n")


@pytest.mark.slow
def test_lab2d_matrix_end_to_end_and_resume(capsys, tmp_path):
    out = tmp_path / "lab"
    args = ["lab2d", "--losses", "gan,wgan-gp", "--optims", "rmsprop", "--seeds", "0-1",
            "--steps", "16", "--out", str(out), "--workers", "2", *sum(
                (["--set", s] for s in SMALL), [])]
    rc, stdout, err = run_cli(capsys, *args)
    assert rc == 0, err
    lines = stdout.splitlines()
    assert lines[0].split()[:2] == ["cell", "seeds"]
    assert [ln.split()[0] for ln in lines[1:3]] == ["gan-rmsprop", "wgan-gp-rmsprop"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["cells"]) == {"gan-rmsprop", "wgan-gp-rmsprop"}
    assert all(c["seeds"] == 2 for c in summary["cells"].values())
    # The table's numbers are the runs' own final records, averaged.
    runs = [Run(p) for p in sorted((out / "runs").iterdir())]
    assert [r.name for r in runs] == ["gan-rmsprop-s0", "gan-rmsprop-s1", "wgan-gp-rmsprop-s0",
                                      "wgan-gp-rmsprop-s1"]
    finals = [r.read_metrics()[-1]["metrics"]["sliced_wasserstein"] for r in runs[:2]]
    assert summary["cells"]["gan-rmsprop"]["final"]["sliced_wasserstein"]["mean"] == (
        pytest.approx(np.mean(finals)))
    assert (out / "table.csv").read_text().startswith("cell,seeds,")
    md = (out / "table.md").read_text()
    assert "* marks the best converged cell" in md
    # 16 steps: the GAN has 2 evaluations, too few for the plateau rule (patience 6), so it
    # hits the cap; at most one cell converged: inconclusive, no winner named
    assert summary["cells"]["gan-rmsprop"]["converged"] == 0
    assert "\ninconclusive: " in md and summary["winners"] == {}
    assert Image.open(out / "matrix.png").size[0] > 500
    gif = Image.open(out / "gifs" / "gan-rmsprop.gif")
    assert gif.n_frames >= 2
    # a cell's two seeds trained as one stack, each into its own run directory
    assert {r.name: r.meta()["execution"]["stacked"] for r in runs} == dict.fromkeys(
        (r.name for r in runs), 2)
    for r in (out / "runs").iterdir():  # every run also has its curves and its own animation
        assert {"losses.png", "d_outputs.png", "metrics.png", "training.gif"} <= {
            p.name for p in (r / "figures").iterdir()}
    # Started again: finished runs are kept, not retrained.
    before = {r.name: r.events_path.stat().st_mtime_ns for r in runs}
    assert main(args) == 0
    assert {r.name: r.events_path.stat().st_mtime_ns for r in runs} == before


def test_summary_winners_and_ties(tmp_path):
    def fake_run(name, cell, vals):
        cfg = apply_overrides(RunConfig(), ["data.name=ring8", "model.name=mlp2d",
                                            "eval.every=1", "eval.patience=6"])
        cfg.preset = f"lab2d-{cell}"
        r = Run.create(cfg, tmp_path, name)
        r.append_metrics([{"epoch": e + 1, "metrics": v} for e, v in enumerate(vals)])
        r.update_meta(step=100, stopped_early={"reason": "plateau", "step": 100})  # converged
        return r

    runs = [fake_run("a", "gan-adam", [{"modes_covered": 3, "sliced_wasserstein": 0.5}]),
            fake_run("b", "wgan-adam", [{"modes_covered": 3, "sliced_wasserstein": 0.2}]),
            fake_run("c", "wgan-adam", [{"modes_covered": 3, "sliced_wasserstein": 0.4}])]
    s = summarize(runs)
    assert s["cells"]["wgan-adam"]["final"]["sliced_wasserstein"] == pytest.approx(
        {"mean": 0.3, "std": np.std([0.2, 0.4], ddof=1)})
    assert s["winners"] == {"sliced_wasserstein": "wgan-adam"}  # all tie on modes: no winner
