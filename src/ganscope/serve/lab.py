"""The live 2-D lab: one or more real runs (a race), trained by the one loop in background
threads, stepped in lockstep, watched.

A lane's config is the 2-D lab's own cell config (``lab2d.matrix.cell_config``: the cell's
published optimiser settings) with the page's overrides (data, learning rates, n_critic,
length); it is created in the runs dir as ``live-<loss>-<optim>-<time>`` (a race's lanes:
``race-<time>-<loss>-<optim>``) and trained by ``training.loop.train``, so afterwards it is an
ordinary run (checkpoints, events, per-epoch snapshots, evaluations) that ``ganscope runs``,
``ganscope compare`` and the run page show. A drawn target (``data="drawn"``) is written into
each lane's run directory as ``target.csv`` and the run's data is ``points:RUN/target.csv``, so
the run re-creates; it passes exactly the validation of a points file (``read_points``).

Time is one :class:`RaceClock` per race. After every generator step the loop's ``on_step``
hook (in the lane's training thread) records the step and calls :meth:`RaceClock.arrive`,
which blocks until the clock lets the lane take its next step. The clock lets step ``b + 1``
through only once every live lane has finished step ``b`` (lockstep), only while playing (or
once per "step" request), and at most ``speed`` times a second; so at a pause every live lane
has taken the same number of steps. The clock also decides at which steps the lanes take a
snapshot (every :data:`SNAPSHOT_INTERVAL_S` at most, every step when it runs slower than that,
and at a pause), so all lanes' frames are of the same step. A snapshot (generated points for
a fixed z, D's surface on a grid, the negative gradient of G's loss at a subset of the
generated points, the image of a latent grid for z of size 2, live metrics) is computed under
``eval_mode`` from the live nets: mlp2d has no BatchNorm, nothing touches the optimisers or the
training streams, so a live run trains exactly the weights of a plain one. Snapshots are kept
(:data:`MAX_HISTORY` per lane, thinned evenly when full) for the page's scrubber.

A :class:`Snapshot` is turned into JSON at most once, the first time a page asks for it (the
stream, the state, the scrubber), and that text is sent as is from then on (:func:`encode`
splices it into a reply): the per-frame cost of the stream is joining strings, not encoding
arrays. Its numbers keep about 4 significant digits of what the page draws them against (the
plot window for points, the colour range for D's surface, the longest arrow for arrows), far
below a pixel. The stream sends coherent frames (:meth:`Race.live_frame`: every lane's
snapshot of one step) and a lane's fixed parts (settings, target) only once.

``should_stop`` returns True after "stop": the loop checkpoints, marks the run interrupted and
raises ``TrainingInterrupted``, which ends the lane as "stopped". Metrics are the run's own
evaluations (``eval.every``), read as they are written, plus the live metrics of each snapshot.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as _dt
import json
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganscope.data.points import MIN_POINTS, POINT_SETS, read_points
from ganscope.domains import load_dataset
from ganscope.domains.points.metrics import mode_stats, sliced_wasserstein
from ganscope.domains.points.plots import d_surface, plot_extent
from ganscope.errors import TrainingInterrupted, UserError
from ganscope.lab2d.matrix import LOSS_NAMES, OPTIMS, Cell, cell_config
from ganscope.losses import build_loss
from ganscope.losses.base import GANLoss
from ganscope.models import eval_mode
from ganscope.sampling import latents_from_seed, sample, to_floats
from ganscope.serve.common import ApiError, dumps
from ganscope.training.loop import train
from ganscope.training.run import Run
from ganscope.viz.run_figures import write_run_figures

SNAPSHOT_INTERVAL_S = 0.05  # at most ~20 frames a second while playing
SNAPSHOT_POINTS = 500
ARROW_POINTS = 64  # generated points that get a force arrow (the first of the fixed z)
MESH_LINES = 15  # the latent grid: MESH_LINES x MESH_LINES z over [-MESH_RADIUS, MESH_RADIUS]^2
MESH_RADIUS = 2.5
SURFACE_GRID = 48
TARGET_POINTS = 1000
LIVE_METRICS_INTERVAL_S = 0.5  # live metrics of a lane's snapshot at most this often
MAX_HISTORY = 600  # snapshots kept per lane for the scrubber; thinned evenly when full
MAX_CURVE_ROWS = 5000  # per reply; a client catches up over several
MAX_LANES = 4
JOIN_TIMEOUT_S = 15.0
SETTLE_TIMEOUT_S = 3.0  # a pause/play reply waits at most this long for the lanes to show it
DRAWN = "drawn"  # data name of the target drawn on the page
DRAW_EXTENT = (-4.0, 4.0, -4.0, 4.0)  # the drawing canvas's window
MAX_DRAWN_POINTS = 20000
MAX_DRAWN_ABS = 1000.0
TARGET_FILE = "target.csv"
BOUNDS: dict[str, tuple[float, float]] = {
    "lr": (1e-6, 0.1), "n_critic": (1, 20), "steps": (10, 20000), "seed": (0, 2**31 - 1),
    "n_points": (256, 50000), "speed": (0.5, 1000.0),
}


def _choices() -> dict[str, list[str]]:
    return {"data": [*POINT_SETS.names(), DRAWN], "loss": list(LOSS_NAMES),
            "optim": list(OPTIMS)}


@dataclass
class LabParams:
    """What the page chooses for one lane; ``None`` learning rates / n_critic mean the cell's
    own; ``speed`` (generator steps a second, ``None``: as fast as it goes) and ``paused`` are
    the race's."""

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
    speed: float | None = None

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
        for key in ("n_critic", "steps", "seed", "n_points"):
            v = getattr(self, key)
            lo, hi = BOUNDS[key]
            if v is not None and not lo <= v <= hi:
                raise ApiError(400, f"{key} {v} is out of range: give a whole number from "
                                    f"{int(lo)} to {int(hi)}")
        validate_speed(self.speed)
        return self


def validate_speed(v: float | None) -> float | None:
    lo, hi = BOUNDS["speed"]
    if v is not None and not (math.isfinite(v) and lo <= v <= hi):
        raise ApiError(400, f"speed {v} is out of range: give generator steps a second from "
                            f"{lo:g} to {hi:g}, or null for as fast as it goes")
    return v


def lab_config(p: LabParams, data_name: str | None = None):
    """The cell's config with the page's overrides (the same function as ``ganscope lab2d``),
    without the moving average of G; ``data_name`` replaces ``p.data`` (a drawn target's
    ``points:FILE``)."""
    # tech.ema=0: a lane shows G as it trains; the matrix's moving average (a horizon of
    # ~1,000 steps) would trail a 2,000-step race by half its length
    extra = [f"data.n_points={p.n_points}", "tech.ema=0"]
    if p.lr_g is not None:
        extra.append(f"optim.g.lr={p.lr_g!r}")
    if p.lr_d is not None:
        extra.append(f"optim.d.lr={p.lr_d!r}")
    if p.n_critic is not None:
        extra.append(f"train.n_critic={p.n_critic}")
    return cell_config(data_name or p.data, Cell(p.loss, p.optim), p.seed, p.steps,
                       extra=extra)


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
    return {**ch, "cells": cells, "bounds": BOUNDS, "defaults": asdict(LabParams()),
            "max_lanes": MAX_LANES,
            "draw": {"extent": list(DRAW_EXTENT), "min_points": MIN_POINTS,
                     "max_points": MAX_DRAWN_POINTS}}


# --- the drawn target ---------------------------------------------------------------------------


def _points_csv(pts: np.ndarray) -> str:
    return "x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in pts.tolist())


def validate_drawn(points: Any) -> np.ndarray:
    """The page's drawn points as float32 (N, 2), through exactly a points file's validation
    (``read_points`` of the CSV the run will hold), or a one-line 400."""
    if not isinstance(points, list) or not points:
        raise ApiError(400, "the drawn target holds no points: paint some on the canvas or "
                            "drop a points file")
    if len(points) > MAX_DRAWN_POINTS:
        raise ApiError(400, f"the drawn target holds {len(points)} points, at most "
                            f"{MAX_DRAWN_POINTS} are taken: clear some or lower the density")
    for i, p in enumerate(points):
        if (not isinstance(p, list) or len(p) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
            raise ApiError(400, f"drawn point {i} is {str(p)[:40]}: give [x, y] numbers")
        if not all(math.isfinite(v) and abs(v) <= MAX_DRAWN_ABS for v in p):
            raise ApiError(400, f"drawn point {i} holds {str(p)[:40]}: give finite numbers "
                                f"within ±{MAX_DRAWN_ABS:g}")
    with tempfile.TemporaryDirectory(prefix="ganscope-target-") as tmp:
        f = Path(tmp) / TARGET_FILE
        f.write_text(_points_csv(np.asarray(points, dtype=np.float64)))
        try:
            ps = read_points(f)
        except UserError as e:
            raise ApiError(400, str(e).replace(f"points file {f}:", "the drawn target")) from None
    return ps.points


def read_dropped(name: str, content: bytes) -> np.ndarray:
    """A dropped points file's points, read by ``read_points`` itself (same suffixes, same
    checks); its one-line errors name the file as the user called it."""
    suffix = Path(name).suffix.lower()
    shown = Path(name).name[:80] or "the dropped file"
    with tempfile.TemporaryDirectory(prefix="ganscope-drop-") as tmp:
        f = Path(tmp) / f"dropped{suffix}"
        f.write_bytes(content)
        try:
            ps = read_points(f)
        except UserError as e:
            raise ApiError(400, str(e).replace(str(f), shown)) from None
    if len(ps) > MAX_DRAWN_POINTS:
        raise ApiError(400, f"points file {shown} holds {len(ps)} points, the lab takes at "
                            f"most {MAX_DRAWN_POINTS}: thin it")
    if not np.all(np.abs(ps.points) <= MAX_DRAWN_ABS):
        raise ApiError(400, f"points file {shown} has points beyond ±{MAX_DRAWN_ABS:g}: "
                            "rescale them")
    return ps.points


# --- what a snapshot shows ----------------------------------------------------------------------


def point_forces(D: nn.Module, loss: GANLoss, points: np.ndarray) -> np.ndarray:
    """The negative gradient of G's loss with respect to each generated point (N, 2): where G's
    update pushes that point. G's loss is a mean of per-point terms (D scores points one by
    one), so ``N`` times the gradient of the mean is each point's own term's gradient."""
    if len(points) == 0:
        return np.zeros((0, 2), np.float32)
    dev = next(D.parameters()).device
    x = torch.tensor(np.asarray(points, np.float32), device=dev, requires_grad=True)
    with torch.enable_grad(), eval_mode(D):
        g_loss = loss.g_loss(D(x).float()) * len(points)
        (grad,) = torch.autograd.grad(g_loss, x)
    return (-grad).cpu().numpy()


@torch.no_grad()
def latent_mesh(G: nn.Module, lines: int = MESH_LINES, radius: float = MESH_RADIUS
                ) -> np.ndarray:
    """G's image of a square grid of z (z of size 2): (lines, lines, 2), [i, j] = G(z) at
    z = (u_j, u_i) for u evenly over [-radius, radius]."""
    u = torch.linspace(-radius, radius, lines)
    zy, zx = torch.meshgrid(u, u, indexing="ij")
    z = torch.stack([zx.ravel(), zy.ravel()], 1)
    return sample(G, z, to_samples=to_floats, batch_size=None).numpy().reshape(lines, lines, 2)


def live_metrics(fake: np.ndarray, ps: Any, target: np.ndarray) -> dict[str, Any]:
    """Cheap metrics of a snapshot's points: modes (mixtures) and sliced W1 to the target."""
    out: dict[str, Any] = {"n": int(len(fake))}
    if not np.isfinite(fake).all():
        return {**out, "sliced_wasserstein": None}
    if getattr(ps, "modes", None) is not None and ps.std is not None:
        ms = mode_stats(fake, ps.modes, ps.std)
        out.update({k: ms[k] for k in ("modes_covered", "hq_fraction", "reverse_kl")})
        out["n_modes"] = int(len(ps.modes))
    out["sliced_wasserstein"] = sliced_wasserstein(fake, target, n_projections=64, seed=0)
    return out


# --- what a page gets: snapshots as JSON, encoded once ---------------------------------------------


def decimals(scale: float) -> int:
    """Decimal places that keep about 4 significant digits of a quantity of size ``scale``."""
    if not (math.isfinite(scale) and scale > 0):
        return 4
    return min(12, max(0, 3 - math.floor(math.log10(scale))))


def array_json(a: np.ndarray, places: int) -> str:
    """A float array as nested JSON lists rounded to ``places`` decimals (in float64, so 0.1235
    is written 0.124, not float32's 0.12399999797344208); NaN/inf become null."""
    x = np.round(np.asarray(a, np.float64), places)
    finite = np.isfinite(x)
    if not finite.all():
        x = x.astype(object)
        x[~finite] = None
    return json.dumps(x.tolist(), separators=(",", ":"))


class Snapshot:
    """One snapshot of a lane: its step and epoch, its arrays, and their JSON (made at most
    once, on first use, from any thread)."""

    __slots__ = ("step", "epoch", "_arrays", "_places", "_probability", "_json", "_lock")

    def __init__(self, step: int, epoch: int, *, fake: np.ndarray, surface: np.ndarray,
                 arrows: np.ndarray, mesh: np.ndarray | None, point_places: int,
                 probability: bool) -> None:
        self.step, self.epoch = step, epoch
        self._arrays = {"fake": fake, "surface": surface, "arrows": arrows, "mesh": mesh}
        self._places = point_places
        self._probability = probability
        self._json: str | None = None
        self._lock = threading.Lock()

    @property
    def json(self) -> str:
        j = self._json
        if j is None:
            with self._lock:
                if self._json is None:
                    self._json = self._encode()
                    self._arrays = {}  # the text is what is kept
                j = self._json
        return j

    def _encode(self) -> str:
        a = self._arrays
        surface, arrows, mesh = a["surface"], a["arrows"], a["mesh"]
        finite = surface[np.isfinite(surface)]
        lo = float(finite.min()) if finite.size else None
        hi = float(finite.max()) if finite.size else None
        # a probability is drawn on [0, 1]; a critic's scores on their own range
        scale = 1.0 if self._probability else (hi - lo if lo is not None else 1.0)
        fin_arrows = arrows[np.isfinite(arrows)]
        longest = float(np.abs(fin_arrows).max()) if fin_arrows.size else 1.0
        return (f'{{"step":{self.step},"epoch":{self.epoch},'
                f'"fake":{array_json(a["fake"], self._places)},'
                f'"surface":{array_json(surface, decimals(scale))},'
                f'"surface_min":{dumps(lo)},"surface_max":{dumps(hi)},'
                f'"arrows":{array_json(arrows, decimals(longest))},'
                f'"mesh":{"null" if mesh is None else array_json(mesh, self._places)}}}')


def encode(obj: Any) -> str:
    """JSON of ``obj`` as :func:`~ganscope.serve.common.dumps` writes it (NaN-safe), with each
    :class:`Snapshot`'s own JSON spliced in as is (looked for in dicts and lists of dicts)."""
    if isinstance(obj, Snapshot):
        return obj.json
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list) and any(isinstance(v, (Snapshot, dict)) for v in obj):
        return "[" + ",".join(encode(v) for v in obj) + "]"
    return dumps(obj)


# --- time: the race clock -----------------------------------------------------------------------


class RaceClock:
    """Lockstep for the lanes of a race (see the module docstring). ``budget`` is the highest
    step a lane may finish; it moves up by one once every live lane has finished it."""

    def __init__(self, lanes: int, paused: bool, speed: float | None) -> None:
        self._cond = threading.Condition()
        self.budget = 1  # the loop takes step 1 before its first on_step: every lane does
        self.done = [0] * lanes  # the last step each lane finished
        self.live = [True] * lanes
        self.waiting = [False] * lanes  # held at a pause (after its pause snapshot)
        self.playing = not paused
        self.pending = 0  # single steps asked for while paused
        self.speed = speed
        self.stopped = False
        self.snap_step = 1  # the step at which every lane takes its next snapshot
        self.version = 0
        self._last_advance = -math.inf
        self._last_snap = -math.inf

    @property
    def paused(self) -> bool:
        return not self.playing and not self.pending

    def _advance(self) -> float | None:
        """Move the budget on if every live lane is there; seconds to wait if the speed
        holds it back, else None. Under the lock."""
        if self.stopped or not any(self.live):
            return None
        if any(live and d < self.budget for live, d in zip(self.live, self.done, strict=True)):
            return None
        if self.paused:
            return None
        now = time.monotonic()
        if self.speed:
            due = self._last_advance + 1.0 / self.speed
            if now < due:
                return due - now
        single = self.pending > 0
        if single:
            self.pending -= 1
        self.budget += 1
        self._last_advance = now
        if single or now - self._last_snap >= SNAPSHOT_INTERVAL_S:
            self.snap_step, self._last_snap = self.budget, now
        self.version += 1
        self._cond.notify_all()
        return None

    def arrive(self, lane: int, step: int, at_pause: Callable[[], None]) -> None:
        """Lane ``lane`` finished ``step``: block until it may take the next one (or stop).
        ``at_pause`` runs once, outside the lock, when the lane is held by a pause."""
        cond = self._cond
        with cond:
            self.done[lane] = step
            self.version += 1
            snapped = False
            while not self.stopped and step >= self.budget:
                wait = self._advance()
                if step < self.budget:
                    break
                if self.paused and not snapped:
                    cond.release()
                    try:
                        at_pause()
                    finally:
                        cond.acquire()
                    snapped = True
                    continue
                if self.paused and snapped and not self.waiting[lane]:
                    self.waiting[lane] = True
                    self.version += 1
                    cond.notify_all()
                elif not self.paused and self.waiting[lane]:  # played: held by the speed
                    self.waiting[lane] = False  # limit at most, no longer by the pause
                    self.version += 1
                    cond.notify_all()
                cond.wait(wait if wait is not None else 0.5)
            if self.waiting[lane]:
                self.waiting[lane] = False
                self.version += 1
                cond.notify_all()  # settle("play") waits for this

    def leave(self, lane: int) -> None:
        """A lane ended (finished its steps, stopped or failed): the others go on without it."""
        with self._cond:
            self.live[lane] = False
            self.waiting[lane] = False
            self.version += 1
            self._advance()
            self._cond.notify_all()

    def control(self, action: str) -> None:
        with self._cond:
            if action == "pause":
                self.playing, self.pending = False, 0
            elif action == "play":
                self.playing, self.pending = True, 0
            elif action == "step":  # while playing, a step request pauses at the next step
                if self.playing:
                    self.playing = False
                else:
                    self.pending += 1
            elif action == "stop":
                self.stopped = True
            self.version += 1
            self._advance()
            self._cond.notify_all()

    def settle(self, action: str, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the lanes show what ``action`` asked for: after
        "pause" every live lane held, after "play" none. The reply to a control request is
        then the state it caused, not the one a moment before: a page that took the older
        "running" for the answer to its pause, after the stream had said "paused", showed
        "running" for as long as the race stayed paused (nothing changed to send again).
        True when settled (or there is nothing to wait for)."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                live = [i for i, x in enumerate(self.live) if x]
                if self.stopped or not live or action not in ("pause", "play"):
                    return True
                held = [self.waiting[i] for i in live]
                if (all(held) if action == "pause" else not any(held)):
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)

    def set_speed(self, speed: float | None) -> None:
        with self._cond:
            self.speed = speed
            self.version += 1
            self._cond.notify_all()

    def state(self) -> dict[str, Any]:
        with self._cond:
            live = [i for i, x in enumerate(self.live) if x]
            return {"playing": self.playing, "speed": self.speed, "budget": self.budget,
                    "steps": list(self.done), "live": live,
                    "held": bool(live) and all(self.waiting[i] for i in live)}


# --- one lane -------------------------------------------------------------------------------------


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _free_name(root: Path, base: str, taken: set[str]) -> str:
    name, i = base, 2
    while (root / name).exists() or name in taken:
        name, i = f"{base}-{i}", i + 1
    return name


class LabSession:
    """One lane of a race: one live run, its thread, its snapshots and curves."""

    def __init__(self, root: Path, params: LabParams, *, plots: bool = True,
                 name: str | None = None, clock: RaceClock | None = None, lane: int = 0,
                 drawn: np.ndarray | None = None) -> None:
        self.params = params.validate()
        self.lane = lane
        self.clock = clock or RaceClock(1, params.paused, params.speed)
        if name is None:
            name = _free_name(root, f"live-{params.loss}-{params.optim}-{_stamp()}", set())
        if params.data == DRAWN:
            if drawn is None:
                raise ApiError(400, "no drawn target on this server: draw one (or drop a "
                                    "points file) on the lab page first")
            # the cell's length comes from the file's points: a temporary copy of the drawing
            # gives it, then the run's data is its own copy (written once the run exists)
            with tempfile.TemporaryDirectory(prefix="ganscope-target-") as tmp:
                f = Path(tmp) / TARGET_FILE
                f.write_text(_points_csv(drawn.astype(np.float64)))
                cfg = lab_config(self.params, f"points:{f}")
            cfg = replace(cfg, data=replace(
                cfg.data, name=f"points:{(root / name / TARGET_FILE).resolve()}"))
            self.run = Run.create(cfg, root, name)
            try:  # the run's own copy of the drawing, then its data from that file
                (self.run.path / TARGET_FILE).write_text(_points_csv(drawn.astype(np.float64)))
                self.dataset = load_dataset(cfg.data, cfg.seed)
            except BaseException:
                shutil.rmtree(self.run.path, ignore_errors=True)
                raise
        else:
            cfg = lab_config(self.params)
            self.dataset = load_dataset(cfg.data, cfg.seed)  # a data error leaves no run
            self.run = Run.create(cfg, root, name)
        self.cfg = cfg
        target = self.dataset.images.numpy()
        self.extent = plot_extent(target)
        self.target = target[:TARGET_POINTS]
        self.point_set = self.dataset.point_set
        self.loss = build_loss(cfg.loss)
        self.probability = self.loss.sigmoid
        self.z = latents_from_seed(0, SNAPSHOT_POINTS, cfg.model.z_dim)  # not the global RNG
        n_batches = math.ceil(len(target) / cfg.train.batch_size)
        self.steps_per_epoch = n_batches // cfg.train.n_critic
        self.total_steps = self.steps_per_epoch * cfg.train.epochs
        self.plots = plots
        w = max(self.extent[1] - self.extent[0], self.extent[3] - self.extent[2])
        self.point_places = decimals(w)  # ~4 significant digits of the plot window
        self._scene: dict[str, Any] | None = None

        self._lock = threading.Lock()
        self._stop = False
        self._final: str | None = None
        self.error: str | None = None
        self.step = 0
        self.epoch = 0
        self.curve: list[tuple[int, float, float, float, float]] = []
        self.snapshot: Snapshot | None = None
        self.snap_version = 0
        self.history: list[Snapshot] = []
        self.history_steps: list[int] = []
        self.metrics: list[dict[str, Any]] = []
        self.live: dict[str, Any] | None = None
        self._live_t = -math.inf
        self._version = 0
        self._seen_epoch = 0
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._train, name=f"ganscope-{self.run.name}",
                                       daemon=True)

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def status(self) -> str:
        if self._final is not None:
            return self._final
        return "paused" if self.clock.waiting[self.lane] else "running"

    @property
    def version(self) -> int:  # bumps on any change a viewer should see
        return self._version + self.clock.version

    # --- control (any thread; a race's lanes are controlled through their clock) ---

    def start(self) -> LabSession:
        self.thread.start()
        return self

    def pause(self) -> None:
        self.clock.control("pause")

    def play(self) -> None:
        self.clock.control("play")

    def step_once(self) -> None:
        """Let exactly one more generator step through, then pause again."""
        self.clock.control("step")

    def stop(self) -> None:
        self._stop = True
        self.clock.control("stop")

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    # --- the training thread ---

    def _should_stop(self, step: int) -> bool:
        return self._stop or self.clock.stopped

    def _on_step(self, v) -> None:
        self.curve.append((v.step, v.loss_d, v.loss_g, v.d_x, v.d_g_z))
        self.step, self.epoch = v.step, v.epoch
        if v.epoch != self._seen_epoch:  # the previous epoch's evaluation is written by now
            self._seen_epoch = v.epoch
            self._read_metrics()
        if v.step == self.clock.snap_step or v.step == self.total_steps:
            self._snap(v)
        self._version += 1
        self.clock.arrive(self.lane, v.step,
                          lambda: None if self._snapped(v.step) else self._snap(v))

    def _snapped(self, step: int) -> bool:
        return bool(self.history_steps) and self.history_steps[-1] == step

    def _snap(self, v) -> None:
        with torch.no_grad():
            fake = sample(v.G, self.z, to_samples=to_floats, batch_size=None).numpy()
            _, _, surface = d_surface(v.D, self.extent, SURFACE_GRID)
            mesh = latent_mesh(v.G) if self.cfg.model.z_dim == 2 else None
        arrows = point_forces(v.D, self.loss, fake[:ARROW_POINTS])
        now = time.monotonic()
        if now - self._live_t >= LIVE_METRICS_INTERVAL_S or self.clock.paused:
            self._live_t = now
            self.live = {"step": v.step, **live_metrics(fake, self.point_set, self.target)}
        snap = Snapshot(v.step, v.epoch, fake=fake, surface=surface, arrows=arrows, mesh=mesh,
                        point_places=self.point_places, probability=self.probability)
        with self._lock:
            if self._snapped(v.step):
                self.history[-1] = snap
            else:
                self.history.append(snap)
                self.history_steps.append(v.step)
            if len(self.history) > MAX_HISTORY:  # keep every other one, and the latest
                keep = sorted(set(range(0, len(self.history), 2)) | {len(self.history) - 1})
                self.history = [self.history[i] for i in keep]
                self.history_steps = [self.history_steps[i] for i in keep]
            self.snapshot = snap
            self.snap_version += 1

    def frame(self, step: int | None = None, index: int | None = None) -> Snapshot | None:
        """A kept snapshot: number ``index`` (negative from the end), or the latest one at or
        before ``step``; None when there is none."""
        with self._lock:
            if not self.history:
                return None
            if index is not None:
                if not -len(self.history) <= index < len(self.history):
                    return None
                return self.history[index]
            i = bisect.bisect_right(self.history_steps, step if step is not None else 10**12)
            return self.history[i - 1] if i else None

    def latest_step(self) -> int:
        """The step of the lane's latest snapshot (0: none yet)."""
        with self._lock:
            return self.history_steps[-1] if self.history_steps else 0

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
        self.clock.leave(self.lane)
        self._read_metrics()
        if self.plots and status != "failed":
            # the curves and training.gif a `ganscope train` of a point run also gets; figures
            # are a convenience (the run is complete), so a failure here is ignored
            with contextlib.suppress(Exception):
                write_run_figures(self.run)
        self._final = status
        self._version += 1
        self.finished.set()

    # --- what the page gets ---

    def fixed(self) -> dict[str, Any]:
        """The parts of the lane's state that never change (the stream sends them once)."""
        return {
            "run": self.name, "lane": self.lane, "total_steps": self.total_steps,
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
        }

    def state(self, since: int | None = None, snapshot: bool = True, fixed: bool = True
              ) -> dict[str, Any]:
        """The lane's state (without :meth:`fixed`'s parts when ``fixed`` is False); with
        ``since``, the curve rows after that index too."""
        out: dict[str, Any] = {
            **(self.fixed() if fixed else {"run": self.name, "lane": self.lane}),
            "status": self.status, "error": self.error,
            "step": self.step, "epoch": self.epoch,
            "curve_len": len(self.curve), "metrics": self.metrics, "live": self.live,
            "history_len": len(self.history), "snap_version": self.snap_version,
            "version": self.version,
        }
        if snapshot:
            out["snapshot"] = self.snapshot
        if since is not None:
            out["curve_from"] = since
            out["curve"] = self.curve[since:since + MAX_CURVE_ROWS]
        return out

    def scene(self) -> dict[str, Any]:
        """What does not change during the session: the target points and the plot window
        (the target's JSON made once)."""
        if self._scene is None:
            target = json.loads(array_json(self.target, self.point_places))
            self._scene = {"target": target, "extent": list(self.extent), "grid": SURFACE_GRID,
                           "mesh_lines": MESH_LINES if self.cfg.model.z_dim == 2 else None}
        return self._scene


# --- a race of lanes, and the server's one race -------------------------------------------------


class Race:
    """Lanes on the same target and seed, one clock: started together, stepped in lockstep."""

    def __init__(self, root: Path, lanes: list[LabParams], *, plots: bool = True,
                 drawn: np.ndarray | None = None) -> None:
        if not 1 <= len(lanes) <= MAX_LANES:
            raise ApiError(400, f"a race has 1 to {MAX_LANES} runs, not {len(lanes)}")
        lanes = [p.validate() for p in lanes]
        first = lanes[0]
        self.clock = RaceClock(len(lanes), first.paused, first.speed)
        stamp, taken = _stamp(), set()
        names = []
        for p in lanes:
            base = (f"live-{p.loss}-{p.optim}-{stamp}" if len(lanes) == 1
                    else f"race-{stamp}-{p.loss}-{p.optim}")
            names.append(_free_name(root, base, taken))
            taken.add(names[-1])
        self.sessions: list[LabSession] = []
        try:
            for i, (p, name) in enumerate(zip(lanes, names, strict=True)):
                self.sessions.append(LabSession(root, p, plots=plots, name=name,
                                                clock=self.clock, lane=i, drawn=drawn))
        except BaseException:  # a lane that cannot start leaves no half race behind
            for s in self.sessions:
                shutil.rmtree(s.run.path, ignore_errors=True)
            raise

    def start(self) -> Race:
        for s in self.sessions:
            s.start()
        return self

    @property
    def finished(self) -> bool:
        return all(s.finished.is_set() for s in self.sessions)

    @property
    def status(self) -> str:
        st = [s.status for s in self.sessions]
        live = [x for x in st if x in ("running", "paused")]
        if live:
            return "paused" if all(x == "paused" for x in live) else "running"
        for final in ("failed", "stopped"):
            if final in st:
                return final
        return "completed"

    @property
    def version(self) -> int:
        return sum(s._version for s in self.sessions) + self.clock.version

    def control(self, action: str) -> None:
        if action == "stop":
            for s in self.sessions:
                s._stop = True
        self.clock.control(action)

    def stop_and_wait(self, timeout: float) -> None:
        self.control("stop")
        end = time.monotonic() + timeout
        for s in self.sessions:
            s.wait(max(0.0, end - time.monotonic()))

    def info(self) -> dict[str, Any]:
        return {"status": self.status, "runs": [s.name for s in self.sessions],
                **self.clock.state(), "version": self.version}

    def live_frame(self) -> list[Snapshot | None]:
        """The newest coherent frame: each lane's latest snapshot at or before the newest step
        that every live lane has a snapshot of (the clock has all lanes snap at the same steps,
        so these are of one step; a lane that ended shows its last one)."""
        with self.clock._cond:
            live = list(self.clock.live)
        latest = [s.latest_step() for s in self.sessions]
        at = min((st for st, lv in zip(latest, live, strict=True) if lv), default=10**12)
        return [s.frame(step=at) for s in self.sessions]

    def frame(self, index: int | None = None, step: int | None = None) -> dict[str, Any]:
        """The scrubber's frame: lane 0's kept snapshot ``index`` (or the latest at or before
        ``step``), and every other lane's latest snapshot at or before that step."""
        lead = self.sessions[0].frame(step=step, index=index)
        if lead is None:
            raise ApiError(404, "no snapshot there: the kept snapshots are 0 to "
                                f"{len(self.sessions[0].history) - 1}")
        at = lead.step
        return {"step": at, "index": bisect.bisect_left(self.sessions[0].history_steps, at),
                "history_len": len(self.sessions[0].history),
                "lanes": [lead, *(s.frame(step=at) for s in self.sessions[1:])]}


class LabManager:
    """At most one live race per server (the CPU is the limit): a new one stops the old. Also
    holds the target drawn on the page (``data="drawn"``)."""

    def __init__(self, root: Path, *, plots: bool = True) -> None:
        self.root = root
        self.plots = plots
        self.race: Race | None = None
        self.drawn: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def session(self) -> LabSession | None:
        """The race's first lane (the single live run when there is one lane)."""
        return self.race.sessions[0] if self.race is not None else None

    def set_drawn(self, points: Any) -> np.ndarray:
        self.drawn = validate_drawn(points)
        return self.drawn

    def start(self, params: LabParams | list[LabParams]) -> Race:
        lanes = params if isinstance(params, list) else [params]
        with self._lock:
            old = self.race
            if old is not None and not old.finished:
                old.stop_and_wait(JOIN_TIMEOUT_S)
            self.root.mkdir(parents=True, exist_ok=True)
            # mlp2d is too small for intra-op threads to pay (as in `ganscope lab2d`): with
            # two, a race of two on 2 busy cores took 8 steps/s instead of 13 (OpenMP waits)
            torch.set_num_threads(1)
            drawn = self.drawn if any(p.data == DRAWN for p in lanes) else None
            self.race = Race(self.root, lanes, plots=self.plots, drawn=drawn).start()
            return self.race

    def current(self) -> Race:
        r = self.race
        if r is None:
            raise ApiError(404, "no live 2-D lab run on this server: start one on the lab page")
        return r

    def control(self, action: str) -> Race:
        r = self.current()
        if action == "stop":
            r.control("stop")
            return r
        if r.finished:
            names = ", ".join(s.name for s in r.sessions)
            raise ApiError(409, f"the live run {names} has ended ({r.status}): start a new one")
        r.control(action)
        r.clock.settle(action, SETTLE_TIMEOUT_S)
        return r

    def set_speed(self, speed: float | None) -> Race:
        r = self.current()
        r.clock.set_speed(validate_speed(speed))
        return r

    def shutdown(self) -> None:
        r = self.race
        if r is not None and not r.finished:
            r.stop_and_wait(JOIN_TIMEOUT_S)


def lane_params(common: LabParams, lane: dict[str, Any]) -> LabParams:
    """A race lane: the race's common settings with the lane's own loss, optimiser and rates."""
    return replace(common, **lane)
