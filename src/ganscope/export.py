"""Export a run's generator for use without ganscope: safetensors, ONNX or a torch.export .pt2.

```
export_generator(run, "safetensors", "g.safetensors")     # weights + g.json (how to rebuild)
export_generator(run, "onnx", "g.onnx", best=True)        # onnxruntime: {"z": (B, z_dim)} -> images
export_generator(run, "pt2", "g.pt2", epoch=3)            # torch.export.load(...).module()(z)
```

Which generator: the last checkpoint's (``checkpoints/last.pt``) by default, ``epoch=N`` the
per-epoch one (``checkpoints/G-epoch-NNNN.pt``), ``best=True`` the best by FID that evaluation
recorded in meta.json. G is rebuilt from the run's config in eval mode (BatchNorm uses its
running statistics) with contiguous NCHW float32 weights, whatever layout training used
(``train.channels_last`` saves NHWC-strided tensors).

Every export writes a sidecar JSON next to the file (same stem, ``.json``): the model and the
kwargs that rebuild it, the inputs (``z``: float32 (batch, z_dim), standard normal), the output
(name, shape per sample, value range and how ganscope turns it into uint8 pixels), the run,
epoch, step and checkpoint it came from, and the versions. The same record is also stored inside
the file where the format has room for it (safetensors header, ONNX ``metadata_props``). All
files are written atomically (temp file + rename): an existing file is replaced whole.

ONNX goes through ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript), with a
dynamic batch axis on ``z`` and on the output; it needs the ``onnx`` extra.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save
from torch import nn

import ganscope
from ganscope.domains import domain_for
from ganscope.errors import RunError, UserError
from ganscope.io import atomic_write_bytes, file_sha256
from ganscope.models import MODELS
from ganscope.models import user as user_models
from ganscope.techniques.spectral import remove_spectral_norm
from ganscope.training.run import (
    Run,
    build_nets,
    checkpoint_epoch,
    generator_state,
    load_checkpoint,
)

FORMATS = ("safetensors", "onnx", "pt2")
SUFFIXES = {".safetensors": "safetensors", ".onnx": "onnx", ".pt2": "pt2"}
SIDECAR_FORMAT = "ganscope-generator-v1"
ONNX_EXTRA_HINT = "pip install 'ganscope[onnx]'"

# Image models whose G does not end in a squashing function: their raw output can leave
# [-1, 1], and ganscope clamps it before turning it into pixels (ganscope.data.to_uint8).
UNBOUNDED_IMAGE_MODELS = frozenset({"tiny-cnn"})


class ExportError(UserError):
    """An export that cannot be done as asked (no such checkpoint, unwritable output, ...)."""


# --- which checkpoint -------------------------------------------------------------------------


@dataclass
class Source:
    """The checkpoint file an export reads, and what it is."""

    path: Path
    which: str  # last | epoch | best


def choose_checkpoint(run: Run, epoch: int | None = None, best: bool = False) -> Source:
    """The checkpoint behind ``--epoch N`` / ``--best`` / (default) the last one."""
    _, path = run.checkpoint_for(epoch, best=best, error=ExportError,
                                 no_generators_hint="export the last one (leave out --epoch)")
    return Source(path, "best" if best else "epoch" if epoch is not None else "last")


# --- the generator ----------------------------------------------------------------------------


def build_kwargs(run: Run) -> dict[str, Any]:
    """``ganscope.models.build_models`` arguments that rebuild this run's G (D's are omitted)."""
    m = run.config().model
    kw: dict[str, Any] = {"name": m.name, "z_dim": int(m.z_dim)}
    if m.g_hidden:
        kw["g_hidden"] = [int(h) for h in m.g_hidden]
    if m.conditional != "none":  # G reads its class (codes) off z: ganscope.models.conditional
        kw["conditional"] = {"mode": m.conditional, "n_classes": int(m.n_classes),
                             "n_cont": int(m.n_cont)}
    return kw


def load_exportable(run: Run, src: Source) -> tuple[nn.Module, dict[str, Any]]:
    """G (eval mode, float32, contiguous NCHW weights, on the CPU) and its checkpoint."""
    ck = load_checkpoint(src.path)
    kw = build_kwargs(run)
    G, _ = build_nets(run)  # the one resolver: registered nets or the run's own copy
    try:
        G.load_state_dict(generator_state(ck))  # into G's own (contiguous NCHW) tensors
    except (KeyError, RuntimeError) as e:
        raise RunError(
            f"checkpoint {src.path} does not match model '{kw['name']}' in the run's config "
            f"({str(e).splitlines()[0][:80]}): the run directory is inconsistent") from None
    remove_spectral_norm(G)  # plain weights: the exported files load without ganscope
    return G.float().to(memory_format=torch.contiguous_format).eval(), ck


class ExportedGenerator(nn.Module):
    """The graph that is exported: named inputs in, the generator's output out.

    Conditional generators (none yet) will take a label too: give ``forward`` a ``label``
    argument, pass it on to G, and add its spec in :func:`input_specs` — the exporters take
    their example inputs, names and dynamic axes from that list.
    """

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)


def input_specs(kw: dict[str, Any]) -> list[dict[str, Any]]:
    """The exported graph's inputs, in order. Axis 0 of each is the (dynamic) batch."""
    specs = [{"name": "z", "dtype": "float32", "shape": ["batch", kw["z_dim"]],
              "distribution": "standard normal (torch.randn)"}]
    # A conditional model would append here, e.g.
    # {"name": "label", "dtype": "int64", "shape": ["batch"], "classes": n_classes}
    return specs


def example_inputs(specs: list[dict[str, Any]], batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs to trace with; batch 2, not 1, so that the batch axis is not specialised."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for s in specs:
        shape = [batch, *s["shape"][1:]]
        if s["dtype"] == "float32":
            out.append(torch.randn(*shape, generator=gen))
        else:
            out.append(torch.zeros(*shape, dtype=getattr(torch, s["dtype"])))
    return tuple(out)


def output_spec(run: Run, G: nn.Module, kw: dict[str, Any]) -> dict[str, Any]:
    with torch.no_grad():
        shape = list(G(*example_inputs(input_specs(kw))).shape[1:])
    if domain_for(run.config().data.name).kind == "points" or shape == [2]:
        return {"name": "points", "kind": "points", "shape": shape, "dtype": "float32",
                "value_range": None,
                "meaning": "2-D points on the training data's own scale (no squashing)"}
    # a user's own G may end in anything: say "clamp first" rather than promise tanh
    bounded = (kw["name"] not in UNBOUNDED_IMAGE_MODELS
               and not user_models.is_user_model(kw["name"]))
    return {"name": "images", "kind": "images", "layout": "NCHW", "shape": shape,
            "dtype": "float32", "value_range": [-1.0, 1.0], "bounded": bounded,
            "to_uint8": "round((clamp(x, -1, 1) + 1) * 127.5)",
            "meaning": ("pixels in [-1, 1] (tanh)" if bounded else
                        "pixels meant to lie in [-1, 1], but G is unbounded: clamp first")}


def describe(run: Run, src: Source, G: nn.Module, ck: dict[str, Any], fmt: str,
             out: Path) -> dict[str, Any]:
    """The sidecar record: what the file holds and how to use or rebuild it."""
    kw = build_kwargs(run)
    weights = (f"safetensors.torch.load_file({out.name!r})" if fmt == "safetensors" else
               f"torch.load({str(src.path.relative_to(run.path))!r}, weights_only=True)['G']")
    # the code runs as it stands: it imports what loads the weights
    imports = "import safetensors.torch\n" if fmt == "safetensors" else "import torch\n"
    if user_models.is_user_model(kw["name"]):
        # the user's own nets: rebuilt from the run's copy of their source (RUN/model/)
        summary = f"the user's own networks ({kw['name']}), kept in the run's model/"
        rebuild = {"run_copy": user_models.STORE_DIR, "ref": kw["name"],
                   "code": imports + "from ganscope.training.run import Run, build_nets\n"
                           f"G, _ = build_nets(Run({str(run.path)!r}))\n"
                           f"G.load_state_dict({weights}); G.eval()"}
    elif "conditional" in kw:
        summary = MODELS.get(kw["name"]).summary
        c = kw["conditional"]
        hidden = [f"g_hidden={tuple(kw['g_hidden'])!r}"] if "g_hidden" in kw else []
        args = ", ".join([repr(kw["name"]), f"base_z_dim({kw['z_dim']}, {c['n_classes']})",
                          *hidden])
        rebuild = {"registry": "ganscope.models.conditional.wrap", "kwargs": kw,
                   "code": imports + "from ganscope.models import build_models\n"
                           "from ganscope.models.conditional import base_z_dim, wrap\n"
                           f"G, _ = wrap(*build_models({args}), {c['mode']!r}, "
                           f"{c['n_classes']}, {c['n_cont']})\n"
                           f"G.load_state_dict({weights}); G.eval()"}
    else:
        summary = MODELS.get(kw["name"]).summary
        args = ", ".join([repr(kw["name"]), str(kw["z_dim"])]
                         + ([f"g_hidden={tuple(kw['g_hidden'])!r}"] if "g_hidden" in kw else []))
        rebuild = {"registry": "ganscope.models.build_models", "kwargs": kw,
                   "code": imports + "from ganscope.models import build_models\n"
                           f"G, _ = build_models({args})\n"
                           f"G.load_state_dict({weights}); G.eval()"}
    record = {
        "format": SIDECAR_FORMAT,
        "file": out.name,
        "file_format": fmt,
        "model": {"name": kw["name"], "class": f"{type(G).__module__}.{type(G).__qualname__}",
                  "summary": summary},
        "z_dim": kw["z_dim"],
        "inputs": input_specs(kw),
        "output": output_spec(run, G, kw),
        "run": run.name,
        "epoch": checkpoint_epoch(ck),
        "step": ck.get("step"),
        "checkpoint": str(src.path.relative_to(run.path)),
        "checkpoint_sha256": file_sha256(src.path),
        "selected": src.which,
        "ganscope_version": ganscope.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "rebuild": rebuild,
    }
    if ck.get("iter"):  # last.pt of a run stopped mid-epoch: steps into the next epoch
        record["iter"] = int(ck["iter"])
    if src.which == "best":
        record["fid"] = run.meta().get("best", {}).get("fid")
    return record


# --- output -----------------------------------------------------------------------------------


def sidecar_path(out: str | os.PathLike) -> Path:
    return Path(out).with_suffix(".json")


def check_output(out: str | os.PathLike) -> Path:
    """Refuse an output that cannot be written before any work is done."""
    out = Path(out)
    if out.suffix == ".json":
        raise ExportError(f"--out {out} ends in .json, the name of the sidecar file: "
                          "use e.g. .safetensors, .onnx or .pt2")
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder: give a file name, e.g. {out / 'G.onnx'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as e:
        raise ExportError(f"cannot write into {out.parent} ({e.strerror or type(e).__name__}): "
                          "give an --out in a writable folder") from None
    return out


def format_for(fmt: str | None, out: str | os.PathLike) -> str:
    """The format asked for, else the one the file name implies."""
    if fmt is None:
        fmt = SUFFIXES.get(Path(out).suffix.lower())
        if fmt is None:
            raise ExportError(f"cannot tell the format from {out}: give --format "
                              f"{'|'.join(FORMATS)} (or name the file .safetensors, .onnx, .pt2)")
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return fmt


def require_onnx() -> None:
    """The onnx extra (onnx + onnxscript drive the exporter), or one line saying how to get it."""
    try:
        # local: onnx and onnxscript are the optional onnx extra (ganscope[onnx])
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ExportError(f"ONNX export needs the onnx extra ({e.name or e} is missing): "
                          f"{ONNX_EXTRA_HINT}") from None


@contextmanager
def _quiet_exporters() -> Iterator[None]:
    """torch.export / torch.onnx log and warn about things that do not concern the user
    (torchvision ops not registered, deprecations); keep stderr to ganscope's own lines."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export",
                                               "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def _dynamic_shapes(n_inputs: int) -> tuple[dict[int, Any], ...]:
    batch = torch.export.Dim("batch", min=1)
    return tuple({0: batch} for _ in range(n_inputs))


def _exporter_failed(fmt: str, kw: dict[str, Any], e: Exception) -> ExportError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    first = re.sub(r"\x1b\[[0-9;]*m", "", first)[:160]
    return ExportError(f"cannot export model '{kw['name']}' to {fmt} ({type(e).__name__}: "
                       f"{first}): try another --format")


def _safetensors_bytes(G: nn.Module, record: dict[str, Any]) -> bytes:
    tensors = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    return safetensors_save(tensors, metadata={"ganscope": json.dumps(record, sort_keys=True)})


def _onnx_bytes(G: nn.Module, kw: dict[str, Any], record: dict[str, Any]) -> tuple[bytes, int]:
    # local: onnx is the optional onnx extra, checked by require_onnx()
    import onnx

    specs = input_specs(kw)
    with _quiet_exporters(), torch.no_grad():
        try:
            program = torch.onnx.export(
                ExportedGenerator(G).eval(), example_inputs(specs), None, dynamo=True,
                input_names=[s["name"] for s in specs], output_names=[record["output"]["name"]],
                dynamic_shapes=_dynamic_shapes(len(specs)), external_data=False,
                optimize=True, verbose=False)
        except Exception as e:  # the exporter raises many types; one line for the user
            raise _exporter_failed("onnx", kw, e) from None
    proto = program.model_proto
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    record["onnx_opset"] = int(opset)
    onnx.helper.set_model_props(proto, {"ganscope": json.dumps(record, sort_keys=True)})
    return proto.SerializeToString(), opset


def _pt2_bytes(G: nn.Module, kw: dict[str, Any]) -> bytes:
    specs = input_specs(kw)
    with _quiet_exporters(), torch.no_grad():
        try:
            program = torch.export.export(ExportedGenerator(G).eval(), example_inputs(specs),
                                          dynamic_shapes=_dynamic_shapes(len(specs)))
        except Exception as e:
            raise _exporter_failed("pt2", kw, e) from None
        buf = io.BytesIO()
        torch.export.save(program, buf)
    return buf.getvalue()


def export_generator(run: Run, fmt: str | None, out: str | os.PathLike, epoch: int | None = None,
                     best: bool = False) -> Path:
    """Write run's generator to ``out`` in ``fmt`` (safetensors | onnx | pt2; None: from the
    suffix) plus its sidecar ``out.with_suffix('.json')``; return ``out``.

    The last checkpoint's G by default, ``epoch=N``'s, or (``best``) the best by FID recorded
    in meta.json. Expected failures raise UserError subclasses (one line each)."""
    fmt = format_for(fmt, out)
    src = choose_checkpoint(run, epoch, best)
    out = check_output(out)
    if fmt == "onnx":
        require_onnx()
    G, ck = load_exportable(run, src)
    kw = build_kwargs(run)
    record = describe(run, src, G, ck, fmt, out)
    if fmt == "safetensors":
        data = _safetensors_bytes(G, record)
    elif fmt == "onnx":
        data, _ = _onnx_bytes(G, kw, record)
    else:
        data = _pt2_bytes(G, kw)
    atomic_write_bytes(out, data)
    atomic_write_bytes(sidecar_path(out), (json.dumps(record, indent=2) + "\n").encode())
    return out
