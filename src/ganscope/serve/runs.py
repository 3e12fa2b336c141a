"""Runs for the browser: the list, one run's page, its curves (and their live tail), its files.

Everything is read through the run-directory contract (``Run``, ``iter_runs``, ``read_events``,
``read_metrics``, ``meta``, ``diagnostics.diagnose``), like ``ganscope runs`` and ``compare``.
A damaged part of a run (config, meta, metrics, events) becomes an error line on its card; the
rest of the run, and every other run, is still shown.

Security: a run is addressed only by a name matching the run-name rule, and must resolve to a
directory directly inside the runs dir; files are served only from a whitelist
(``samples/epoch-NNNN.png``, ``figures/NAME.png``) after checking the resolved path is inside
the run directory, so neither ``..`` nor a symbolic link can reach anything else.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ganscope.diagnostics import diagnose
from ganscope.directions.store import list_directions
from ganscope.domains import domain_for
from ganscope.errors import UserError
from ganscope.serve.common import ApiError, sse
from ganscope.training.run import _NAME_RE, EVENT_KEYS, SAMPLE_RE, Run, iter_runs

FIGURE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.png$")
MAX_CURVE_POINTS = 20000  # per request; longer runs are thinned evenly (the last step is kept)
HEARTBEAT_S = 15.0
SCALAR_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "classes_covered",
                  "class_kl", "confidence", "modes_covered", "modes_covered_any", "n_modes",
                  "hq_fraction", "reverse_kl", "sliced_wasserstein", "energy_distance", "mmd_rbf")


# --- addressing -------------------------------------------------------------------------------


def bad_name(name: str) -> ApiError:
    return ApiError(400, f"bad run name {name[:100]!r}: a run name has letters, digits, '.', '_' "
                         "and '-' (at most 100), as the run list shows it")


def open_run(root: Path, name: str) -> Run:
    """The run called ``name`` directly inside ``root``; nothing else (no paths, no links out)."""
    if not _NAME_RE.match(name):
        raise bad_name(name)
    missing = ApiError(404, f"no run named '{name}' in {root}: pick one from the run list "
                            f"(`ganscope runs --runs-dir {root}`)")
    try:
        real = (root / name).resolve(strict=True)
        inside = real.parent == root.resolve(strict=True)
    except (OSError, RuntimeError):
        raise missing from None
    if not inside or not Run(real).config_path.is_file():
        raise missing
    return Run(real)


def run_file(run: Run, kind: str, filename: str) -> Path:
    """A whitelisted file of the run: ``samples/epoch-NNNN.png`` or ``figures/NAME.png``."""
    pattern = {"samples": SAMPLE_RE, "figures": FIGURE_RE}.get(kind)
    if pattern is None or not pattern.match(filename):
        raise ApiError(404, f"no such file {kind}/{filename[:100]}: only samples/epoch-NNNN.png "
                            "and figures/*.png are served")
    base = run.path.resolve()
    try:
        path = (base / kind / filename).resolve(strict=True)
    except (OSError, RuntimeError):
        raise ApiError(404, f"run '{run.name}' has no {kind}/{filename} (yet)") from None
    if not path.is_relative_to(base) or path.parent != base / kind or not path.is_file():
        raise ApiError(404, f"run '{run.name}' has no {kind}/{filename} (yet)")
    return path


# --- what the pages show ----------------------------------------------------------------------


def figure_names(run: Run) -> list[str]:
    if not run.figures.is_dir():
        return []
    return sorted(p.name for p in run.figures.iterdir() if FIGURE_RE.match(p.name) and p.is_file())


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in SCALAR_METRICS if k in metrics}


def _guard(errors: list[str], fn: Callable[[], Any], default: Any = None) -> Any:
    """Run one part of a summary; a damaged part adds its one-line error instead of failing."""
    try:
        return fn()
    except UserError as e:
        errors.append(str(e))
        return default


def _kind(cfg) -> str | None:
    """What the run's generator produces: images or points (images for an unknown data set)."""
    try:
        return domain_for(cfg.data.name).kind
    except UserError:
        return "images"


def run_summary(run: Run) -> dict[str, Any]:
    """One row of the run list: what ``ganscope runs`` prints, plus the latest metrics."""
    errors: list[str] = []
    cfg = _guard(errors, run.config)
    meta = _guard(errors, run.meta)
    status = run.status() if cfg is not None and meta is not None else "damaged"
    meta = meta or {}
    records = _guard(errors, run.read_metrics, [])
    flags = _guard(errors, lambda: [f.to_dict() for f in diagnose(run)], []) if not errors else []
    row: dict[str, Any] = {
        "name": run.name,
        "status": status,
        "preset": cfg.preset if cfg else None,
        "model": cfg.model.name if cfg else None,
        "kind": _kind(cfg) if cfg else None,
        "epochs_done": meta.get("epochs_done", 0),
        "epochs_planned": meta.get("epochs_planned", cfg.train.epochs if cfg else None),
        "step": meta.get("step"),
        "last": meta.get("last") or {},
        "best": meta.get("best"),
        "latest_metrics": _scalars(records[-1].get("metrics", {})) if records else {},
        "latest_epoch": records[-1].get("epoch") if records else None,
        "flags": flags,
        "start_time": meta.get("start_time"),
        "end_time": meta.get("end_time"),
    }
    if errors:
        row["error"] = errors[0]
        row["errors"] = errors
    return row


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Every run in the runs dir; one that cannot be opened or read gets an error card."""
    rows = []
    for run in iter_runs(root):
        try:
            run = open_run(root, run.name)
        except ApiError as e:
            rows.append({"name": run.name, "status": "damaged", "error": str(e),
                         "errors": [str(e)], "flags": [], "last": {}, "latest_metrics": {}})
            continue
        rows.append(run_summary(run))
    return rows


def run_detail(run: Run) -> dict[str, Any]:
    """The run page: summary, config, metrics records, samples, figures, generators, directions."""
    out = run_summary(run)
    errors: list[str] = list(out.get("errors", []))
    cfg = _guard([], run.config)
    meta = _guard([], run.meta, {})
    out["config"] = cfg.to_dict() if cfg else None
    out["meta"] = {k: meta.get(k) for k in (
        "seed", "device", "steps_per_epoch", "d_output", "data", "start_time", "end_time",
        "resumed_at", "error", "environment") if k in meta}
    records = _guard(errors, run.read_metrics, [])
    out["metrics"] = [{"epoch": r.get("epoch"), "source": r.get("source"),
                       "checkpoint": r.get("checkpoint"), "n_fake": r.get("n_fake"),
                       "metrics": _scalars(r.get("metrics", {}))} for r in records]
    out["samples"] = run.sample_epochs()
    out["figures"] = figure_names(run)
    out["generators"] = run.generator_epochs()
    out["has_last"] = run.last_checkpoint.is_file()
    out["directions"] = [{"name": d.name, "method": d.method, "attribute": d.attribute}
                         for d in _guard(errors, lambda: list_directions(run), [])]
    out["probe"] = (run.probe_dir / "probe.json").is_file()
    if errors:
        out["error"], out["errors"] = errors[0], list(dict.fromkeys(errors))
    return out


def curve_columns(events: list[dict[str, Any]], max_points: int = MAX_CURVE_POINTS
                  ) -> dict[str, Any]:
    """Events as columns (step, epoch and the four numbers), thinned to ``max_points``."""
    stride = 1
    if len(events) > max_points > 0:
        stride = -(-len(events) // max_points)
        keep = events[::stride]
        if keep[-1] is not events[-1]:
            keep.append(events[-1])
        events = keep
    cols: dict[str, Any] = {"step": [e.get("step") for e in events],
                            "epoch": [e.get("epoch") for e in events]}
    for k in EVENT_KEYS:
        cols[k] = [e.get(k) for e in events]
    cols["stride"] = stride
    cols["last_step"] = events[-1].get("step") if events else None
    return cols


def read_curves(run: Run, after: int = 0, max_points: int = MAX_CURVE_POINTS) -> dict[str, Any]:
    events = [e for e in run.read_events() if isinstance(e.get("step"), int) and e["step"] > after]
    return curve_columns(events, max_points)


async def stream_run(run: Run, after: int, poll_s: float, lifetime_s: float,
                     is_disconnected: Callable[[], Any]) -> AsyncIterator[str]:
    """Server-sent events while the run trains: ``events`` (new curve points), ``status``
    (status / epochs changed: the page re-reads the run), ``end`` (no longer running, or the
    stream's lifetime is over: the page may reconnect with ``after``)."""
    last_step, last_state, t0 = after, None, time.monotonic()
    beat = t0
    while True:
        if await is_disconnected():
            return
        # Status first, then events: once the status says "not running", the events read
        # afterwards are complete (the loop flushes them before it writes its final status).
        try:
            meta = await asyncio.to_thread(run.meta)
            status = await asyncio.to_thread(run.status)
            events = await asyncio.to_thread(run.read_events)
        except UserError as e:
            yield sse("end", {"status": "damaged", "error": str(e)})
            return
        new = [e for e in events if isinstance(e.get("step"), int) and e["step"] > last_step]
        if new:
            yield sse("events", curve_columns(new))
            last_step = new[-1]["step"]
        state = (status, meta.get("epochs_done"), len(run.sample_epochs()))
        if state != last_state:
            yield sse("status", {"status": status, "epochs_done": meta.get("epochs_done"),
                                 "epochs_planned": meta.get("epochs_planned"),
                                 "samples": run.sample_epochs(), "step": meta.get("step")})
            last_state = state
        if status != "running":
            yield sse("end", {"status": status, "last_step": last_step})
            return
        now = time.monotonic()
        if now - t0 > lifetime_s:
            yield sse("end", {"status": status, "last_step": last_step, "reason": "lifetime"})
            return
        if now - beat > HEARTBEAT_S:
            yield ": keep-alive\n\n"
            beat = now
        await asyncio.sleep(poll_s)
