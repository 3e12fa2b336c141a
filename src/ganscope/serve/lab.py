"""The live 2-D lab: one real run, trained by the one loop in a background thread, watched.

A session's config is the 2-D lab's own cell config (``lab2d.matrix.cell_config``: the cell's
published optimiser settings) with the page's overrides (data, learning rates, n_critic,
length); it is created in the runs dir as ``live-<loss>-<optim>-<time>`` and trained by
``training.loop.train``, so afterwards it is an ordinary run (checkpoints, events, per-epoch
snapshots, evaluations) that ``ganscope runs`` and the run page show.

Control goes through the loop's two hooks. ``on_step`` (after every generator step, in the
training thread) records the step's numbers, takes a snapshot at most every
:data:`SNAPSHOT_INTERVAL_S` (generated points for a fixed z, and D's surface on a grid by
``domains.points.plots.d_surface``, both under ``no_grad`` in eval mode: mlp2d has no
BatchNorm, and ``eval_mode`` restores the mode, so the nets and the training streams are
untouched) and blocks on a ``threading.Event`` while paused; "step" lets exactly one step through. ``should_stop``
returns True after "stop": the loop checkpoints, marks the run interrupted and raises
``TrainingInterrupted``, which ends the session as "stopped". Metrics are the run's own
evaluations (``eval.every``, ``domains.points.evaluate.evaluate_points``), read as they are
written.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganscope.data.points import POINT_SETS
from ganscope.domains import load_dataset
from ganscope.domains.points.plots import d_surface, plot_extent
from ganscope.errors import TrainingInterrupted, UserError
from ganscope.lab2d.matrix import LOSS_NAMES, OPTIMS, Cell, cell_config
from ganscope.losses import build_loss
from ganscope.sampling import latents_from_seed, sample, to_floats
from ganscope.serve.common import ApiError
from ganscope.training.loop import train
from ganscope.training.run import Run
from ganscope.viz.run_figures import write_run_figures

SNAPSHOT_INTERVAL_S = 0.1  # ~10 snapshots a second while playing
SNAPSHOT_POINTS = 500
SURFACE_GRID = 48
TARGET_POINTS = 1000
MAX_CURVE_ROWS = 5000  # per reply; a client catches up over several
JOIN_TIMEOUT_S = 15.0
BOUNDS: dict[str, tuple[float, float]] = {
    "lr": (1e-6, 0.1), "n_critic": (1, 20), "steps": (10, 20000), "seed": (0, 2**31 - 1),
    "n_points": (256, 50000),
}


def _choices() -> dict[str, list[str]]:
    return {"data": POINT_SETS.names(), "loss": list(LOSS_NAMES), "optim": list(OPTIMS)}


@dataclass
class LabParams:
    """What the page chooses; ``None`` learning rates / n_critic mean the cell's own."""

    data: str = "ring8"
    loss: str = "gan"
    optim: str = "adam"
    lr_g: float | None = None
    lr_d: float | None = None
    n_critic: int | None = None
    steps: int = 2000
    seed: int = 0
    n_points: int = 20000
    paused: bool = False

    def validate(self) -> LabParams:
        ch = _choices()
        for key in ("data", "loss", "optim"):
            v = getattr(self, key)
            if v not in ch[key]:
                raise ApiError(400, f"unknown {key} {str(v)[:40]!r}: choose one of "
                                    f"{', '.join(ch[key])}")
        lo, hi = BOUNDS["lr"]
        for key in ("lr_g", "lr_d"):
            v = getattr(self, key)
            if v is not None and not (math.isfinite(v) and lo <= v <= hi):
                raise ApiError(400, f"{key} {v} is out of range: give a learning rate from "
                                    f"{lo:g} to {hi:g}")
        for key, bound in (("n_critic", "n_critic"), ("steps", "steps"), ("seed", "seed"),
                           ("n_points", "n_points")):
            v = getattr(self, key)
            lo, hi = BOUNDS[bound]
            if v is not None and not lo <= v <= hi:
                raise ApiError(400, f"{key} {v} is out of range: give a whole number from "
                                    f"{int(lo)} to {int(hi)}")
        return self


def lab_config(p: LabParams):
    """The cell's config with the page's overrides (the same function as ``ganscope lab2d``)."""
    extra = [f"data.n_points={p.n_points}"]
    if p.lr_g is not None:
        extra.append(f"optim.g.lr={p.lr_g!r}")
    if p.lr_d is not None:
        extra.append(f"optim.d.lr={p.lr_d!r}")
    if p.n_critic is not None:
        extra.append(f"train.n_critic={p.n_critic}")
    return cell_config(p.data, Cell(p.loss, p.optim), p.seed, p.steps, extra=extra)


def options() -> dict[str, Any]:
    """Choices, bounds and each cell's own settings (the form's defaults)."""
    ch = _choices()
    cells = {}
    for loss in ch["loss"]:
        for optim in ch["optim"]:
            cfg = cell_config("ring8", Cell(loss, optim), 0, 2000)
            cells[f"{loss}-{optim}"] = {"lr_g": cfg.optim.resolved("g")["lr"],
                                        "lr_d": cfg.optim.resolved("d")["lr"],
                                        "n_critic": cfg.train.n_critic,
                                        "betas": list(cfg.optim.betas),
                                        "loss": cfg.loss.name}
    return {**ch, "cells": cells, "bounds": BOUNDS, "defaults": asdict(LabParams())}


def _live_name(root: Path, p: LabParams) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"live-{p.loss}-{p.optim}-{stamp}"
    name, i = base, 2
    while (root / name).exists():
        name, i = f"{base}-{i}", i + 1
    return name


class LabSession:
    """One live run: its thread, its pause gate, its latest snapshot and curves."""

    def __init__(self, root: Path, params: LabParams, *, plots: bool = True) -> None:
        self.params = params.validate()
        cfg = lab_config(self.params)
        self.cfg = cfg
        self.dataset = load_dataset(cfg.data, cfg.seed)  # a data error leaves no run behind
        self.run = Run.create(cfg, root, _live_name(root, self.params))
        target = self.dataset.images.numpy()
        self.extent = plot_extent(target)
        self.target = target[:TARGET_POINTS]
        self.probability = build_loss(cfg.loss).sigmoid
        self.z = latents_from_seed(0, SNAPSHOT_POINTS, cfg.model.z_dim)  # not the global RNG
        n_batches = math.ceil(len(target) / cfg.train.batch_size)
        self.steps_per_epoch = n_batches // cfg.train.n_critic
        self.total_steps = self.steps_per_epoch * cfg.train.epochs
        self.plots = plots

        self._gate = threading.Event()
        if not self.params.paused:
            self._gate.set()
        self._lock = threading.Lock()
        self._single = False
        self._stop = False
        self.status = "paused" if self.params.paused else "running"
        self.error: str | None = None
        self.step = 0
        self.epoch = 0
        self.curve: list[tuple[int, float, float, float, float]] = []
        self.snapshot: dict[str, Any] | None = None
        self.snap_version = 0
        self.metrics: list[dict[str, Any]] = []
        self.version = 0  # bumps on any change a viewer should see
        self._last_snap = 0.0
        self._seen_epoch = 0
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._train, name=f"ganscope-{self.run.name}",
                                       daemon=True)

    @property
    def name(self) -> str:
        return self.run.name

    # --- control (any thread) ---

    def start(self) -> LabSession:
        self.thread.start()
        return self

    def pause(self) -> None:
        with self._lock:
            self._gate.clear()
            self._single = False
            self.version += 1

    def play(self) -> None:
        with self._lock:
            self._single = False
            self._gate.set()
            if self.status == "paused":
                self.status = "running"
            self.version += 1

    def step_once(self) -> None:
        """Let exactly one more generator step through, then pause again."""
        with self._lock:
            if self._gate.is_set():  # playing: a step request pauses at the next step
                self._gate.clear()
            else:
                self._single = True
                self._gate.set()
            self.version += 1

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._gate.set()
            self.version += 1

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    # --- the training thread ---

    def _should_stop(self, step: int) -> bool:
        return self._stop

    def _on_step(self, v) -> None:
        self.curve.append((v.step, v.loss_d, v.loss_g, v.d_x, v.d_g_z))
        self.step, self.epoch = v.step, v.epoch
        if v.epoch != self._seen_epoch:  # the previous epoch's evaluation is written by now
            self._seen_epoch = v.epoch
            self._read_metrics()
        with self._lock:
            if self._single:
                self._single = False
                self._gate.clear()
            pausing = not self._gate.is_set() and not self._stop
        now = time.monotonic()
        if pausing or now - self._last_snap >= SNAPSHOT_INTERVAL_S or v.step == self.total_steps:
            self._snap(v)
            self._last_snap = now
        if pausing:
            with self._lock:
                self.status = "paused"
                self.version += 1
            while not self._gate.wait(0.25):
                if self._stop:
                    break
            with self._lock:
                if self.status == "paused":
                    self.status = "running"
                self.version += 1
        else:
            self.version += 1

    @torch.no_grad()
    def _snap(self, v) -> None:
        fake = sample(v.G, self.z, to_samples=to_floats, batch_size=None).numpy()
        _, _, surface = d_surface(v.D, self.extent, SURFACE_GRID)
        self.snapshot = {"step": v.step, "epoch": v.epoch,
                         "fake": np.round(fake, 4), "surface": np.round(surface, 4),
                         "surface_min": float(np.nanmin(surface)) if surface.size else None,
                         "surface_max": float(np.nanmax(surface)) if surface.size else None}
        self.snap_version += 1

    def _read_metrics(self) -> None:
        try:
            recs = self.run.read_metrics()
        except UserError:
            return
        self.metrics = [{"epoch": r.get("epoch"), "step": (r.get("epoch") or 0)
                         * self.steps_per_epoch, "metrics": r.get("metrics", {})} for r in recs]

    def _train(self) -> None:
        try:
            train(self.run, dataset=self.dataset, progress=False, verbose=False,
                  on_step=self._on_step, should_stop=self._should_stop)
            status = "completed"
        except TrainingInterrupted:
            status = "stopped"
        except UserError as e:
            status, self.error = "failed", str(e)
        except Exception as e:  # shown on the page; the run's meta.json also says "failed"
            status, self.error = "failed", f"{type(e).__name__}: {e}"[:300]
        self._read_metrics()
        if self.plots and status != "failed":
            # the curves and training.gif a `ganscope train` of a point run also gets; figures
            # are a convenience (the run is complete), so a failure here is ignored
            with contextlib.suppress(Exception):
                write_run_figures(self.run)
        with self._lock:
            self.status = status
            self.version += 1
        self.finished.set()

    # --- what the page gets ---

    def state(self, since: int | None = None, snapshot: bool = True) -> dict[str, Any]:
        """The session's state; with ``since``, the curve rows after that index too."""
        out: dict[str, Any] = {
            "run": self.name, "status": self.status, "error": self.error,
            "step": self.step, "epoch": self.epoch, "total_steps": self.total_steps,
            "epochs": self.cfg.train.epochs, "steps_per_epoch": self.steps_per_epoch,
            "eval_every": self.cfg.eval.every,
            "params": asdict(self.params), "probability": self.probability,
            "settings": {"loss": self.cfg.loss.name, "optim": self.cfg.optim.name,
                         "lr_g": self.cfg.optim.resolved("g")["lr"],
                         "lr_d": self.cfg.optim.resolved("d")["lr"],
                         "betas": list(self.cfg.optim.betas),
                         "n_critic": self.cfg.train.n_critic,
                         "batch_size": self.cfg.train.batch_size,
                         "data": self.cfg.data.name, "n_points": self.cfg.data.n_points},
            "curve_len": len(self.curve), "metrics": self.metrics,
            "snap_version": self.snap_version, "version": self.version,
        }
        if snapshot:
            out["snapshot"] = self.snapshot
        if since is not None:
            out["curve_from"] = since
            out["curve"] = self.curve[since:since + MAX_CURVE_ROWS]
        return out

    def scene(self) -> dict[str, Any]:
        """What does not change during the session: the target points and the plot window."""
        return {"target": np.round(self.target, 4), "extent": list(self.extent),
                "grid": SURFACE_GRID}


class LabManager:
    """At most one live session per server (the CPU is the limit): a new one stops the old."""

    def __init__(self, root: Path, *, plots: bool = True) -> None:
        self.root = root
        self.plots = plots
        self.session: LabSession | None = None
        self._lock = threading.Lock()

    def start(self, params: LabParams) -> LabSession:
        with self._lock:
            old = self.session
            if old is not None and not old.finished.is_set():
                old.stop()
                old.wait(JOIN_TIMEOUT_S)
            self.root.mkdir(parents=True, exist_ok=True)
            self.session = LabSession(self.root, params, plots=self.plots).start()
            return self.session

    def current(self) -> LabSession:
        s = self.session
        if s is None:
            raise ApiError(404, "no live 2-D lab run on this server: start one on the lab page")
        return s

    def control(self, action: str) -> LabSession:
        s = self.current()
        if action == "stop":
            s.stop()
            return s
        if s.finished.is_set():
            raise ApiError(409, f"the live run {s.name} has ended ({s.status}): start a new one")
        {"pause": s.pause, "play": s.play, "step": s.step_once}[action]()
        return s

    def shutdown(self) -> None:
        s = self.session
        if s is not None and not s.finished.is_set():
            s.stop()
            s.wait(JOIN_TIMEOUT_S)
