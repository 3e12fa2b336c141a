"""`ganscope export`: safetensors (bit-exact), ONNX (onnxruntime, dynamic batch) and .pt2 (loads
without ganscope) from the last, a chosen-epoch and the best checkpoint; one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from ganscope import __version__
from ganscope.cli import main
from ganscope.export import export_generator
from ganscope.training.run import Run, load_checkpoint, load_generator


def _train(root: Path, preset: str, name: str, data_dir: Path | None, *sets: str) -> Run:
    args = ["train", preset, "--no-progress", "--no-plot", "--runs-dir", str(root), "--name", name]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return Run(root / name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_fmnist_dir) -> dict[str, Run]:
    """Three tiny runs, trained once: E1's MLP (2 epochs), DCGAN (BatchNorm, channels_last
    training) and the 2-D points MLP."""
    root = tmp_path_factory.mktemp("export-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANSCOPE_CACHE", str(root / "cache"))
        return {
            "mlp": _train(root, "e1-mlp", "mlp", tiny_fmnist_dir, "train.epochs=2",
                          "data.limit=64", "train.n_samples=8"),
            "dcgan": _train(root, "e2-dcgan", "dcgan", tiny_fmnist_dir, "train.epochs=1",
                            "train.n_samples=8", "train.channels_last=true", "data.limit=32",
                            "train.batch_size=32"),
            "points": _train(root, "e5-gan-adam", "points", None, "train.epochs=1",
                             "data.n_points=256", "eval.every=0", "train.n_samples=16"),
        }


def _z(n: int, z_dim: int, seed: int = 7) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# --- safetensors ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
def test_safetensors_round_trips_bit_for_bit(runs, kind, tmp_path):
    from safetensors.torch import load_file

    from ganscope.models import build_models

    run = runs[kind]
    out = export_generator(run, "safetensors", tmp_path / "g.safetensors")
    got = load_file(out)
    ref = load_checkpoint(run.last_checkpoint)["G"]
    assert set(got) == set(ref)
    for k, v in ref.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k
        assert got[k].is_contiguous()
    if kind == "dcgan":  # trained channels_last: the checkpoint holds NHWC-strided weights
        assert any(v.dim() == 4 and not v.is_contiguous() for v in ref.values())

    meta = json.loads((tmp_path / "g.json").read_text())
    cfg = run.config()
    assert meta["model"]["name"] == cfg.model.name and meta["z_dim"] == 100
    assert meta["output"]["shape"] == [1, 28, 28] and meta["output"]["value_range"] == [-1, 1]
    assert meta["inputs"][0]["name"] == "z" and meta["inputs"][0]["shape"] == ["batch", 100]
    assert meta["run"] == kind and meta["checkpoint"] == "checkpoints/last.pt"
    assert meta["epoch"] == cfg.train.epochs and meta["ganscope_version"] == __version__
    assert meta["rebuild"]["kwargs"] == {"name": cfg.model.name, "z_dim": 100}
    # the recipe rebuilds the very generator ganscope samples from
    kw = dict(meta["rebuild"]["kwargs"])
    G, _ = build_models(kw.pop("name"), kw.pop("z_dim"), **kw)
    G.load_state_dict(got)
    ours = load_generator(run)
    if cfg.train.channels_last and kind == "dcgan":
        # the same layout as ganscope's G: NCHW and NHWC take other oneDNN kernels, which
        # round alike on an AVX-512 Xeon but not on an AVX2 EPYC (measured: not bit-equal)
        G = G.to(memory_format=torch.channels_last)
    z = _z(5, 100)
    with torch.no_grad():
        assert torch.equal(G.eval()(z), ours(z))


def test_safetensors_epoch_and_header(runs, tmp_path):
    from safetensors import safe_open

    run = runs["mlp"]
    out = export_generator(run, "safetensors", tmp_path / "e1.safetensors", epoch=1)
    ref = load_checkpoint(run.generator_checkpoint(1))["G"]
    last = load_checkpoint(run.last_checkpoint)["G"]
    with safe_open(out, "pt") as f:
        header = json.loads(f.metadata()["ganscope"])
        for k, v in ref.items():
            assert torch.equal(f.get_tensor(k), v)
        assert not all(torch.equal(f.get_tensor(k), last[k]) for k in last)
    assert header["epoch"] == 1 and header["checkpoint"] == "checkpoints/G-epoch-0001.pt"
    assert json.loads((tmp_path / "e1.json").read_text()) == header


def test_points_run_exports_with_output_shape_2(runs, tmp_path):
    from safetensors.torch import load_file

    run = runs["points"]
    export_generator(run, None, tmp_path / "p.safetensors")  # format from the suffix
    meta = json.loads((tmp_path / "p.json").read_text())
    assert meta["output"]["shape"] == [2] and meta["output"]["kind"] == "points"
    assert meta["output"]["value_range"] is None and meta["z_dim"] == 2
    ref = load_checkpoint(run.last_checkpoint)["G_ema"]  # E5 presets keep G's average:
    got = load_file(tmp_path / "p.safetensors")        # what every reader, export too, takes
    assert all(torch.equal(got[k], v) for k, v in ref.items())


# --- ONNX -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mlp", "dcgan", "points"])
def test_onnx_matches_torch_with_a_dynamic_batch(runs, kind, tmp_path):
    import onnx
    import onnxruntime as ort

    run = runs[kind]
    out = export_generator(run, "onnx", tmp_path / "g.onnx")
    model = onnx.load(out)
    assert json.loads({p.key: p.value for p in model.metadata_props}["ganscope"])["run"] == kind
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = sess.get_inputs(), sess.get_outputs()
    z_dim = run.config().model.z_dim
    assert inp.name == "z" and inp.type == "tensor(float)" and inp.shape[1] == z_dim
    assert isinstance(inp.shape[0], str)  # a named, dynamic batch axis
    assert outp.name == ("points" if kind == "points" else "images")
    G = load_generator(run)
    for n in (64, 3, 1):
        z = _z(n, z_dim, seed=n)
        with torch.no_grad():
            want = G(z).numpy()
        got = sess.run(None, {"z": z.numpy()})[0]
        assert got.shape == want.shape
        diff = float(np.abs(got - want).max())
        assert diff < 1e-4, (kind, n, diff)
        print(f"onnx {kind} batch {n}: max |onnxruntime - torch| = {diff:.2e}")


def test_missing_onnx_extra_is_one_line(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` raises
    args = ["export", "mlp", "--runs-dir", str(runs["mlp"].path.parent), "--format", "onnx",
            "--out", str(tmp_path / "g.onnx")]
    assert main(args) == 2
    err = _err(capsys)
    assert err.startswith("error: ONNX export needs the onnx extra") and err.endswith(
        "pip install 'ganscope[onnx]'")
    assert not (tmp_path / "g.onnx").exists()


# --- pt2 --------------------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    sys.modules["ganscope"] = None  # any `import ganscope...` fails here
    import numpy as np, torch
    try:
        import ganscope  # noqa
    except ImportError:
        pass
    else:
        raise SystemExit("ganscope importable")
    for name in sys.argv[1:]:
        prog = torch.export.load(name + ".pt2").module()
        for z_file in (name + ".z64.npy", name + ".z3.npy"):
            z = torch.from_numpy(np.load(z_file))
            with torch.no_grad():
                y = prog(z)
            np.save(z_file.replace(".z", ".y"), y.numpy())
    print("ok", "ganscope" in sys.modules and sys.modules["ganscope"] is None)
""")


def test_pt2_runs_in_a_process_without_ganscope(runs, tmp_path):
    names = []
    for kind, run in runs.items():
        z_dim = run.config().model.z_dim
        out = export_generator(run, "pt2", tmp_path / f"{kind}.pt2")
        assert out.is_file() and json.loads((tmp_path / f"{kind}.json").read_text())["file"] \
            == f"{kind}.pt2"
        for n in (64, 3):
            np.save(tmp_path / f"{kind}.z{n}.npy", _z(n, z_dim, seed=n).numpy())
        names.append(kind)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no PYTHONPATH
    p = subprocess.run([sys.executable, "-I", "-c", CHILD, *(str(tmp_path / n) for n in names)],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "ok True"
    for kind in names:
        G = load_generator(runs[kind])
        for n in (64, 3):
            z = torch.from_numpy(np.load(tmp_path / f"{kind}.z{n}.npy"))
            with torch.no_grad():
                want = G(z).numpy()
            got = np.load(tmp_path / f"{kind}.y{n}.npy")
            assert got.shape == want.shape
            diff = float(np.abs(got - want).max())
            assert diff < 1e-5, (kind, n, diff)
            print(f"pt2 {kind} batch {n}: max |pt2 - torch| = {diff:.2e}")


# --- choosing the checkpoint, the CLI, errors -------------------------------------------------


def test_best_uses_the_epoch_recorded_in_meta(runs, tmp_path, capsys):
    from safetensors.torch import load_file

    run = Run(shutil.copytree(runs["mlp"].path, tmp_path / "runs" / "b"))
    base = ["export", "b", "--runs-dir", str(tmp_path / "runs"), "--best",
            "--out", str(tmp_path / "best.safetensors")]
    assert main(base) == 2
    assert _err(capsys) == ("error: run 'b' has no best checkpoint recorded: score its generators "
                            "with `ganscope eval b --checkpoint all` (or train with "
                            "--eval-every 1), then export with --best")
    run.update_meta(best={"epoch": 1, "fid": 12.5, "checkpoint": "checkpoints/G-epoch-0001.pt"})
    assert main(base) == 0
    assert "generator of epoch 1 from checkpoints/G-epoch-0001.pt, run b" in capsys.readouterr().out
    ref = load_checkpoint(run.generator_checkpoint(1))["G"]
    got = load_file(tmp_path / "best.safetensors")
    assert all(torch.equal(got[k], v) for k, v in ref.items())
    meta = json.loads((tmp_path / "best.json").read_text())
    assert meta["selected"] == "best" and meta["fid"] == 12.5 and meta["epoch"] == 1
    # a best recorded on last.pt that has since moved on falls back to that epoch's generator
    run.update_meta(best={"epoch": 1, "fid": 12.5, "checkpoint": "checkpoints/last.pt"})
    assert main(base) == 0
    assert json.loads((tmp_path / "best.json").read_text())["checkpoint"] == \
        "checkpoints/G-epoch-0001.pt"
    run.generator_checkpoint(1).unlink()
    assert main(base) == 2
    assert "is gone" in _err(capsys)


def test_cli_writes_and_overwrites(runs, tmp_path, capsys):
    out = tmp_path / "sub" / "g.pt2"
    args = ["export", "mlp", "--runs-dir", str(runs["mlp"].path.parent), "--out", str(out)]
    for _ in range(2):  # the second run replaces the files
        assert main(args) == 0
        line = capsys.readouterr().out.strip()
        assert line == (f"wrote {out} (pt2, generator of epoch 2 from checkpoints/last.pt, "
                        f"run mlp) and {out.with_suffix('.json')}")
    assert sorted(p.name for p in out.parent.iterdir()) == ["g.json", "g.pt2"]  # no temp files


@pytest.mark.parametrize("extra, expected", [
    (["--format", "tflite", "--out", "{tmp}/g.x"], "error: argument --format: invalid choice"),
    (["--out", "{tmp}/g.bin"], "error: cannot tell the format from {tmp}/g.bin: give --format "
                               "safetensors|onnx|pt2"),
    (["--epoch", "7", "--out", "{tmp}/g.pt2"],
     "error: run 'mlp' has no generator for epoch 7: available 1, 2"),
    (["--epoch", "1", "--best", "--out", "{tmp}/g.pt2"],
     "error: argument --best: not allowed with argument --epoch"),
    (["--out", "{tmp}/g.json", "--format", "onnx"], "error: --out {tmp}/g.json ends in .json"),
    (["--out", "{tmp}", "--format", "onnx"], "error: --out {tmp} is a folder"),
    (["--out", "{tmp}/afile/g.onnx"], "error: cannot write into {tmp}/afile ("),
])
def test_errors_are_one_line(runs, tmp_path, capsys, extra, expected):
    (tmp_path / "afile").write_text("")
    args = ["export", "mlp", "--runs-dir", str(runs["mlp"].path.parent)]
    args += [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert main(args) == 2
    assert _err(capsys).startswith(expected.replace("{tmp}", str(tmp_path)))


def test_unknown_run_and_points_best(runs, tmp_path, capsys):
    root = str(runs["mlp"].path.parent)
    assert main(["export", "nope", "--runs-dir", root, "--out", str(tmp_path / "g.pt2")]) == 2
    assert _err(capsys).startswith("error: no run named 'nope'")
    assert main(["export", "points", "--runs-dir", root, "--best",
                 "--out", str(tmp_path / "g.pt2")]) == 2
    assert "trains on a point set" in _err(capsys)
