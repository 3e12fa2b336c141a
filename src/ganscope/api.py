"""ganscope from Python: a notebook's few lines over the library calls the commands make.

```python
import ganscope as gs
run = gs.train("e1-mlp", epochs=3, seed=1)   # a preset, a YAML path, a config dict or RunConfig
run.plot()                                    # loss and D-output curves, shown inline
run.generate(8, seed=23231)                   # a uint8 tensor (N, C, H, W), shown as a grid
run.evaluate()                                # the metrics: a dict, shown as a table
gs.runs(); gs.load_run("my-run"); gs.compare(["a", "b"])
```

Why a module of its own: the commands print and exit, a notebook wants objects back. Each
function here does what its command does with the same library calls (config, domains,
``training.run.Run.create``, the one training loop, ``evaluate_run``, ``sample``), so a run
made here is an ordinary run every command reads, and the other way round. Objects display
themselves in Jupyter (``_repr_html_`` / ``_repr_png_``): runs with their latest sample grid,
generated images as a grid, metrics and run lists as tables. Errors are the same one-line
``UserError``s the commands print.

Ctrl-C (a kernel interrupt) stops training at the next step with a checkpoint, as in the shell;
``train`` then returns the interrupted run, and ``run.resume()`` continues it exactly.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import html
import io
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from ganscope.config import MIN_EVAL_N, RunConfig, from_dict, load_config, save_yaml
from ganscope.diagnostics import diagnose
from ganscope.domains import domain_for, load_dataset
from ganscope.errors import ConfigError, TrainingInterrupted, UserError
from ganscope.io import atomic_write_text
from ganscope.latent.generate import check_output_path, save_images
from ganscope.metrics.registry import METRICS
from ganscope.metrics.table import COLUMNS, metric_cells, present_columns, provenance_line
from ganscope.models import dcgan_init
from ganscope.models.user import MODULES_REF
from ganscope.render import grid_array
from ganscope.sampling import latents_from_seed, sample
from ganscope.sinks import check_sinks_available
from ganscope.tables import fmt_number, format_table
from ganscope.training import run as _run
from ganscope.training.evaluation import best_by_fid, comparable, evaluate_run
from ganscope.training.loop import count_steps_per_epoch, resolve_device
from ganscope.training.loop import train as train_loop
from ganscope.viz.run_figures import write_run_figures

__all__ = ["Figures", "Images", "Metrics", "Run", "Table", "compare", "load_run", "run_config",
           "resume", "runs", "train"]

_SECTIONS = ("data", "model", "loss", "optim", "train", "eval", "tech", "log")
_NAMED = ("data", "model", "loss", "optim")  # a string for the section sets its name


# --- display helpers --------------------------------------------------------------------------


def _png_tag(png: bytes, title: str = "") -> str:
    b64 = base64.b64encode(png).decode()
    return (f'<img src="data:image/png;base64,{b64}" title="{html.escape(title)}" '
            'style="image-rendering: pixelated; max-width: 100%"/>')


def _html_table(head: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                  for r in rows)
    foot = f"<p><small>{html.escape(note)}</small></p>" if note else ""
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>{foot}"


class Images(torch.Tensor):
    """Generated images: a uint8 tensor (N, C, H, W) that a notebook shows as one grid.

    Arithmetic on it gives plain tensors (only what ``generate`` returned displays as a grid).
    """

    nrow: int | None = None

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))

    def png(self, scale: int = 2) -> bytes:
        """The grid as PNG bytes, each pixel ``scale`` x ``scale`` (as ``generate --out``)."""


        arr = grid_array(self.as_subclass(torch.Tensor).cpu(), nrow=self.nrow)
        img = Image.fromarray(arr)
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    def _repr_png_(self) -> bytes | None:
        if self.dtype != torch.uint8 or self.dim() != 4 or self.shape[1] not in (1, 3):
            return None
        return self.png()

    def save(self, path: str | os.PathLike, scale: int = 2) -> Path:
        """Write the grid (``.png``) or the raw uint8 array (``.npy``), as ``ganscope generate``."""

        check_output_path(path)
        a = self.as_subclass(torch.Tensor).numpy()
        return save_images(a[:, 0] if a.shape[1] == 1 else a, path, nrow=self.nrow,
                           scale=scale)


class Figures(list):
    """Figure files (PNG paths) that a notebook shows inline."""

    def _repr_html_(self) -> str:
        return "".join(_png_tag(Path(p).read_bytes(), str(p)) for p in self
                       if str(p).endswith(".png"))


class Table(list):
    """Rows (dicts) shown as a table: ``gs.runs()``, ``gs.compare()``."""

    def __init__(self, rows: Iterable[dict[str, Any]], columns: Sequence[str], note: str = "",
                 headers: Sequence[str] | None = None):
        super().__init__(rows)
        self.columns, self.note = list(columns), note
        self.headers = list(headers) if headers else [c.upper() for c in self.columns]

    def _cells(self) -> list[list[str]]:
        return [[_cell(r.get(c)) for c in self.columns] for r in self]

    def __str__(self) -> str:
        text = format_table(self.headers, self._cells())
        return text + (f"\n{self.note}" if self.note else "")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return _html_table(self.headers, self._cells(), self.note)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return fmt_number(v, ".4g")
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "-"
    return str(v)


class Metrics(dict):
    """The metrics of the last evaluated checkpoint (``m["fid"]``); ``records`` holds every
    record with its provenance (extractor, reference, n, seed, checkpoint), shown as a table."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__(records[-1]["metrics"] if records else {})
        self.records = records

    def _table(self) -> tuple[list[str], list[list[str]], str]:
        cols = present_columns(self.records)
        rows = [[str(r.get("epoch", "-"))] + metric_cells(r["metrics"], cols)
                for r in self.records]
        note = provenance_line(self.records[-1]) if self.records else ""
        return ["EPOCH"] + [c[1] for c in cols], rows, note

    def __str__(self) -> str:
        if not self.records:
            return "no metrics"
        head, rows, note = self._table()
        return format_table(head, rows) + "\n" + note

    def _repr_html_(self) -> str:
        if not self.records:
            return "<p>no metrics</p>"
        return _html_table(*self._table())


# --- runs -------------------------------------------------------------------------------------


class Run(_run.Run):
    """A run directory, as every command sees it, with a notebook's conveniences."""

    def __repr__(self) -> str:
        return f"Run({self.name!r}, {self._summary()})"

    def _summary(self) -> str:
        try:
            meta, cfg = self.meta(), self.config()
        except UserError as e:
            return f"damaged: {e}"
        planned = meta.get("epochs_planned", cfg.train.epochs)
        return (f"{self.status()}, {meta.get('epochs_done', 0)}/{planned} epochs, "
                f"model {cfg.model.name}, data {cfg.data.name}, {self.path}")

    def _repr_html_(self) -> str:
        out = f"<p><b>{html.escape(self.name)}</b>: {html.escape(self._summary())}</p>"
        last = self.meta().get("last") or {}
        if last:
            out += "<p>" + ", ".join(f"{k} {v:.4f}" for k, v in last.items()
                                     if isinstance(v, (int, float))) + "</p>"
        eps = self.sample_epochs()
        if eps:
            out += _png_tag(self.sample_grid(eps[-1]).read_bytes(), f"epoch {eps[-1]}")
        return out

    @property
    def cfg(self) -> RunConfig:
        return self.config()

    def generator(self, epoch: int | None = None, device: str = "cpu", raw: bool = False
                  ) -> nn.Module:
        """G in eval mode (the last checkpoint, or epoch ``epoch``'s), as every command loads
        it: G's moving average for a run with ``tech.ema``, its trained weights with ``raw``."""
        return _run.load_generator(self, epoch, device, raw)

    def plot(self) -> Figures:
        """Write and show the loss and D-output curves (``ganscope plot``)."""

        return Figures(write_run_figures(self))

    def grid(self, epoch: int | None = None) -> Figures:
        """The sample grid training wrote after ``epoch`` (default: the latest)."""
        eps = self.sample_epochs()
        if not eps:
            raise _run.RunError(f"run '{self.name}' has no sample grid yet")
        return Figures([self.sample_grid(epoch if epoch is not None else eps[-1])])

    def generate(self, n: int = 8, seed: int = 0, *, epoch: int | None = None,
                 z: torch.Tensor | None = None, nrow: int | None = None) -> Images:
        """Images from G for ``torch.manual_seed(seed); randn(n, z_dim)`` (or the given z):
        exactly ``ganscope generate RUN --seed S -n N``'s."""

        z_dim = self.config().model.z_dim
        if z is None:
            if n < 1:
                raise UserError("n must be at least 1")
            z = latents_from_seed(seed, n, z_dim)
        elif z.dim() != 2 or z.shape[1] != z_dim:
            raise UserError(f"z must have shape (N, {z_dim}), not {tuple(z.shape)}")
        out = sample(self.generator(epoch), z.float(),
                     to_samples=domain_for(self.config().data.name))
        if out.dtype != torch.uint8:  # 2-D points: a plain float tensor (N, 2)
            return out
        images = out.as_subclass(Images)
        images.nrow = nrow
        return images

    def evaluate(self, n: int | None = None, *, checkpoint: str | int = "last",
                 metrics: str | None = None, reference: str | None = None,
                 seed: int | None = None, save: bool = True, progress: bool = True,
                 data_dir: str | None = None, raw: bool = False) -> Metrics:
        """Score G (``ganscope eval RUN``): ``checkpoint`` last, all or an epoch; ``n``
        samples (default the run's eval.n); the records go to metrics.jsonl when ``save``;
        ``raw``: the trained weights of a run with tech.ema (``eval --no-ema``)."""

        ec = dataclasses.replace(self.config().eval)
        if n is not None:
            if n < MIN_EVAL_N:
                raise UserError(f"n must be at least {MIN_EVAL_N}")
            ec.n = n
        for key, v in (("metrics", metrics), ("reference", reference), ("seed", seed)):
            if v is not None:
                setattr(ec, key, v)
        for m in ec.metric_names():
            METRICS.get(m)
        return Metrics(evaluate_run(self, checkpoint, ec, data_dir=data_dir,
                                    progress=progress, save=save, raw=raw))

    def metrics(self) -> Metrics:
        """Every evaluation recorded in metrics.jsonl (training's and ``evaluate``'s)."""
        return Metrics(self.read_metrics())

    def resume(self, epochs: int | None = None, **kwargs: Any) -> Run:
        """Continue an interrupted run (or extend a finished one to ``epochs``)."""
        return resume(self, epochs=epochs, **kwargs)


def load_run(name_or_path: str | os.PathLike, runs_dir: str | os.PathLike | None = None
             ) -> Run:
    """A run by its name (under ``runs_dir``, default ``$GANSCOPE_RUNS`` or ./runs) or path."""
    return Run(_run.resolve_run(str(name_or_path), runs_dir).path)


def _as_run(run: str | os.PathLike | _run.Run, runs_dir: str | os.PathLike | None) -> Run:
    return Run(run.path) if isinstance(run, _run.Run) else load_run(run, runs_dir)


def runs(runs_dir: str | os.PathLike | None = None) -> Table:
    """Every run under ``runs_dir`` (``ganscope runs``): status, epochs, losses, best FID,
    flags."""

    rows = []
    for r in _run.iter_runs(runs_dir):
        try:
            meta, cfg = r.meta(), r.config()
            best = meta.get("best")
            rows.append({
                "name": r.name, "preset": cfg.preset, "model": cfg.model.name,
                "epochs": f"{meta.get('epochs_done', 0)}/"
                          f"{meta.get('epochs_planned', cfg.train.epochs)}",
                "status": r.status(), "loss_d": (meta.get("last") or {}).get("loss_d"),
                "loss_g": (meta.get("last") or {}).get("loss_g"),
                "best_fid": f"{best['fid']:.2f}@{best['epoch']}" if best else None,
                "flags": [f.code for f in diagnose(r)], "path": str(r.path)})
        except UserError as e:
            rows.append({"name": r.name, "status": "damaged", "error": str(e),
                         "path": str(r.path)})
    return Table(rows, ["name", "preset", "model", "epochs", "status", "loss_d", "loss_g",
                        "best_fid", "flags"],
                 "" if rows else f"no runs in {_run.runs_root(runs_dir)}")


def compare(runs: Sequence[str | os.PathLike | _run.Run],
            runs_dir: str | os.PathLike | None = None) -> Table:
    """The latest evaluation of each run, with its best FID and flags (``ganscope compare``)."""

    rows, lasts = [], []
    keys = [c[0] for c in COLUMNS]
    titles = {c[0]: c[1] for c in COLUMNS}
    for item in runs:
        r = _as_run(item, runs_dir)
        records = r.read_metrics()
        last = max(records, key=lambda x: (x["epoch"], x["time"])) if records else None
        best = best_by_fid(records)
        if last:
            lasts.append(last)
        m = last["metrics"] if last else {}
        rows.append({"run": r.name, "preset": r.config().preset,
                     "epoch": last["epoch"] if last else None,
                     **{k: m.get(k) for k in keys},
                     "best_fid": (f"{best['metrics']['fid']:.2f}@{best['epoch']}"
                                  if best else None),
                     "flags": [f.code for f in diagnose(r)]})
    shown = [k for k in keys if any(row[k] is not None for row in rows)]
    note = ("these runs were evaluated with different extractors, references or n: their "
            "numbers are not comparable" if any(not comparable(x, lasts[0]) for x in lasts[1:])
            else "")
    return Table(rows, ["run", "preset", "epoch", *shown, "best_fid", "flags"], note,
                 ["RUN", "PRESET", "EPOCH", *[titles[k] for k in shown], "BEST_FID@EP", "FLAGS"])


# --- configs and training ---------------------------------------------------------------------


def _merge(node: dict[str, Any], key: str, value: Any, path: str) -> None:
    if isinstance(value, dict) and isinstance(node.get(key), dict):
        for k, v in value.items():
            _merge(node[key], k, v, f"{path}.{k}")
        return
    if key not in node:
        raise ConfigError(f"unknown config key '{path}'")
    node[key] = str(value) if isinstance(value, os.PathLike) else value


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    """One keyword override: ``seed=1``, a field name found in one section (``epochs=3``,
    ``lr=1e-4``, ``limit=500``), ``section__field=...``, a section's name (``loss="wgan-gp"``,
    ``model="nets.py:build"``) or a dict for a section (``optim={"lr": 1e-4}``)."""
    if "__" in key:
        parts = key.split("__")
        node = data
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"unknown config key '{'.'.join(parts)}'")
            node = node[p]
        _merge(node, parts[-1], value, ".".join(parts))
        return
    if key in data and not isinstance(data[key], dict):  # seed, preset
        data[key] = value
        return
    if key in _SECTIONS:
        if isinstance(value, str) and key in _NAMED:
            data[key]["name"] = value
        elif isinstance(value, dict):
            _merge(data, key, value, key)
        else:
            raise ConfigError(f"{key}= takes a dict of its keys"
                              + (" or a name" if key in _NAMED else ""))
        return
    owners = [s for s in _SECTIONS if key in data[s]]
    if len(owners) == 1:
        _merge(data[owners[0]], key, value, f"{owners[0]}.{key}")
        return
    if owners:
        raise ConfigError(f"keyword {key}= is ambiguous: write "
                          + " or ".join(f"{s}__{key}=" for s in owners))
    raise ConfigError(f"unknown config keyword {key}=: give a field of "
                      f"{', '.join(_SECTIONS)} (epochs=, lr=, limit=, ...) or section__field=")


def run_config(config: str | os.PathLike | dict[str, Any] | RunConfig = "e1-mlp",
               data_dir: str | os.PathLike | None = None, **overrides: Any) -> RunConfig:
    """The validated RunConfig a ``train`` call with these arguments would save (``ganscope
    config``): a preset name, a YAML path, a dict of sections or a RunConfig, then the
    keyword overrides, then ``data_dir``."""
    return _build_config(config, data_dir, overrides)


def _build_config(config: Any, data_dir: Any, overrides: dict[str, Any]) -> RunConfig:
    if isinstance(config, RunConfig):
        cfg = copy.deepcopy(config)
    elif isinstance(config, dict):
        cfg = from_dict(copy.deepcopy(config))
    elif isinstance(config, (str, os.PathLike)):
        cfg = load_config(str(config))
    else:
        raise ConfigError(f"config must be a preset name, a YAML path, a dict or a RunConfig, "
                          f"not {type(config).__name__}")
    data = cfg.to_dict()
    for key, value in overrides.items():
        _set(data, key, value)
    cfg = from_dict(data)
    if data_dir is not None:
        cfg.data.dir = str(Path(data_dir).resolve())
    return cfg.validate()


def train(config: str | os.PathLike | dict[str, Any] | RunConfig = "e1-mlp", *,
          name: str | None = None, runs_dir: str | os.PathLike | None = None,
          G: nn.Module | None = None, D: nn.Module | None = None,
          data_dir: str | os.PathLike | None = None, progress: bool = True, plot: bool = True,
          should_stop: Callable[[int], bool] | None = None, **overrides: Any) -> Run:
    """Train a new run (``ganscope train``) and return it.

    ``config``: a preset (``"e1-mlp"``), a YAML path, a dict of sections or a RunConfig;
    ``overrides``: config keys as keywords (``epochs=3``, ``seed=1``, ``lr=1e-4``,
    ``loss="wgan-gp"``, ``model="nets.py:build"``, ``train__batch_size=32``). ``G``, ``D``:
    your own modules (copies are trained; yours stay as they are; the run keeps the pickled
    copies in RUN/model/, so it reopens wherever their classes can be imported).
    ``should_stop(step)``: stop at a step as Ctrl-C does (the run is left resumable).
    """
    if (G is None) != (D is None):
        raise ConfigError("give both G= and D= (your generator and discriminator), or neither")
    nets = None
    if G is not None:
        overrides["model__name"] = MODULES_REF
    cfg = _build_config(config, data_dir, overrides)
    if G is not None:
        nets = (copy.deepcopy(G).cpu(), copy.deepcopy(D).cpu())
        if cfg.model.init == "dcgan":
            for net in nets:
                net.apply(dcgan_init)
    else:
        cfg.check_model_fits_data()  # before anything is read or written
    check_sinks_available(cfg.log.sinks)
    resolve_device(cfg.train.device)
    dataset = load_dataset(cfg.data, cfg.seed)  # a data error leaves nothing behind
    count_steps_per_epoch(len(dataset.images), cfg.train)
    if name is None:  # two quick runs of one preset within a second must not collide
        name = _run.auto_name(cfg.preset)
        root, base, i = _run.runs_root(runs_dir), name, 1
        while (root / name).exists():
            i += 1
            name = f"{base}-{i}"
    run = Run(Run.create(cfg, runs_dir, name, nets=nets).path)
    return _train(run, dataset, False, progress, plot, should_stop)


def resume(run: str | os.PathLike | _run.Run, *, epochs: int | None = None,
           runs_dir: str | os.PathLike | None = None, progress: bool = True, plot: bool = True,
           should_stop: Callable[[int], bool] | None = None, **execution: Any) -> Run:
    """Continue an interrupted run exactly where it stopped (``ganscope train --resume``);
    ``epochs`` extends a finished one. ``execution``: how to run (device, precision, compile,
    threads, channels_last), which may change."""

    r = _as_run(run, runs_dir)
    cfg = r.config()
    data = cfg.to_dict()
    if epochs is not None:
        data["train"]["epochs"] = epochs
    for key, value in execution.items():
        if key not in _run.EXECUTION_KEYS:
            raise ConfigError(f"only epochs and how to run ({', '.join(_run.EXECUTION_KEYS)}) "
                              f"can change when resuming (got {key}=): start a new run")
        data["train"][key] = value
    new = from_dict(data).validate()
    with r.training_lock():
        dataset = load_dataset(new.data, new.seed)
        if new != cfg:  # only now: a data error must leave the run as it was
            atomic_write_text(r.config_path, save_yaml(new))
        print(f"resuming {r.path}", file=sys.stderr)
        return _train(r, dataset, True, progress, plot, should_stop)


def _train(run: Run, dataset: Any, resume_: bool, progress: bool, plot: bool,
           should_stop: Callable[[int], bool] | None) -> Run:
    try:
        train_loop(run, dataset=dataset, resume=resume_, progress=progress,
                   should_stop=should_stop)
    except TrainingInterrupted:
        print(f"interrupted: checkpoint saved in {run.path}; continue with run.resume() "
              f"(or `ganscope train --resume {run.path}`)", file=sys.stderr)
        return run
    if plot:
        write_run_figures(run)
    return run
