"""The Python API (``import ganscope as gs``): the commands' library calls, returning objects
that display themselves in Jupyter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import ganscope as gs
from ganscope.cli import main
from ganscope.errors import ConfigError
from ganscope.training.run import load_checkpoint


def test_import_ganscope_stays_light_and_exposes_the_api_lazily():
    code = ("import sys, ganscope as gs; a = 'ganscope.api' in sys.modules; "
            "t = 'torch' in sys.modules; f = gs.train; "
            "print(a, t, 'ganscope.api' in sys.modules, f.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "True", "ganscope.api"]
    with pytest.raises(AttributeError):
        gs.no_such_thing  # noqa: B018


def test_keyword_overrides_reach_the_config_and_bad_ones_are_one_line():
    cfg = gs.run_config("e1-mlp", epochs=3, seed=1, lr=1e-4, loss="wgan-gp", limit=100,
                    train__batch_size=32, optim={"betas": [0.5, 0.9]})
    assert (cfg.train.epochs, cfg.seed, cfg.optim.lr, cfg.loss.name, cfg.data.limit) == (
        3, 1, 1e-4, "wgan-gp", 100)
    assert (cfg.train.batch_size, cfg.optim.betas) == (32, (0.5, 0.9))
    assert gs.run_config({"model": {"name": "mlp"}, "train": {"epochs": 2}}).train.epochs == 2
    with pytest.raises(ConfigError, match=r"keyword name= is ambiguous: write data__name= or "):
        gs.run_config("e1-mlp", name="x")
    with pytest.raises(ConfigError, match="unknown config keyword epoch="):
        gs.run_config("e1-mlp", epoch=3)
    with pytest.raises(ConfigError, match="bad config: train.epochs must be at least 1"):
        gs.run_config("e1-mlp", epochs=0)


def test_train_generate_evaluate_match_the_commands(tiny_fmnist_dir, tmp_path, capsys):
    run = gs.train("e1-mlp", epochs=2, seed=1, data_dir=tiny_fmnist_dir, name="api",
                   progress=False)
    assert isinstance(run, gs.Run) and run.status() == "completed"
    assert [p.name for p in run.plot()] == ["losses.png", "d_outputs.png"]
    assert "<img" in run.plot()._repr_html_() and "<img" in run._repr_html_()
    imgs = run.generate(8, seed=23231)
    assert imgs.shape == (8, 1, 28, 28) and imgs.dtype == torch.uint8
    assert imgs._repr_png_()[:4] == b"\x89PNG"
    assert type(imgs.float() / 255) is torch.Tensor  # arithmetic gives plain tensors
    assert main(["generate", "api", "--seed", "23231", "-n", "8", "--out",
                 str(tmp_path / "g.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "g.npy"), imgs.numpy()[:, 0])
    m = run.evaluate(n=32, progress=False)
    assert set(m) >= {"fid", "kid", "precision", "recall"} and len(m.records) == 1
    assert "FID" in m._repr_html_() and "32 generated" in m._repr_html_()
    capsys.readouterr()
    assert main(["eval", "api", "-n", "32", "--json", "--no-save", "--no-progress"]) == 0
    cli = json.loads(capsys.readouterr().out)[0]["metrics"]
    assert cli["fid"] == m["fid"] and cli["kid"] == m["kid"]
    assert gs.load_run("api").metrics()["fid"] == m["fid"]
    table = gs.runs()
    assert [r["name"] for r in table] == ["api"] and "BEST_FID" in str(table)
    cmp = gs.compare([run, "api"])
    assert [r["run"] for r in cmp] == ["api", "api"] and cmp[0]["fid"] == m["fid"]
    assert "<table>" in cmp._repr_html_()


def test_ctrl_c_leaves_a_resumable_run_that_ends_bit_identical(tiny_fmnist_dir, capsys):
    whole = gs.train("e1-mlp", epochs=2, batch_size=32, data_dir=tiny_fmnist_dir,
                     name="whole", progress=False, plot=False)

    def interrupt(step: int) -> bool:  # a kernel interrupt: SIGINT to this process, mid-run
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return False

    cut = gs.train("e1-mlp", epochs=2, batch_size=32, data_dir=tiny_fmnist_dir, name="cut",
                   progress=False, plot=False, should_stop=interrupt)
    assert cut.status() == "interrupted" and cut.meta()["step"] == 6
    assert "continue with run.resume()" in capsys.readouterr().err
    assert cut.resume().status() == "completed"
    a, b = load_checkpoint(whole.last_checkpoint), load_checkpoint(cut.last_checkpoint)
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert all(torch.equal(a["D"][k], b["D"][k]) for k in a["D"])
    with pytest.raises(ConfigError, match="only epochs and how to run"):
        gs.resume("cut", lr=1.0)
