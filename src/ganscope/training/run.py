"""The run directory: the contract between training and every tool that reads its results.

```
runs/<name>/
  config.yaml            the resolved RunConfig (re-create the run from it)
  meta.json              status, seed, versions, git commit, device, times, progress, data provenance
  events.jsonl           one line per generator step: loss_d, loss_g, d_x, d_g_z
  fixed_z.npy            the latent vectors behind every samples/ grid
  checkpoints/last.pt    full training state (resume); G-epoch-NNNN.pt: generator per epoch
  samples/epoch-NNNN.png sample grid from fixed_z after each epoch
  figures/               loss and D-output curves (ganscope plot)
  train.lock             who trains this run now (pid, host, start); flock-held while training
  .meta.lock             serialises read-modify-write of meta.json and metrics.jsonl
```
Every file is written atomically (temp file + rename), so a crash never leaves half a file;
events.jsonl is appended, and a torn last line (a crash mid-append) is skipped by readers.

One writer per run: training holds an exclusive ``flock`` on ``train.lock`` for as long as it
runs. The kernel drops the lock when the process dies (even on ``kill -9``), so a stale lock
needs no clean-up and a run whose meta still says ``running`` but whose lock is free has died.
Other commands (eval, directions, probe) change meta.json and metrics.jsonl only under
``.meta.lock``, so two processes' read-modify-writes never lose each other's fields.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import platform
import re
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ganscope.config import RunConfig, from_dict, load_yaml, save_yaml
from ganscope.environment import now_iso
from ganscope.errors import ConfigError, RunError, UserError
from ganscope.io import atomic_write_text, file_mode, unlink_quietly, write_failed
from ganscope.losses import LOSSES
from ganscope.models import build_models, dcgan_init, has_conv
from ganscope.models import user as user_models
from ganscope.models.conditional import base_z_dim
from ganscope.models.conditional import wrap as wrap_conditional
from ganscope.techniques.spectral import apply_spectral_norm

CHECKPOINT_FORMAT = "ganscope-checkpoint-v1"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# The names inside a run directory; only `Run` joins them to a path.
CONFIG_FILE = "config.yaml"
PROBE_DIR = "latent-probe"  # RUN/figures/latent-probe: `ganscope latent probe`'s files
_GENERATOR_NAME = "G-epoch-{epoch:04d}.pt"
_GENERATOR_RE = re.compile(r"G-epoch-(\d+)\.pt")
_SAMPLE_NAME = "epoch-{epoch:04d}.png"
SAMPLE_RE = re.compile(r"^epoch-(\d{4,6})\.png$")  # also the server's whitelist of sample files

# events.jsonl: one row per generator step, {"step", "epoch", *EVENT_KEYS}.
EVENT_KEYS = ("loss_d", "loss_g", "d_x", "d_g_z")

# How a run is executed, never what it computes: a batch (experiments.runner) treats two configs
# differing only here as the same run, and `train --resume` may change them.
EXECUTION_KEYS = ("device", "precision", "compile", "channels_last", "threads")
# The --set keys `ganscope train --resume` accepts: more epochs, how to run, how to log.
RESUMABLE_KEYS = ("train.epochs", "train.minutes", *(f"train.{k}" for k in EXECUTION_KEYS), "log.sinks")


# --- warnings and checkpoints -----------------------------------------------------------------


class RunWarning(UserWarning):
    """Something in a run directory was skipped (a torn line); the CLI prints ``warning: ...``."""


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; corrupt files raise RunError, not a traceback."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint {path} not found: the run has not finished an epoch yet")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise RunError(
            f"corrupt checkpoint {path} ({msg}): delete it and resume from an earlier one, "
            "or retrain the run"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"corrupt checkpoint {path}: not a ganscope checkpoint; retrain the run")
    return obj


_WARNED: set[str] = set()  # the changed-source lines already shown in this process


def build_nets(run: Run, cfg: RunConfig | None = None, sigmoid: bool = True
               ) -> tuple[nn.Module, nn.Module]:
    """A run's G and D, freshly initialised: the one resolver of every caller that rebuilds a
    run's nets (training, resuming, ``load_generator`` and so every command over a run).

    Registered models come from ``build_models``; a user's own (``model.name:
    path/to/nets.py:build``, or modules from ``ganscope.train(G=..., D=...)``) from the copy
    in ``RUN/model/`` (``ganscope.models.user``), with a RunWarning when the original file has
    changed since. ``sigmoid``: whether the loss wants D's outputs as probabilities."""
    cfg = cfg or run.config()
    m = cfg.model
    if user_models.is_user_model(m.name):
        store = run.path / user_models.STORE_DIR
        note = user_models.changed_source(store, run.name)
        if note and note not in _WARNED:  # once per process, not once per checkpoint read
            _WARNED.add(note)
            warnings.warn(note, RunWarning, stacklevel=2)
        G, D = user_models.load_user_nets(store, m, sigmoid, run.name,
                                          init=dcgan_init if m.init == "dcgan" else None)
    else:
        # a conditional or InfoGAN pair wraps a base pair that takes the codes as inputs
        z_in = m.z_dim if m.conditional == "none" else base_z_dim(m.z_dim, m.n_classes)
        G, D = build_models(m.name, z_in, sigmoid, m.init, m.g_hidden, m.d_hidden)
        G, D = wrap_conditional(G, D, m.conditional, m.n_classes, m.n_cont, m.aux_head)
    # after the init: spectral norm divides the initialised weights, and it changes the state
    # dict's keys, so every rebuilder must apply it for a checkpoint to load
    sn = cfg.tech.spectral_norm
    if sn in ("d", "gd"):
        apply_spectral_norm(D)
    if sn == "gd":
        apply_spectral_norm(G)
    return G, D


def generator_state(ck: dict[str, Any], raw: bool = False) -> dict[str, torch.Tensor]:
    """The generator weights a reader of checkpoint ``ck`` means: G's moving average when the
    run kept one (``tech.ema``), G's trained weights when it did not or ``raw`` asks."""
    return ck["G"] if raw or "G_ema" not in ck else ck["G_ema"]


def load_generator(run: Run, epoch: int | None = None, device: str | torch.device = "cpu",
                   raw: bool = False) -> nn.Module:
    """G in eval mode, from epoch ``epoch``'s weights or (default) the latest checkpoint.

    A run trained with ``tech.ema`` stores the moving average of G beside G; it is the one
    every reader gets (sampling, evaluation, the latent tools, the server), as it is the one
    training evaluated. ``raw=True`` gives the trained weights themselves."""
    cfg = run.config()
    _, path = run.checkpoint_for(epoch)
    ck = load_checkpoint(path)
    G, _ = build_nets(run, cfg)
    try:
        G.load_state_dict(generator_state(ck, raw))
    except (KeyError, RuntimeError) as e:
        raise RunError(
            f"checkpoint {path} does not match model '{cfg.model.name}' in the run's config "
            f"({str(e).splitlines()[0][:80]}): the run directory is inconsistent"
        ) from None
    if cfg.train.channels_last and has_conv(G):
        # the layout G was trained and evaluated in: other layouts round differently, and
        # `ganscope eval` must reproduce the training-time scores exactly
        G = G.to(memory_format=torch.channels_last)
    return G.to(device).eval()


# --- locating runs ----------------------------------------------------------------------------


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """``--runs-dir``, else ``$GANSCOPE_RUNS``, else ``./runs``."""
    return Path(runs_dir or os.environ.get("GANSCOPE_RUNS") or "runs")


def resolve_run(name_or_path: str, runs_dir: str | os.PathLike | None = None) -> Run:
    """A run by its name (under the runs dir) or by its path."""
    root = runs_root(runs_dir)
    p = Path(name_or_path)
    for cand in (p, root / name_or_path):
        if Run(cand).config_path.is_file():
            return Run(cand)
    if p.is_dir() or (root / name_or_path).is_dir():
        d = p if p.is_dir() else root / name_or_path
        raise RunError(f"{d} is not a ganscope run (no config.yaml): give a run's name or path")
    raise RunError(
        f"no run named '{name_or_path}' in {root}: see `ganscope runs` for the list, "
        "or give the run's path (or --runs-dir)"
    )


def iter_runs(runs_dir: str | os.PathLike | None = None) -> Iterator[Run]:
    root = runs_root(runs_dir)
    if not root.is_dir():
        return
    for d in sorted(root.iterdir()):
        if Run(d).config_path.is_file():
            yield Run(d)


def auto_name(preset: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{preset}-{stamp}"


# --- locks ------------------------------------------------------------------------------------

# Training locks this process holds, by (lock-file path, thread): train() inside `train
# --resume`'s own lock (the CLI takes it before rewriting config.yaml) must not lock itself out,
# while another thread of the same process (the browser's live lab) is still refused.
_HELD: set[tuple[str, int]] = set()
_HELD_GUARD = threading.Lock()


@contextmanager
def _meta_lock(run_dir: Path) -> Iterator[None]:
    """Exclusive flock on RUN/.meta.lock for one read-modify-write (milliseconds)."""
    try:
        fd = os.open(run_dir / ".meta.lock", os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as e:
        raise write_failed(run_dir / ".meta.lock", e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _read_lock_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


# --- the run ----------------------------------------------------------------------------------


class Run:
    """A handle on one run directory; reads lazily, writes atomically."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # paths
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def meta_path(self) -> Path:
        return self.path / "meta.json"

    @property
    def fixed_z_path(self) -> Path:
        """The latent vectors behind every samples/ grid (written once, at the start)."""
        return self.path / "fixed_z.npy"

    @property
    def directions_dir(self) -> Path:
        """Saved latent directions, one ``<name>.json`` each (ganscope.directions.store)."""
        return self.path / "directions"

    @property
    def direction_figures_dir(self) -> Path:
        """``ganscope directions walk``'s figures (the report shows them)."""
        return self.figures / "directions"

    @property
    def probe_dir(self) -> Path:
        """``ganscope latent probe``'s files (probe.json, heatmap.png, ...)."""
        return self.figures / PROBE_DIR

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    def generator_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / _GENERATOR_NAME.format(epoch=epoch)

    def sample_grid(self, epoch: int) -> Path:
        return self.samples / _SAMPLE_NAME.format(epoch=epoch)

    def generator_epochs(self) -> list[int]:
        """The epochs with a per-epoch generator file (``generator_checkpoint``), ascending."""
        return _epochs_in(self.checkpoints, _GENERATOR_RE)

    def sample_epochs(self) -> list[int]:
        """The epochs with a sample grid (``sample_grid``), ascending."""
        return _epochs_in(self.samples, SAMPLE_RE)

    # which checkpoint a command means
    def checkpoint_for(self, epoch: int | None = None, *, best: bool = False,
                       stable: bool = False, no_generators_hint: str | None = None,
                       error: type[UserError] = RunError) -> tuple[int | None, Path]:
        """(epoch, file) of the generator a command means; the one resolver of every command
        that reads a generator (generate, eval, probe, directions, export, the server).

        ``epoch=N``: checkpoints/G-epoch-NNNN.pt. ``best``: the best by FID that evaluation
        recorded in meta.json (export's ``--best``). Neither: last.pt, or the latest per-epoch
        generator when last.pt is gone; with ``stable`` the latest per-epoch generator first
        (its file never changes, so a metrics record can name it), last.pt only without one.
        The epoch is None for last.pt (it is inside the checkpoint).
        ``no_generators_hint``: for a missing epoch of a run that kept no per-epoch generators
        (train.save_generators=false), say so with this hint instead of "available none".
        Failures raise ``error`` (RunError, or the command's own UserError subclass) with the
        commands' one-line texts."""
        if epoch is not None and best:
            raise error("give --epoch N or --best, not both")
        if best:
            return self._best_checkpoint(error)
        if epoch is not None:
            path = self.generator_checkpoint(epoch)
            if path.is_file():
                return epoch, path
            eps = self.generator_epochs()
            if no_generators_hint and not eps and not self.config().train.save_generators:
                raise error(f"run '{self.name}' kept no per-epoch generators "
                            f"(train.save_generators=false): {no_generators_hint}")
            have = ", ".join(map(str, eps)) if eps else "none"
            raise error(f"run '{self.name}' has no generator for epoch {epoch}: available {have}")
        eps = self.generator_epochs()
        if stable and eps:
            return eps[-1], self.generator_checkpoint(eps[-1])
        if self.last_checkpoint.is_file():
            return None, self.last_checkpoint
        if eps:  # last.pt deleted by hand: the latest per-epoch generator is the last one
            return eps[-1], self.generator_checkpoint(eps[-1])
        raise error(f"run '{self.name}' has no checkpoint yet: let it finish an epoch, "
                    f"or resume it with `ganscope train --resume {self.name}`")

    def _best_checkpoint(self, error: type[UserError]) -> tuple[int, Path]:
        best = self.meta().get("best")
        if not isinstance(best, dict) or "epoch" not in best:
            # local: the domains pull in the data sets, metrics and render (PIL), ~40 ms that
            # `import ganscope.cli` (which imports this module) must not pay
            from ganscope.domains import domain_for

            if domain_for(self.config().data.name).kind == "points":
                raise error(f"run '{self.name}' trains on a point set and has no best-by-FID "
                            "generator: export one with --epoch N, or the last one")
            raise error(
                f"run '{self.name}' has no best checkpoint recorded: score its generators with "
                f"`ganscope eval {self.name} --checkpoint all` (or train with --eval-every 1), "
                "then export with --best")
        epoch = int(best["epoch"])
        rel = best.get("checkpoint")
        path = self.path / rel if isinstance(rel, str) and rel else self.generator_checkpoint(epoch)
        if path.resolve() == self.last_checkpoint.resolve():
            # last.pt moves on when a run is resumed: only trust it while it is still that epoch
            if path.is_file() and checkpoint_epoch(load_checkpoint(path)) == epoch:
                return epoch, path
            path = self.generator_checkpoint(epoch)
        if not path.is_file():
            raise error(
                f"the best checkpoint of run '{self.name}' (epoch {epoch}, {rel}) is gone: "
                f"evaluate again with `ganscope eval {self.name} --checkpoint all`, or use "
                "--epoch N")
        return epoch, path

    @property
    def lock_path(self) -> Path:
        return self.path / "train.lock"

    # the one-writer lock
    def lock_holder(self) -> dict[str, Any] | None:
        """Who trains this run now ({pid, host, start_time}), or None when nobody does.

        Asked of the kernel, not of meta.json: a process killed with -9 leaves meta saying
        ``running``, but its flock is gone with it."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return None  # never trained, or trained before locks existed
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_lock_info(self.lock_path) or {"pid": None}
            return None
        finally:
            os.close(fd)

    @contextmanager
    def training_lock(self) -> Iterator[None]:
        """Be the run's only trainer, or raise RunError naming the one that is.

        Re-entrant within a process. A lock left by a dead process is free (the kernel released
        it), so taking it over is just taking it; its leftover temp files are removed then."""
        key = (str(self.lock_path.resolve()), threading.get_ident())
        with _HELD_GUARD:
            held = key in _HELD
        if held:  # the outer holder of this thread releases it
            yield
            return
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, file_mode())
        except OSError as e:
            raise write_failed(self.lock_path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            who = _read_lock_info(self.lock_path)
            since = f" since {who['start_time']}" if who.get("start_time") else ""
            raise RunError(
                f"run '{self.name}' is being trained by process {who.get('pid', '?')} on "
                f"{who.get('host', '?')}{since}: wait for it to finish, or stop it (Ctrl-C) "
                "and then resume"
            ) from None
        try:
            info = json.dumps({"pid": os.getpid(), "host": platform.node(),
                               "start_time": now_iso(), "command": sys.argv[:6]})
            # Written in place, never renamed: the flock lives on this very inode.
            os.ftruncate(fd, 0)
            os.pwrite(fd, (info + "\n").encode(), 0)
            self._remove_stale_temp_files()
        except OSError as e:
            os.close(fd)
            raise write_failed(self.lock_path, e) from None
        with _HELD_GUARD:
            _HELD.add(key)
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD.discard(key)
            os.close(fd)  # drops the flock; the file stays as a record of the last trainer

    def _remove_stale_temp_files(self) -> None:
        """Temp files of atomic writes that a killed trainer never renamed. Only the trainer
        writes checkpoints/ and samples/; in the run's top folder other commands may be
        mid-write, so those are removed under the meta lock and only when older than a minute."""
        for sub in (self.checkpoints, self.samples, self.figures):
            for f in sub.glob(".*.tmp") if sub.is_dir() else ():
                unlink_quietly(str(f))
        with _meta_lock(self.path):
            for f in self.path.glob(".*.tmp"):
                try:
                    if time.time() - f.stat().st_mtime > 60:
                        f.unlink()
                except OSError:
                    pass

    # creation
    @classmethod
    def create(cls, cfg: RunConfig, runs_dir: str | os.PathLike | None = None,
               name: str | None = None, nets: tuple[nn.Module, nn.Module] | None = None) -> Run:
        """A new run directory holding ``cfg``. A user's own nets (a file, or ``nets`` from
        Python with ``model.name: modules``) are checked against the data before it exists
        and kept in RUN/model/ (``ganscope.models.user``)."""
        root = runs_root(runs_dir)
        own = user_models.is_user_model(cfg.model.name)
        if own:
            # local: the domains pull in the data sets, metrics and render (PIL)
            from ganscope.domains import domain_for

            shape = domain_for(cfg.data.name).sample_shape(cfg.data)
            wants = LOSSES.get(cfg.loss.name).sigmoid
            kind = user_models.check_user_model(cfg.model, shape, wants, cfg.loss.name,
                                                cfg.data.name, nets)
        name = name or auto_name(cfg.preset)
        if not _NAME_RE.match(name):
            raise ConfigError(
                f"bad run name {name!r}: use letters, digits, '.', '_' and '-' (at most 100)"
            )
        path = root / name
        if path.exists():
            raise RunError(
                f"run '{name}' already exists in {root}: pick another --name, "
                f"or continue it with `ganscope train --resume {name}`"
            )
        try:
            path.mkdir(parents=True)  # atomic: of two processes creating one name, one fails
        except FileExistsError:
            raise RunError(f"run '{name}' already exists in {root}: pick another --name") from None
        except OSError as e:
            raise RunError(f"cannot create run directory {path}: {e.strerror}") from None
        run = cls(path)
        try:
            for sub in (run.checkpoints, run.samples, run.figures):
                sub.mkdir()
            if own:
                user_models.store(path / user_models.STORE_DIR, cfg.model, shape, kind, nets)
            atomic_write_text(run.config_path, save_yaml(cfg))
        except BaseException as e:  # nothing half-made is left behind
            shutil.rmtree(path, ignore_errors=True)
            if isinstance(e, OSError):
                raise write_failed(path, e) from None
            raise
        return run

    # config and meta
    def config(self) -> RunConfig:
        f = self.config_path
        try:
            data = load_yaml(f.read_text())
        except (OSError, yaml.YAMLError):
            raise RunError(f"cannot read {f}: the run directory is damaged") from None
        try:
            return from_dict(data or {})
        except ConfigError as e:
            raise RunError(f"{f} does not hold a valid config ({e})") from None

    def meta(self) -> dict[str, Any]:
        f = self.meta_path
        if not f.is_file():
            return {}
        try:
            return json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            raise RunError(f"cannot read {f}: the run directory is damaged") from None

    def update_meta(self, **fields: Any) -> dict[str, Any]:
        """Read, change and rewrite meta.json under the run's meta lock: a trainer and an
        ``eval`` writing at once both keep their fields."""
        with _meta_lock(self.path):
            meta = self.meta()
            meta.update(fields)
            atomic_write_text(self.meta_path, json.dumps(meta, indent=2) + "\n")
        return meta

    def status(self) -> str:
        """``running`` is only believed while some process holds the run's training lock (for
        runs from before the lock: while the recorded process is alive on this host)."""
        meta = self.meta()
        st = meta.get("status", "created")
        if st != "running":
            return st
        if self.lock_path.exists():
            return "running" if self.lock_holder() is not None else "died"
        if meta.get("host") == platform.node():
            pid = meta.get("pid")
            if isinstance(pid, int) and not _pid_alive(pid):
                return "died"
        return st

    # events
    def read_events(self) -> list[dict[str, Any]]:
        """Every event row; a line that is not JSON (a crash mid-append) is skipped with a
        RunWarning (the trainer drops it when it resumes)."""
        if not self.events_path.is_file():
            return []
        out = []
        with open(self.events_path, errors="replace") as f:
            for i, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    row = None
                if isinstance(row, dict):
                    out.append(row)
                else:
                    warnings.warn(f"{self.events_path} line {i} is torn (a crash mid-write): "
                                  "skipped", RunWarning, stacklevel=2)
        return out

    def append_events(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            with open(self.events_path, "a") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise write_failed(self.events_path, e) from None

    def truncate_events(self, max_step: int) -> None:
        """Drop events after the checkpoint's step (logged after it, then lost in a crash)."""
        rows = [r for r in self.read_events() if r.get("step", 0) <= max_step]
        atomic_write_text(self.events_path, "".join(json.dumps(r) + "\n" for r in rows))


    # metric results (one JSON object per evaluated checkpoint; see ganscope.training.evaluation)
    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        out = []
        text = self.metrics_path.read_text(errors="replace")
        lines = text.splitlines()
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) and not text.endswith("\n"):  # torn by a crash mid-write
                    warnings.warn(f"{self.metrics_path} line {i} is torn (a crash mid-write): "
                                  "skipped", RunWarning, stacklevel=2)
                    continue
                raise RunError(
                    f"{self.metrics_path} line {i} is not JSON: delete the line (or the file) "
                    "and evaluate again with `ganscope eval`"
                ) from None
        return out

    def append_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite the whole file atomically under the meta lock: a reader never sees half a
        record, and two writers (training's evaluation, ``ganscope eval``) never lose one."""
        with _meta_lock(self.path):
            text = self.metrics_path.read_text() if self.metrics_path.is_file() else ""
            if text and not text.endswith("\n"):
                # a torn last record from a crash: keep the complete ones only
                text = text[:text.rfind("\n") + 1]
            atomic_write_text(self.metrics_path,
                              text + "".join(json.dumps(r) + "\n" for r in rows))


def _epochs_in(folder: Path, pattern: re.Pattern[str]) -> list[int]:
    """The epoch numbers of the files in ``folder`` whose names ``pattern`` matches whole."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := pattern.fullmatch(p.name)))


def checkpoint_epoch(ck: dict[str, Any]) -> int | None:
    try:
        return int(ck["epoch"])
    except (KeyError, TypeError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

