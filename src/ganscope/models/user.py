"""A user's own networks: ``model.name: path/to/nets.py:build`` or ``package.module:build``, or
the modules a Python caller hands to ``ganscope.train(G=..., D=...)`` (``model.name: modules``).

``build(z_dim, shape)`` returns ``(G, D)``; ``shape`` is the data's ``(C, H, W)`` (``(2,)`` for
2-D points). G maps z of shape (N, z_dim) to samples of that shape; D gives one score per sample
((N,) or (N, 1)).

What D outputs -- probabilities (the course's nets end in a sigmoid) or logits -- is declared with
``model.d_output: probability | logit``, or found (``auto``, the default): *probability* when
the last layer D runs is an ``nn.Sigmoid``, or when its outputs stay inside [0, 1] for inputs
scaled from 0.01 to 1000 (a ``torch.sigmoid`` in ``forward``); logits otherwise. A loss that wants
probabilities (bce, minimax) gets a sigmoid applied to a logit D as a forward hook, so D's
``state_dict`` stays the user's own; a loss that wants raw scores (wgan, hinge, lsgan) refuses a
probability D in one line rather than train a critic squashed into [0, 1].

A run keeps what rebuilds its nets in ``RUN/model/``: a copy of the source file (or, for
modules, the pickled modules as they were before training) and ``source.json`` with its SHA-256,
the original path, the data shape and D's output kind. Every later use (resume, eval, generate,
the latent tools, serve) rebuilds from that copy, so the run works after the original moved or
changed; a changed original is reported (``changed_source``), a changed copy refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganscope.errors import ConfigError, RunError

MODULES_REF = "modules"  # model.name of nets handed over as objects (gs.train(G=..., D=...))
STORE_DIR = "model"  # RUN/model/
SOURCE_JSON = "source.json"
NETS_FILE = "nets.pt"  # the pickled modules of a MODULES_REF run
D_OUTPUTS = ("auto", "probability", "logit")
PROBE_N = 4


def is_user_model(name: str) -> bool:
    """``model.name`` names a user's networks (a ``file.py:attr``/``module:attr`` reference, or
    ``modules``), not one of the registered ones (whose names never hold a colon)."""
    return name == MODULES_REF or ":" in name


def parse_shape(shape: str | tuple[int, ...]) -> tuple[int, ...]:
    """A domain's ``sample_shape`` (``CxHxW`` or ``points``) as the tuple ``build`` gets."""
    if isinstance(shape, tuple):
        return shape
    return (2,) if shape == "points" else tuple(int(s) for s in shape.split("x"))


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__


# --- finding the builder ----------------------------------------------------------------------


def split_ref(ref: str) -> tuple[str, str, bool]:
    """``(target, attribute, is_file)`` of ``path/to/nets.py:build`` or ``pkg.mod:build``."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr.isidentifier():
        raise ConfigError(f"bad model.name {ref!r}: write path/to/nets.py:build or "
                          "package.module:build (a function build(z_dim, shape) -> (G, D))")
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    return target, attr, is_file


@contextlib.contextmanager
def _on_path(folder: Path | None) -> Iterator[None]:
    """``folder`` first on sys.path for the block: a nets file may import its neighbours."""
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _exec_file(path: Path, origin_dir: Path | None = None) -> Any:
    """Import a Python file as a module of its own, named by its content's hash: the same bytes
    are imported once per process, and two versions of one file never share a module."""
    name = f"_ganscope_user_{_sha256(path)[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}: not a Python source file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        with _on_path(origin_dir or path.parent):
            spec.loader.exec_module(mod)
    except Exception as e:  # the user's code: any error, said in one line
        sys.modules.pop(name, None)
        raise ConfigError(f"cannot import {path}: {_first_line(e)}") from None
    return mod


def source_file(ref: str) -> Path:
    """The file that holds ``ref``'s builder (a module reference is imported to find it)."""
    target, _, is_file = split_ref(ref)
    if is_file:
        p = Path(target).expanduser()
        if not p.is_file():
            raise ConfigError(f"model file {target} not found (model.name {ref}): check the path "
                              "(relative paths start in the current folder)")
        return p.resolve()
    return Path(_import_module(target, ref).__file__ or "").resolve()


def _import_module(target: str, ref: str) -> Any:
    try:
        mod = importlib.import_module(target)
    except ModuleNotFoundError as e:
        raise ConfigError(f"cannot import module {target} (model.name {ref}): {e.msg}; install "
                          "it or give a file path, path/to/nets.py:build") from None
    except Exception as e:
        raise ConfigError(f"cannot import module {target}: {_first_line(e)}") from None
    if not getattr(mod, "__file__", None):
        raise ConfigError(f"module {target} has no source file to keep with the run: give a "
                          "file path, path/to/nets.py:build")
    return mod


def load_builder(ref: str, file: Path | None = None, origin_dir: Path | None = None
                 ) -> Callable[..., Any]:
    """``ref``'s builder, from ``file`` (a run's copy) when given, else from where ``ref``
    points."""
    target, attr, is_file = split_ref(ref)
    if file is not None:
        mod = _exec_file(file, origin_dir)
    elif is_file:
        mod = _exec_file(source_file(ref))
    else:
        mod = _import_module(target, ref)
    build = getattr(mod, attr, None)
    if not callable(build):
        raise ConfigError(f"{target} has no function {attr} (model.name {ref}): define "
                          f"{attr}(z_dim, shape) returning (G, D)")
    return build


def call_builder(build: Callable[..., Any], ref: str, z_dim: int, shape: tuple[int, ...]
                 ) -> tuple[nn.Module, nn.Module]:
    try:
        out = build(z_dim, shape)
    except Exception as e:
        raise ConfigError(f"{ref}({z_dim}, {shape}) failed: {_first_line(e)}") from None
    if not (isinstance(out, (tuple, list)) and len(out) == 2
            and all(isinstance(m, nn.Module) for m in out)):
        raise ConfigError(f"{ref} must return (G, D), two torch.nn.Module objects; it returned "
                          f"{type(out).__name__}")
    return out[0], out[1]


# --- checking the nets against the data and the loss -------------------------------------------


def _last_leaf(D: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, nn.Module | None]:
    """D(x), and the last module without children that ran in it."""
    seen: list[nn.Module] = []
    leaves = [m for m in D.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(m)) for m in leaves]
    try:
        y = D(x)
    finally:
        for h in hooks:
            h.remove()
    return y, (seen[-1] if seen else None)


def probe(G: nn.Module, D: nn.Module, z_dim: int, shape: tuple[int, ...], *, where: str,
          data: str, d_output: str = "auto") -> str:
    """Check that G makes samples of ``shape`` and D scores them one each; return what D
    outputs, ``probability`` or ``logit``. ConfigError (one line) otherwise.

    Runs in eval mode without gradients on latents of its own generator, so neither BatchNorm's
    running statistics nor the global random stream change."""
    if d_output not in D_OUTPUTS:
        raise ConfigError(f"bad config: model.d_output must be {', '.join(D_OUTPUTS)}")
    z = torch.randn(PROBE_N, z_dim, generator=torch.Generator().manual_seed(0))
    was = G.training, D.training
    G.eval()
    D.eval()
    try:
        with torch.no_grad():
            try:
                x = G(z)
            except Exception as e:
                raise ConfigError(f"G from {where} fails on z of shape ({PROBE_N}, {z_dim}): "
                                  f"{_first_line(e)}") from None
            got = tuple(x.shape[1:]) if isinstance(x, torch.Tensor) else None
            if got != shape:
                what = _shape_text(got) if got is not None else type(x).__name__
                raise ConfigError(
                    f"bad model: G from {where} makes samples of shape {what} but data {data} "
                    f"gives {_shape_text(shape)}: make G output (N, {', '.join(map(str, shape))})")
            try:
                y, last = _last_leaf(D, x)
            except Exception as e:
                raise ConfigError(f"D from {where} fails on G's output of shape "
                                  f"({PROBE_N}, {', '.join(map(str, shape))}): "
                                  f"{_first_line(e)}") from None
            if (not isinstance(y, torch.Tensor) or y.numel() != PROBE_N
                    or y.shape[0] != PROBE_N):
                what = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise ConfigError(f"bad model: D from {where} must give one score per sample, "
                                  f"shape (N,) or (N, 1); it gives {what} for N={PROBE_N}")
            if d_output != "auto":
                return d_output
            if isinstance(last, nn.Sigmoid):
                return "probability"
            # a torch.sigmoid in forward(): outputs bounded to [0, 1] whatever the input scale
            gen = torch.Generator().manual_seed(1)
            outs = [y] + [D(torch.randn(PROBE_N, *shape, generator=gen) * s)
                          for s in (0.01, 1.0, 100.0, 1000.0)]
            inside = all(bool(((o >= 0) & (o <= 1)).all()) for o in outs)
            return "probability" if inside else "logit"
    finally:
        G.train(was[0])
        D.train(was[1])


def check_kind(kind: str, wants_probability: bool, loss: str, where: str) -> None:
    """A probability D cannot serve a loss that wants raw scores (wgan, hinge, lsgan)."""
    if kind == "probability" and not wants_probability:
        raise ConfigError(
            f"bad config: D from {where} outputs probabilities (it ends in a sigmoid) but loss "
            f"{loss} wants raw scores: return D's logits (drop the final sigmoid), use loss bce, "
            "or set model.d_output=logit if it was misread")


def _sigmoid_hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(output)


def adapt(D: nn.Module, kind: str, wants_probability: bool) -> nn.Module:
    """D as the loss wants it: a logit D gets a sigmoid after its forward for a probability
    loss (a hook, so the weights' names and D's class stay the user's)."""
    if kind == "logit" and wants_probability:
        D.register_forward_hook(_sigmoid_hook)
    return D


def check_user_model(model: Any, shape: str | tuple[int, ...], wants_probability: bool,
                     loss: str, data: str,
                     nets: tuple[nn.Module, nn.Module] | None = None) -> str:
    """Build ``model.name``'s nets (or take ``nets``), check them against the data's shape and
    the loss; return D's output kind. Called before a run directory exists."""
    shape = parse_shape(shape)
    if nets is None:
        if model.name == MODULES_REF:
            raise ConfigError("model.name 'modules' names networks handed to ganscope.train(G=..., "
                              "D=...) from Python: give path/to/nets.py:build instead")
        G, D = call_builder(load_builder(model.name), model.name, model.z_dim, shape)
        where = model.name
    else:
        G, D = nets
        where = f"{type(G).__name__}/{type(D).__name__}"
    kind = probe(G, D, model.z_dim, shape, where=where, data=data, d_output=model.d_output)
    check_kind(kind, wants_probability, loss, where)
    return kind


# --- the run's copy ---------------------------------------------------------------------------


def store(dest: Path, model: Any, shape: str | tuple[int, ...], kind: str,
          nets: tuple[nn.Module, nn.Module] | None = None) -> dict[str, Any]:
    """Write ``dest`` (RUN/model/): the source copy or pickled modules, and source.json."""
    shape = parse_shape(shape)
    dest.mkdir()
    info: dict[str, Any] = {"ref": model.name, "shape": list(shape), "d_output": kind}
    if nets is not None:
        torch.save({"G": nets[0], "D": nets[1]}, dest / NETS_FILE)
        info.update(kind="modules", file=NETS_FILE, sha256=_sha256(dest / NETS_FILE),
                    classes=[f"{type(m).__module__}.{type(m).__qualname__}" for m in nets])
    else:
        src = source_file(model.name)
        shutil.copyfile(src, dest / src.name)
        info.update(kind="file" if split_ref(model.name)[2] else "module", file=src.name,
                    origin=str(src), sha256=_sha256(dest / src.name))
    (dest / SOURCE_JSON).write_text(json.dumps(info, indent=2) + "\n")
    return info


def read_info(dest: Path, run_name: str) -> dict[str, Any]:
    f = dest / SOURCE_JSON
    try:
        info = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        raise RunError(f"run '{run_name}' trains its own networks but {f} is missing or "
                       "damaged: the run cannot rebuild them; retrain it") from None
    return info


def changed_source(dest: Path, run_name: str) -> str | None:
    """A line naming the original source file when it changed since the run copied it."""
    info = read_info(dest, run_name)
    origin = info.get("origin")
    if not origin or not Path(origin).is_file():
        return None
    sha = _sha256(Path(origin))
    if sha == info["sha256"]:
        return None
    return (f"{origin} changed since run '{run_name}' copied it (sha256 {info['sha256'][:12]} "
            f"-> {sha[:12]}): using the run's copy {dest / info['file']}")


def load_user_nets(dest: Path, model: Any, wants_probability: bool, run_name: str,
                   init: Callable[[nn.Module], None] | None = None
                   ) -> tuple[nn.Module, nn.Module]:
    """Rebuild a run's own G and D from ``dest`` (RUN/model/), D adapted to the loss."""
    info = read_info(dest, run_name)
    f = dest / info["file"]
    if not f.is_file() or _sha256(f) != info["sha256"]:
        raise RunError(f"{f} is missing or changed since run '{run_name}' was trained (sha256 "
                       f"{info['sha256'][:12]} recorded): restore it, or retrain the run")
    shape = tuple(info["shape"])
    if info["kind"] == "modules":
        try:
            # Not weights_only: these are the user's modules (code), pickled by this run's own
            # train() call and checked against the SHA-256 recorded beside them; trusting them
            # is trusting a nets.py, which importing runs too. Checkpoints (weights) still load
            # with weights_only=True.
            nets = torch.load(f, map_location="cpu", weights_only=False)
            G, D = nets["G"], nets["D"]
        except Exception as e:
            raise RunError(
                f"run '{run_name}' was trained on networks passed from Python "
                f"({', '.join(info.get('classes', []))}) and they cannot be rebuilt here "
                f"({_first_line(e)}): open it where those classes are defined, or train from a "
                "file with model.name=path/to/nets.py:build") from None
    else:
        origin = Path(info["origin"]).parent if info.get("origin") else None
        try:
            build = load_builder(info["ref"], file=f, origin_dir=origin)
            G, D = call_builder(build, info["ref"], model.z_dim, shape)
        except ConfigError as e:
            raise RunError(f"run '{run_name}': {e}") from None
        if init is not None:
            G.apply(init)
            D.apply(init)
    return G, adapt(D, info["d_output"], wants_probability)
