"""Install ganscope's Python dependencies into a venv: with uv when it can, with pip otherwise.

Why not just pip: on a fresh 2-core machine of this project, ``pip install torch`` then
``pip install -e '.[dev]'`` took 42 s + 109 s; uv installed the same set (torch 2.13.0+cpu and
the dev extra, bytecode compiled) in 57 s, measured on 2026-12-01. CI is timed, and
``make demo`` is a user's first minute.

No ``--compile-bytecode``: compiling all 15,700 modules of the set took 40 of uv's 48 s with a
warm cache (8.8 s without). Instead one import of what every ganscope command loads (torch,
torch._dynamo, matplotlib, the CLI, the training loop) compiles those ~1,800 modules and writes
their .pyc files, even where PYTHONDONTWRITEBYTECODE is set (as on this project's machines):
22 s. Without it each command would compile them again (`import torch` 6.6 s against 3.5 s).
The rest compile on first use (``make test`` lets the suite write them).

uv does not read pip's configuration, and this project's machines keep torch's CPU wheel on
disk and a package mirror through it (``find-links``, ``extra-index-url``, a global
``constraint``). So uv is handed exactly what ``pip config list`` reports, and both installers
see the same packages. If uv cannot be installed or fails for any reason, pip does the whole
job as before: slower, never worse.

Usage (from the Makefile): ``python tools/install_deps.py VENV_PYTHON [--torch-index URL]``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
# what `make setup` installs; pytorch-fid comes without its dependencies (its torchvision is
# for an Inception model the tests never touch)
PACKAGES = ["torch", "-e", f"{ROOT}[dev]"]
NO_DEPS = ["pytorch-fid"]
# the modules every ganscope command imports, compiled once after a uv install (see above)
WARM_UP = "import torch, torch._dynamo, ganscope.cli, ganscope.training.loop, ganscope.viz.curves"


def pip_config(python: str) -> dict[str, list[str]]:
    """pip's settings that decide where packages come from, as ``{key: [values]}``, from every
    place pip reads them (files and PIP_* variables: ``pip config list`` shows both)."""
    out = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True,
                         text=True, check=False).stdout
    conf: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        name = key.rsplit(".", 1)[-1]  # "global.find-links", ":env:.find-links"
        for v in shlex.split(value.strip().strip("'\"")):
            if v not in conf.setdefault(name, []):
                conf[name].append(v)
    return conf


def uv_sources(conf: dict[str, list[str]], torch_index: str | None) -> list[str]:
    """uv's flags for where pip finds packages (what a build needs too). Every index counts
    equally (uv's unsafe-best-match), as in pip: the CPU wheel of torch on disk ranks above
    PyPI's CUDA one (a local version label, 2.13.0+cpu, sorts above 2.13.0)."""
    args = ["--index-strategy", "unsafe-best-match"]
    for v in conf.get("index-url", [])[:1]:
        args += ["--index-url", v]
    for v in conf.get("extra-index-url", []) + ([torch_index] if torch_index else []):
        args += ["--extra-index-url", v]
    for v in conf.get("find-links", []):
        args += ["--find-links", v]
    return args


def uv_args(conf: dict[str, list[str]], torch_index: str | None) -> list[str]:
    """uv's flags for pip's settings: its sources and its constraint files."""
    return uv_sources(conf, torch_index) + [a for v in conf.get("constraint", [])
                                            for a in ("-c", v)]


def run(cmd: list[str], env: dict[str, str] | None = None) -> bool:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=env, check=False).returncode == 0


def with_pip(python: str, torch_index: str | None) -> bool:
    flags = ["-q", "--disable-pip-version-check", "-c", str(CONSTRAINTS)]
    if torch_index:
        flags += ["--extra-index-url", torch_index]
    pip = [python, "-m", "pip", "install", *flags]
    # torch first, alone: pip then never weighs a CUDA build for it while resolving the rest
    return (run([*pip, "torch"]) and run([*pip, "-e", f"{ROOT}[dev]"])
            and run([*pip, "--no-deps", *NO_DEPS]))


def with_uv(python: str, torch_index: str | None) -> bool:
    if not run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                "-c", str(CONSTRAINTS), "uv"]):
        return False
    uv = str(Path(python).parent / "uv")
    conf = pip_config(python)
    env = dict(os.environ)
    if conf.get("cert"):  # pip's CA bundle (a proxy's certificate may be in it)
        env.setdefault("SSL_CERT_FILE", conf["cert"][0])
    base = [uv, "pip", "install", "--python", python, "-q",
            "-c", str(CONSTRAINTS), *uv_args(conf, torch_index)]
    if not (run([*base, *PACKAGES], env) and run([*base, "--no-deps", *NO_DEPS], env)):
        return False
    # The packages are in: a failed warm-up is no reason for pip to install them all again.
    warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not run([python, "-c", WARM_UP], warm):
        print("warning: compiling what ganscope's commands import failed (its message is "
              "above); they compile it when they first run", file=sys.stderr, flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("python", help="the venv's python")
    p.add_argument("--torch-index", default="", help="an extra index for torch's CPU wheel")
    p.add_argument("--pip-only", action="store_true", help="skip uv")
    a = p.parse_args(argv)
    index = a.torch_index or None
    if not a.pip_only and os.environ.get("GANSCOPE_NO_UV") != "1":
        if with_uv(a.python, index):
            return 0
        print("uv could not install the dependencies: installing them with pip instead",
              file=sys.stderr, flush=True)
    if with_pip(a.python, index):
        return 0
    print("error: pip could not install the dependencies (its messages are above): check the "
          "network or the package index, then run `make setup` again", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
