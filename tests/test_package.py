"""The package as a user gets it: the built wheel, installed into a fresh venv without extras.

Builds the wheel from this checkout (``python -m build --wheel``), reads its metadata and file
list, then installs it with its core dependencies only (torch 2.13.0 CPU first in line, the rest
pinned by constraints.txt) into a new ``python -m venv`` that sees nothing of this environment,
and runs the command there: ``--version``, a one-epoch E1 training on a tiny Fashion-MNIST
folder (the preset's config comes from the package) that evaluates with the shipped feature
extractor, and ``serve``, which without the ``serve`` extra must say in one line what to install.

Two quick checks run in this environment: importing the CLI loads none of the extras'
packages, and ``serve`` with fastapi or uvicorn missing prints the one line.

The wheel tests are ``slow``. They need pip to reach PyPI for the build backend and the core
dependencies (torch comes from the local wheel); they skip, saying so, when the network is what
failed. Measured on one core of a 2-core AMD EPYC (2026-12-02): 36 s for the fresh install
(2.3 s of it building the venv with uv; the rest is its four processes, the first of which
compiles the bytecode of what it imports).
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import ganscope
from ganscope.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
TORCH = "torch==2.13.0"  # the CPU wheel on this project's machines; any other spec fetches CUDA

CORE_DEPS = {"torch", "numpy", "pyyaml", "matplotlib", "pillow", "tqdm", "platformdirs",
             "safetensors", "threadpoolctl"}
EXTRAS = {"serve", "ray", "tensorboard", "wandb", "onnx", "dev"}
# Packages that must never come with a plain `pip install ganscope`.
OPTIONAL_MODULES = ("fastapi", "uvicorn", "starlette", "pydantic", "ray", "tensorboard", "wandb",
                    "onnx", "onnxscript", "onnxruntime")
SHIPPED = ["ganscope/serve/static/index.html", "ganscope/serve/static/app.js",
           "ganscope/serve/static/style.css", "ganscope/domains/fashion_mnist/weights/fmnist-cnn-v1.pt",
           "ganscope/domains/fashion_mnist/weights/fmnist-cnn-v1.json", "ganscope/domains/faces/weights/celeba-attr-v1.pt",
           "ganscope/domains/faces/weights/celeba-attr-v1.json", "ganscope/latent/claims.yaml",
           "ganscope/configs/e1-mlp.yaml"]
SERVE_LINE = "error: ganscope serve needs the web server packages: pip install 'ganscope[serve]'\n"
NETWORK_TROUBLE = re.compile(r"NewConnectionError|Temporary failure in name resolution|"
                             r"Max retries exceeded|Network is unreachable|ConnectTimeout|"
                             r"ReadTimeoutError|Could not fetch URL")


def _run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    """Run a build/install step; skip when the network failed, fail with its output otherwise."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        if NETWORK_TROUBLE.search(p.stdout + p.stderr):
            pytest.skip(f"{what} needs PyPI, which is not reachable: {p.stderr.strip()[-300:]}")
        pytest.fail(f"{what} failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n"
                    f"{p.stderr[-3000:]}")
    return p


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment minus anything that would leak its packages into the venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(extra)
    return env


# --- quick checks in this environment (every extra installed) --------------------------------


def test_cli_start_imports_no_optional_package():
    """`ganscope` (the parser, every command's module) loads none of the extras' packages."""
    code = ("import sys, ganscope.cli; ganscope.cli.build_parser(); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {OPTIONAL_MODULES!r}))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=_clean_env())
    assert (p.returncode, p.stdout) == (0, "[]\n"), p.stderr


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi"])
def test_serve_without_the_extra_says_what_to_install(monkeypatch, capsys, missing):
    monkeypatch.delitem(sys.modules, "ganscope.serve.app", raising=False)
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` now fails as if absent
    assert main(["serve", "--port", "0"]) == 2
    assert capsys.readouterr() == ("", SERVE_LINE)


# --- the built wheel, and a fresh venv with it ----------------------------------------------


# uv, when `make setup` installed it (tools/install_deps.py), builds and installs with its
# cache, which `make setup` filled: measured on the 2-core EPYC, the wheel and the fresh venv in
# ~6 s against ~50 s with `python -m build` and pip. Without it, pip and build do the same job.
UV = Path(sys.executable).parent / "uv"


def _uv(what: str) -> list[str]:
    """pip's package sources (``"sources"``) or sources and constraints (``"install"``), as
    uv's flags: both installers see the same packages (tools/install_deps.py)."""
    from test_install_deps import install_deps

    conf = install_deps.pip_config(sys.executable)
    fn = install_deps.uv_sources if what == "sources" else install_deps.uv_args
    return fn(conf, None)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    if UV.exists():
        _run([str(UV), "build", "-q", "--wheel", "--out-dir", str(out), *_uv("sources"),
              str(ROOT)],
             "building the wheel", env=_clean_env())
    else:
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
             "building the wheel", env=_clean_env())
    (whl,) = out.glob("ganscope-*.whl")
    return whl


@pytest.fixture(scope="module")
def metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(z.read(name).decode())


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Iterator[Path]:
    """A fresh venv (no system site-packages) with the wheel and its core dependencies only.

    Removed afterwards, in the background (it is about 900 MB, mostly torch, and deleting it
    took 15 s on a busy disk).
    """
    v = tmp_path_factory.mktemp("fresh") / "venv"
    # No pip inside the venv: this process's pip installs into it (`pip --python`), which
    # saves bootstrapping a second pip; --no-compile skips byte-compiling all of torch.
    _run([sys.executable, "-m", "venv", "--without-pip", str(v)], "creating the venv")
    py = v / "bin" / "python"
    if UV.exists():
        _run([str(UV), "pip", "install", "--python", str(py), "-q", "-c", str(CONSTRAINTS),
              *_uv("install"), TORCH, str(wheel)],
             "installing the wheel into a fresh venv", env=_clean_env())
    else:
        _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-compile",
              "--disable-pip-version-check", "-c", str(CONSTRAINTS), TORCH, str(wheel)],
             "installing the wheel into a fresh venv", env=_clean_env())
    yield v
    gone = v.with_name("venv-removed")  # renamed first, so nothing can use it half-deleted
    v.rename(gone)
    subprocess.Popen(["rm", "-rf", str(gone)], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.slow
def test_wheel_metadata(metadata, wheel):
    assert metadata["Name"] == "ganscope"
    assert metadata["Version"] == ganscope.__version__  # one version number
    assert wheel.name == f"ganscope-{ganscope.__version__}-py3-none-any.whl"
    assert metadata["Requires-Python"] == ">=3.11"
    assert (metadata["License"] or metadata["License-Expression"]) == "MIT"
    classifiers = metadata.get_all("Classifier")
    for c in ("License :: OSI Approved :: MIT License",
              "Programming Language :: Python :: 3.11", "Programming Language :: Python :: 3.12",
              "Intended Audience :: Science/Research", "Intended Audience :: Education",
              "Topic :: Scientific/Engineering :: Artificial Intelligence"):
        assert c in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert any(c.startswith("Operating System ::") for c in classifiers)
    assert metadata["Keywords"]
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Issues"} <= set(urls)

    assert set(metadata.get_all("Provides-Extra")) == EXTRAS  # no `sweep` twin of `ray`
    requires = metadata.get_all("Requires-Dist")
    core = {_requirement_name(r) for r in requires if ";" not in r}
    assert core == CORE_DEPS
    by_extra: dict[str, set[str]] = {}
    for r in requires:
        if ";" in r:
            m = re.search(r"extra == ['\"]([\w-]+)['\"]", r)
            assert m, r
            by_extra.setdefault(m.group(1), set()).add(_requirement_name(r))
    assert by_extra["serve"] == {"fastapi", "uvicorn"}
    assert by_extra["ray"] == {"ray"}
    assert by_extra["onnx"] == {"onnx", "onnxscript", "onnxruntime"}
    assert by_extra["tensorboard"] == {"tensorboard"} and by_extra["wandb"] == {"wandb"}
    # dev is every extra plus the test tools
    assert set().union(*(by_extra[e] for e in EXTRAS - {"dev"})) <= by_extra["dev"]


@pytest.mark.slow
def test_wheel_ships_the_package_data(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    for n in SHIPPED:
        assert n in names, f"{n} is missing from the wheel"
    for y in (ROOT / "configs").glob("*.yaml"):
        assert f"ganscope/configs/{y.name}" in names
    src = ROOT / "src"
    for f in (src / "ganscope").rglob("*"):
        if f.is_file() and "__pycache__" not in f.parts:
            assert f.relative_to(src).as_posix() in names, f"{f} is missing from the wheel"
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    assert any(re.fullmatch(r"ganscope-[^/]+\.dist-info/licenses/LICENSE", n) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as z:
        assert "ganscope = ganscope.cli:main" in z.read(entry_points).decode()


@pytest.mark.slow
def test_fresh_install_works_without_the_extras(venv, make_fmnist, tmp_path):
    ganscope_cmd = str(venv / "bin" / "ganscope")
    env = _clean_env(GANSCOPE_RUNS=str(tmp_path / "runs"), GANSCOPE_CACHE=str(tmp_path / "cache"))

    def start(*cmd: str) -> subprocess.Popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=tmp_path, env=env)

    def finish(p: subprocess.Popen) -> tuple[int, str, str]:
        out, err = p.communicate(timeout=300)
        return p.returncode, out, err

    # `--version` first and alone: the venv holds no bytecode (the installer compiles none),
    # so the first process compiles what importing torch reads (~4.5 s of CPU), which three
    # processes started at once would each do. The two other quick checks then run beside the
    # training: each is mostly importing torch.
    assert finish(start(ganscope_cmd, "--version")) == (0, f"ganscope {ganscope.__version__}\n",
                                                        "")
    serve = start(ganscope_cmd, "serve", "--port", "0")
    # What a plain `pip install ganscope` gives: none of the extras' packages, and ganscope
    # from the wheel, not from this checkout.
    probe = start(str(venv / "bin" / "python"), "-c",
                  "import importlib.util as u, json, ganscope; "
                  f"print(json.dumps([[m for m in {OPTIONAL_MODULES!r} if u.find_spec(m)], "
                  "ganscope.__file__]))")

    # Training the preset reads its config from the installed package (configs/ ships inside),
    # and its evaluation the shipped feature extractor's weights (one process for both: a
    # process in this venv costs ~8 s of CPU).
    data = make_fmnist(tmp_path / "fmnist", n_train=64, n_test=64)
    rc, _, err = finish(start(ganscope_cmd, "train", "e1-mlp", "--data-dir", str(data),
                              "--name", "tiny", "--seed", "1", "--set", "train.epochs=1",
                              "--set", "data.limit=64", "--eval-every", "1", "--set",
                              "eval.n=64", "--set", "eval.metrics=fid,classes", "--no-progress"))
    assert rc == 0, err
    meta = json.loads((tmp_path / "runs" / "tiny" / "meta.json").read_text())
    assert meta["status"] == "completed"
    assert (tmp_path / "runs" / "tiny" / "figures" / "losses.png").is_file()  # matplotlib works
    (record,) = [json.loads(x) for x in
                 (tmp_path / "runs" / "tiny" / "metrics.jsonl").read_text().splitlines()]
    assert record["metrics"]["fid"] > 0 and record["metrics"]["classes_covered"] >= 1
    shipped = ROOT / "src" / "ganscope" / "domains" / "fashion_mnist" / "weights" / "fmnist-cnn-v1.pt"
    assert record["extractor"] == {"name": "fmnist-cnn-v1",
                                   "sha256": hashlib.sha256(shipped.read_bytes()).hexdigest()}

    rc, out, err = finish(probe)
    assert rc == 0, err
    present, where = json.loads(out)
    assert present == []
    assert Path(where).is_relative_to(venv)
    # Without the `serve` extra: one line saying what to install, exit 2, no traceback.
    assert finish(serve) == (2, "", SERVE_LINE)
