"""A user's own networks: ``model.name: nets.py:build`` and ``gs.train(G=..., D=...)``.

What D outputs is found (a final nn.Sigmoid, or outputs bounded to [0, 1]) or declared; the
nets are checked against the data before a run directory exists; the run keeps a copy of the
source and rebuilds from it for every later command."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ganscope as gs
from ganscope.cli import main
from ganscope.training.run import load_checkpoint

NETS = '''
import torch
from torch import nn


def _n(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class G(nn.Module):
    def __init__(self, z_dim, shape):
        super().__init__()
        self.shape = tuple(shape)
        self.net = nn.Sequential(nn.Linear(z_dim, 32), nn.ReLU(), nn.Linear(32, _n(shape)),
                                 nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, *self.shape)


class SigmoidInForward(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(_n(shape), 16), nn.LeakyReLU(0.2),
                                 nn.Linear(16, 1))

    def forward(self, x):
        return torch.sigmoid(self.net(x))


def d_layers(shape):
    return [nn.Flatten(), nn.Linear(_n(shape), 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)]


def build(z_dim, shape):  # the course's way: D ends in a sigmoid
    return G(z_dim, shape), nn.Sequential(*d_layers(shape), nn.Sigmoid())


def build_logits(z_dim, shape):
    return G(z_dim, shape), nn.Sequential(*d_layers(shape))


def build_functional(z_dim, shape):
    return G(z_dim, shape), SigmoidInForward(shape)


def build_wrong_size(z_dim, shape):
    return G(z_dim, (1, 32, 32)), nn.Sequential(*d_layers((1, 32, 32)))
'''


@pytest.fixture
def nets(tmp_path) -> Path:
    f = tmp_path / "mynets" / "nets.py"
    f.parent.mkdir()
    f.write_text(NETS)
    return f


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _train(nets: Path, data: Path, builder: str = "build", **kw) -> gs.Run:
    return gs.train("e1-mlp", model=f"{nets}:{builder}", data_dir=data, progress=False,
                    plot=False, **{"epochs": 1, "batch_size": 64, **kw})


@pytest.mark.parametrize("builder,kind", [("build", "probability"), ("build_logits", "logit"),
                                          ("build_functional", "probability")])
def test_d_output_kind_is_found_and_bce_trains_both(nets, tiny_fmnist_dir, builder, kind):
    run = _train(nets, tiny_fmnist_dir, builder, name=builder)
    info = json.loads((run.path / "model" / "source.json").read_text())
    assert info["d_output"] == kind
    meta = run.meta()
    assert meta["status"] == "completed" and meta["d_output"] == "probability"
    rows = run.read_events()
    assert len(rows) == 4 and all(0 < r["d_x"] < 1 and 0 < r["d_g_z"] < 1 for r in rows)
    assert all(np.isfinite(r["loss_d"]) and r["loss_d"] > 0 for r in rows)
    # D's weights keep the user's own names (the sigmoid for logits is a hook, not a wrapper)
    ck = load_checkpoint(run.last_checkpoint)
    assert set(ck["D"]) == {"1.weight", "1.bias", "3.weight", "3.bias"} or builder == (
        "build_functional")
    G = gs.load_run(run.name).generator()
    assert G(torch.zeros(2, 100)).shape == (2, 1, 28, 28)


def test_raw_score_loss_takes_logits_and_refuses_a_sigmoid_d(nets, tiny_fmnist_dir, capsys,
                                                             tmp_path):
    run = _train(nets, tiny_fmnist_dir, "build_logits", loss="wgan", name="w")
    assert run.meta()["d_output"] == "raw critic score"
    rc, out, err = _cli(capsys, "train", "e1-mlp", "--set", f"model.name={nets}:build",
                        "--set", "loss.name=wgan", "--data-dir", str(tiny_fmnist_dir),
                        "--name", "refused")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: bad config: D from ")
    assert "outputs probabilities" in err and "loss wgan wants raw scores" in err
    assert not (tmp_path / "runs" / "refused").exists()
    # declared: a sigmoid D the user says gives logits is taken at its word
    ok = _train(nets, tiny_fmnist_dir, "build", loss="wgan", d_output="logit", name="declared")
    assert json.loads((ok.path / "model" / "source.json").read_text())["d_output"] == "logit"


def test_wrong_output_shape_is_one_line_before_any_run_dir(nets, tiny_fmnist_dir, capsys,
                                                           tmp_path):
    rc, out, err = _cli(capsys, "train", "e1-mlp", "--set",
                        f"model.name={nets}:build_wrong_size",
                        "--data-dir", str(tiny_fmnist_dir), "--name", "bad")
    assert rc == 2
    assert err == (f"error: bad model: G from {nets}:build_wrong_size makes samples of shape "
                   "1x32x32 but data fashion-mnist gives 1x28x28: make G output (N, 1, 28, 28)\n")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    for ref, says in ((f"{nets}:missing", "has no function missing"),
                      (f"{nets.parent}/nope.py:build", "not found"),
                      ("no_such_pkg.nets:build", "cannot import module no_such_pkg.nets")):
        rc, _, err = _cli(capsys, "train", "e1-mlp", "--set", f"model.name={ref}",
                          "--data-dir", str(tiny_fmnist_dir))
        assert rc == 2 and err.count("\n") == 1 and says in err, err


def test_run_keeps_the_source_rebuilds_from_it_and_names_a_changed_file(
        nets, tiny_fmnist_dir, capsys, tmp_path):
    rc, _, _ = _cli(capsys, "train", "e1-mlp", "--set", f"model.name={nets}:build", "--set",
                    "train.epochs=1", "--data-dir", str(tiny_fmnist_dir), "--name", "kept",
                    "--no-progress", "--no-plot")
    assert rc == 0
    store = tmp_path / "runs" / "kept" / "model"
    info = json.loads((store / "source.json").read_text())
    assert (store / "nets.py").read_bytes() == nets.read_bytes()
    assert info["sha256"] == hashlib.sha256(nets.read_bytes()).hexdigest()
    assert (info["origin"], info["shape"], info["kind"]) == (str(nets), [1, 28, 28], "file")
    a = tmp_path / "a.npy"
    rc, _, err = _cli(capsys, "generate", "kept", "--seed", "23231", "-n", "8", "--out", str(a))
    assert rc == 0 and err == ""
    rc, _, err = _cli(capsys, "latent", "interp", "kept", "--from-seed", "1", "--to-seed", "2",
                      "--steps", "4", "--out", str(tmp_path / "i.png"))
    assert rc == 0 and (tmp_path / "i.png").is_file(), err
    # the original changes (even so it no longer builds): one warning line, the run's copy used
    nets.write_text(NETS.replace("nn.Tanh()", "nn.Sigmoid()") + "\nraise ImportError('x')\n")
    b = tmp_path / "b.npy"
    rc, _, err = _cli(capsys, "generate", "kept", "--seed", "23231", "-n", "8", "--out", str(b))
    assert rc == 0 and np.array_equal(np.load(a), np.load(b))
    assert err.count("\n") == 1 and err.startswith(f"warning: {nets} changed since run 'kept'")
    # a changed copy cannot rebuild the trained nets: one error line naming it
    (store / "nets.py").write_text(NETS + "\n# edited\n")
    rc, _, err = _cli(capsys, "eval", "kept", "-n", "16", "--no-progress")
    assert rc == 2 and err.count("error:") == 1
    assert f"{store / 'nets.py'} is missing or changed since run 'kept' was trained" in err


def test_interrupted_user_run_resumes_bit_identical(nets, tiny_fmnist_dir):
    whole = _train(nets, tiny_fmnist_dir, epochs=2, batch_size=32, name="whole")
    cut = _train(nets, tiny_fmnist_dir, epochs=2, batch_size=32, name="cut",
                 should_stop=lambda step: step == 11)
    assert cut.status() == "interrupted"
    nets.write_text(NETS + "\n# changed after the run started\n")  # the copy is what resumes
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cut.resume()
    assert cut.status() == "completed"
    assert any("changed since run 'cut'" in str(w.message) for w in seen)
    a, b = load_checkpoint(whole.last_checkpoint), load_checkpoint(cut.last_checkpoint)
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


class CourseG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(100, 32), nn.ReLU(), nn.Linear(32, 784), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)


class CourseD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.LeakyReLU(0.2),
                                 nn.Linear(16, 1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


def test_modules_from_python_train_untouched_and_reopen_where_their_classes_live(
        tiny_fmnist_dir, tmp_path):
    g, d = CourseG(), CourseD()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    run = gs.train("e1-mlp", G=g, D=d, epochs=1, data_dir=tiny_fmnist_dir, progress=False,
                   plot=False, name="mods")
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())  # copies trained
    assert run.config().model.name == "modules"
    info = json.loads((run.path / "model" / "source.json").read_text())
    assert info["kind"] == "modules" and info["d_output"] == "probability"
    assert info["classes"][0].endswith("CourseG")
    imgs = gs.load_run("mods").generate(4, seed=3)
    assert imgs.shape == (4, 1, 28, 28) and imgs.dtype == torch.uint8
    # another process without these classes: one error line that says what to do
    res = subprocess.run([sys.executable, "-m", "ganscope", "generate", str(run.path),
                          "--out", str(tmp_path / "x.png")], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "cannot be rebuilt here" in res.stderr and "nets.py:build" in res.stderr
    with pytest.raises(gs.api.ConfigError, match="give both G= and D="):
        gs.train("e1-mlp", G=g, data_dir=tiny_fmnist_dir)


def _write_folder(root: Path) -> Path:
    """Grey and RGB PNGs of two sizes (20x24 and 36x30), in two class sub-folders. Few: every
    image goes through Inception-v3 at 299x299 when scored (about 0.5 s each on a CPU)."""
    rng = np.random.default_rng(0)
    for i in range(12):
        cls = root / ("cats" if i % 2 else "dogs")
        cls.mkdir(parents=True, exist_ok=True)
        h, w = (20, 24) if i % 3 else (36, 30)
        if i % 4 == 0:
            img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
        else:
            img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        img.save(cls / f"{i:02d}.png")
    return root


@pytest.fixture
def inception_standin(tmp_path, monkeypatch) -> Path:
    """A stand-in for the FID Inception weights (random values, the real file's format)."""
    sys.path.insert(0, str(Path(__file__).parent / "data"))
    try:
        from inception_standin import standin_state_dict
    finally:
        sys.path.pop(0)
    from ganscope.metrics.inception import WEIGHTS_ENV, FIDInceptionV3

    shapes = {k: tuple(v.shape) for k, v in FIDInceptionV3().state_dict().items()}
    f = tmp_path / "inception-standin.pth"
    torch.save(standin_state_dict(shapes), f)
    monkeypatch.setenv(WEIGHTS_ENV, str(f))
    return f


@pytest.mark.slow  # Inception-v3 at 299x299 on a CPU: about 0.5 s an image
def test_user_nets_on_an_image_folder_train_evaluate_generate_and_serve(
        nets, tmp_path, capsys, inception_standin):
    with warnings.catch_warnings():  # starlette asks for httpx2, not packaged yet (test_serve)
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from ganscope.serve.app import create_app

    folder = _write_folder(tmp_path / "pics")
    rc, _, err = _cli(capsys, "train", "e1-mlp", "--set", "data.name=folder", "--set",
                      "data.image_size=16", "--set", f"model.name={nets}:build", "--set",
                      "train.epochs=2", "--set", "train.batch_size=8", "--data-dir", str(folder),
                      "--name", "pics", "--no-progress")
    assert rc == 0, err
    run = gs.load_run("pics")
    info = json.loads((run.path / "model" / "source.json").read_text())
    assert info["shape"] == [3, 16, 16]  # RGB because some files are, at data.image_size
    assert run.meta()["status"] == "completed"
    m = run.evaluate(n=10, progress=False)
    assert np.isfinite(m["fid"]) and m.records[-1]["extractor"]["name"].lower().find(
        "inception") >= 0
    imgs = run.generate(6, seed=23231)
    assert imgs.shape == (6, 3, 16, 16)
    rc, _, _ = _cli(capsys, "generate", "pics", "--seed", "23231", "-n", "6", "--out",
                    str(tmp_path / "g.npy"))
    assert rc == 0
    assert np.array_equal(np.load(tmp_path / "g.npy"), imgs.numpy())
    rc, _, err = _cli(capsys, "latent", "interp", "pics", "--from-seed", "1", "--to-seed", "2",
                      "--steps", "4", "--out", str(tmp_path / "i.png"))
    assert rc == 0, err
    assert Image.open(tmp_path / "i.png").mode in ("RGB", "RGBA")
    rc, _, err = _cli(capsys, "report", "pics", "--out", str(tmp_path / "r.html"))
    assert rc == 0, err
    with TestClient(create_app(tmp_path / "runs"), base_url="http://127.0.0.1") as c:
        d = c.get("/api/runs/pics").json()
        assert d["name"] == "pics"
        r = c.get("/api/runs/pics/latent/image", params={"seed": 23231})
        assert r.status_code == 200 and r.content[:4] == b"\x89PNG"


def test_export_of_a_user_net_run_rebuilds_from_the_runs_copy(nets, tiny_fmnist_dir, capsys,
                                                               tmp_path):
    rc, _, _ = _cli(capsys, "train", "e1-mlp", "--set", f"model.name={nets}:build", "--set",
                    "train.epochs=1", "--data-dir", str(tiny_fmnist_dir), "--name", "ex",
                    "--no-progress", "--no-plot")
    assert rc == 0
    out = tmp_path / "g.safetensors"
    rc, _, err = _cli(capsys, "export", "ex", "--out", str(out))
    assert rc == 0, err
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["rebuild"]["ref"] == f"{nets}:build" and side["rebuild"]["run_copy"] == "model"
    assert side["output"]["bounded"] is False  # a user's G promises no tanh
    # the sidecar's own rebuild code gives the trained G: same images as `generate`
    scope: dict = {}
    exec(side["rebuild"]["code"].replace(repr(out.name), repr(str(out))), scope)
    run = gs.load_run("ex")
    z = torch.randn(4, run.config().model.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(scope["G"](z), run.generator()(z))
