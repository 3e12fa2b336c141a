"""Training many runs at once: plan (skip, resume or create), then a pool of workers or Ray.

Shared by ``ganscope sweep``, ``ganscope lab2d`` and ``ganscope lab``. Every run is an ordinary
run directory trained by :func:`ganscope.training.loop.train` in a worker with one torch thread
(small nets gain nothing from intra-op threads; one process per core does). A batch started
again keeps completed runs, resumes interrupted ones from their checkpoint (bit-identical to an
uninterrupted run), and recreates runs that never reached a checkpoint.

Stacking (``stack=True``, the CLI's ``--stack``, the default): runs that differ only in their
seed and can train stacked (``ganscope.training.stacked``) form one job, trained as one model in
one process; the rest are jobs of one run. Each run still gets its own run directory.

Backends: ``local`` (a ``ProcessPoolExecutor``, one worker per core, a progress bar over runs)
and ``ray`` (one remote task per run on a Ray cluster, or on a local Ray instance; the run
directories must then lie on a filesystem every node sees).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ganscope.config import RunConfig, save_yaml
from ganscope.environment import usable_cores
from ganscope.errors import ConfigError, RunError, TrainingInterrupted
from ganscope.io import atomic_write_text
from ganscope.training.loop import train
from ganscope.training.run import EXECUTION_KEYS, Run
from ganscope.training.stacked import NotStackable, group_stackable, train_stacked

BACKENDS = ("local", "ray")
RAY_MISSING = "the ray backend needs Ray: pip install 'ganscope[ray]'"
# EXECUTION_KEYS (training.run): settings that say how a run executes, not what it computes:
# they may differ between a run's saved config and a re-planned one (e.g. --threads) without
# making the run another run (`train --resume` may change them too).


def _write_figures(run: Run) -> None:
    # local: loads matplotlib (~1 s); keep it off `import ganscope.cli`
    from ganscope.viz.run_figures import write_run_figures

    write_run_figures(run)


def train_worker(run_dir: str, resume: bool = False, plots: bool = True, threads: int = 1
                 ) -> dict[str, Any]:
    """Train one run in this process with ``threads`` torch threads; never raises for a failed
    run.

    Returns ``{"run", "status" (completed|failed|interrupted), "error", "seconds"}``. With
    ``plots`` it also writes the run's curves (and, for 2-D point runs, their animation), as
    ``ganscope train`` does at the end.
    """
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"run": run_dir, "status": "completed", "error": None}
    try:
        run = train(Run(run_dir), resume=resume, progress=False, verbose=False)
        if plots:
            _write_figures(run)
    except TrainingInterrupted:
        out["status"] = "interrupted"
    except Exception as e:  # the run's meta says failed; the batch goes on
        out.update(status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0][:300])
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def train_job(job: Sequence[tuple[str, bool]], plots: bool = True, threads: int = 1
              ) -> list[dict[str, Any]]:
    """Train one job: a single run (``train_worker``) or a stack of runs of one config and
    different seeds (``train_stacked``), one result per run; never raises for failed runs.

    A job that mixes new and resumed runs, or whose runs stopped at different steps, cannot
    step in lockstep (``train_stacked`` says so before writing anything): its runs then train
    one after another, alone."""
    resume = {r for _, r in job}
    if len(job) == 1 or len(resume) > 1:
        return [train_worker(p, r, plots, threads) for p, r in job]
    dirs = [p for p, _ in job]
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    status, error = "completed", None
    try:
        try:
            runs = train_stacked([Run(p) for p in dirs], resume=resume.pop(), progress=False,
                                 verbose=False)
        except NotStackable:  # found before anything was written (a user's BatchNorm, ...)
            return [train_worker(p, r, plots, threads) for p, r in job]
        if plots:
            for run in runs:
                _write_figures(run)
    except TrainingInterrupted:
        status = "interrupted"
    except Exception as e:  # each run's meta says failed; the batch goes on
        status, error = "failed", f"{type(e).__name__}: {e}".splitlines()[0][:300]
    seconds = round(time.perf_counter() - t0, 2)
    results = []
    for p in dirs:
        # a run whose plateau rule completed it left the stack before the interrupt or the
        # failure: it is completed, whatever ended the others
        own = Run(p).status()
        done = status == "completed" or own == "completed"
        results.append({"run": p, "status": own if done else status,
                        "error": None if done else error, "seconds": seconds,
                        "stacked": len(dirs)})
    return results


def make_jobs(todo: Sequence[tuple[str, bool]], stack: bool = True
              ) -> list[list[tuple[str, bool]]]:
    """``todo`` as jobs: with ``stack``, runs of one config but the seed (and stackable) share
    a job, in the order of their first run; else one run per job."""
    if not stack or len(todo) < 2:
        return [[t] for t in todo]
    flags = dict(todo)
    groups = group_stackable([p for p, _ in todo], [Run(p).config() for p, _ in todo])
    return [[(p, flags[p]) for p in g] for g in groups]


# --- planning ----------------------------------------------------------------------------------


def _what(cfg: RunConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    for k in EXECUTION_KEYS:
        d["train"].pop(k, None)
    return d


@dataclass
class Plan:
    """What a batch will do: every run, and which of them to train (and whether to resume)."""

    runs: list[Run]
    todo: list[tuple[str, bool]] = field(default_factory=list)  # (run dir, resume)
    kept: list[str] = field(default_factory=list)  # completed before: left alone

    @property
    def resumed(self) -> list[str]:
        return [p for p, r in self.todo if r]


def _patience(p: int) -> float:
    return math.inf if p <= 0 else p  # 0: the rule is off, no run stops early


def _later_stop(old: RunConfig, new: RunConfig) -> tuple[bool, bool] | None:
    """(later cap, more patience) when ``new`` is ``old`` with a later stop: train.epochs no
    fewer and eval.patience no shorter (0, off, is the longest), one of them later, nothing
    else changed; None otherwise."""
    a, b = _what(old), _what(new)
    ea, eb = a["train"].pop("epochs"), b["train"].pop("epochs")
    pa, pb = _patience(a["eval"].pop("patience")), _patience(b["eval"].pop("patience"))
    if a != b or eb < ea or pb < pa or (ea, pa) == (eb, pb):
        return None
    return eb > ea, pb > pa


def plan_runs(entries: Sequence[tuple[Path, RunConfig]]) -> Plan:
    """For each (run dir, config): keep it when completed with this config, resume it when it
    stopped after a checkpoint, else (re)create it. A run dir that holds another config is
    recreated only when it never completed; a completed one is an error (its results would be
    silently replaced).

    A config that only stops later extends the run from its last checkpoint, as ``ganscope
    train --resume --set train.epochs=N`` does for the cap. A later cap (train.epochs;
    ``lab2d --steps``): a run that hit the old cap continues, one its plateau rule stopped is
    kept. More patience (eval.patience): a run its rule stopped continues, one that hit its cap
    is kept. Either way the run ends as if trained with the new config from the start: a rule
    that fires only after N evaluations without a gain fires wherever a longer one would (so a
    capped run never met either), and a longer one never fires where a shorter one first did
    (the gain that kept the shorter one going is still in the longer window). An interrupted
    run continues in any case."""
    plan = Plan([])
    for path, cfg in entries:
        path = Path(path)
        run = Run(path)
        plan.runs.append(run)
        if run.config_path.is_file():
            try:
                old = run.config()
                same = _what(old) == _what(cfg)
                later = None if same else _later_stop(old, cfg)
                status = run.status()
            except RunError:
                same, later, status = False, None, "damaged"
            if later and run.last_checkpoint.is_file() and status in (
                    "completed", "interrupted", "failed", "died"):
                later_cap, more_patience = later
                if status == "completed":
                    # meta read only here: most plans never extend anything
                    stopped = run.meta().get("stopped_early") or {}
                    if not (more_patience if stopped.get("reason") == "plateau" else later_cap):
                        plan.kept.append(str(path))
                        continue
                with run.training_lock():  # the run's own config, rewritten as resume does
                    atomic_write_text(run.config_path, save_yaml(cfg))
                plan.todo.append((str(path), True))
                continue
            if status == "running":
                raise RunError(f"run {path} is being trained by process {run.meta().get('pid')}:"
                               " wait for it, or stop it first")
            if same and status == "completed":
                plan.kept.append(str(path))
                continue
            if same and run.last_checkpoint.is_file() and status in (
                    "interrupted", "failed", "died"):
                plan.todo.append((str(path), True))
                continue
            if not same and status == "completed":
                raise RunError(f"run {path} was completed with another config: move it away, "
                               "or write this batch to another directory")
        if path.exists():
            shutil.rmtree(path)
        Run.create(cfg, path.parent, path.name)
        plan.todo.append((str(path), False))
    return plan


# --- executing -----------------------------------------------------------------------------------


def _bar(total: int, desc: str, progress: bool):
    return tqdm(total=total, desc=desc, unit="run", disable=not progress or total == 0,
                dynamic_ncols=True, file=sys.stderr)


def _postfix(results: list[dict[str, Any]]) -> str:
    done = sum(r["status"] == "completed" for r in results)
    failed = sum(r["status"] == "failed" for r in results)
    return f"completed {done}, failed {failed}"


def pool_shape(n_jobs: int, workers: int | None = None) -> tuple[int, int]:
    """(processes, torch threads each) for ``n_jobs`` jobs on the cores this process may use:
    a process per core by default, never more than the jobs; spare cores become threads, up
    to ``OMP_NUM_THREADS`` where it is set (a user's limit on a shared machine, as torch's own
    default honours it; pytest's workers set it to 1)."""
    cores = usable_cores()
    workers = max(1, min(workers or cores, n_jobs))
    threads = max(1, cores // workers)
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if limit.isdigit() and int(limit) > 0:
        threads = min(threads, int(limit))
    return workers, threads


def run_local(todo: Sequence[tuple[str, bool]], workers: int | None = None, *,
              desc: str = "runs", progress: bool = True, plots: bool = True,
              on_result: Callable[[dict[str, Any]], None] | None = None, stack: bool = False
              ) -> list[dict[str, Any]]:
    """Train ``todo`` in a process pool (one worker per core by default), longest first as
    given; results in completion order. Fewer jobs than cores (stacks) get the spare cores as
    torch threads."""
    if not todo:
        return []
    jobs = make_jobs(todo, stack)
    workers, threads = pool_shape(len(jobs), workers)
    results: list[dict[str, Any]] = []
    bar = _bar(len(todo), desc, progress)
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        futs = [pool.submit(train_job, job, plots, threads) for job in jobs]
        for f in as_completed(futs):
            for res in f.result():
                results.append(res)
                if on_result is not None:
                    on_result(res)
                bar.set_postfix_str(_postfix(results), refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        # The workers got the same Ctrl-C: each saves a checkpoint at its next step.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
    return results


def ray_module():
    """The ``ray`` module, or one ConfigError line saying how to install it."""
    try:
        # local: ray is an optional extra (ganscope[ray])
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


RAY_NICENESS = "RAY_worker_niceness"


def start_local_ray(ray: Any, **init_kw: Any) -> None:
    """``ray.init(**init_kw)`` for a local instance whose workers run at this process's priority.

    Ray starts its task workers at niceness 15 (its ``worker_niceness`` setting), so that its
    own daemons stay responsive; here the workers *are* the work, and at 15 they get a few per
    cent of a core next to any busy process. Measured on a 2-core AMD EPYC with two CPU-bound
    processes beside it: the sweep test's Ray task was still importing torch, at 3-6 % of a
    core, when its 300 s ran out (24 s on a quiet machine). The raylet reads the setting from
    its environment when ``ray.init`` starts it; a ``RAY_worker_niceness`` the user set wins.
    A cluster (``address``) keeps its own setting: its nodes were started elsewhere."""
    mine = RAY_NICENESS not in os.environ and hasattr(os, "nice")  # no niceness on Windows
    if mine:
        os.environ[RAY_NICENESS] = str(os.nice(0))
    try:
        ray.init(**init_kw)
    finally:
        if mine:
            os.environ.pop(RAY_NICENESS, None)


def run_ray(todo: Sequence[tuple[str, bool]], address: str | None = None, *,
            desc: str = "runs", progress: bool = True, plots: bool = True,
            on_result: Callable[[dict[str, Any]], None] | None = None, stack: bool = False
            ) -> list[dict[str, Any]]:
    """Train ``todo`` as Ray tasks (one CPU each, one per job) calling the same job function.

    Uses the Ray instance this process is already connected to; otherwise connects to
    ``address`` (HOST:PORT of a cluster head, or ``auto``), or starts a local instance with one
    CPU per core (``start_local_ray``: its workers at this process's priority), which is shut
    down again at the end."""
    ray = ray_module()
    if not todo:
        return []
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": "ERROR"}
        try:
            if address:
                ray.init(address=address, **kw)
            else:
                start_local_ray(ray, num_cpus=usable_cores(), **kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = address or "a local instance"
            raise ConfigError(f"cannot start Ray on {where}: {str(e).splitlines()[0][:200]}"
                              ) from None
        started = True
    task = ray.remote(num_cpus=1, max_retries=0)(train_job)
    results: list[dict[str, Any]] = []
    bar = _bar(len(todo), desc, progress)
    try:
        pending = {task.remote(job, plots): job for job in make_jobs(todo, stack)}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    got = ray.get(ref)
                except Exception as e:  # the task's process died (memory, node lost)
                    got = [{"run": p, "status": "failed", "seconds": None,
                            "error": f"ray task failed: {str(e).splitlines()[0][:200]}"}
                           for p, _ in job]
                for res in got:
                    results.append(res)
                    if on_result is not None:
                        on_result(res)
                    bar.set_postfix_str(_postfix(results), refresh=False)
                    bar.update(1)
    finally:
        bar.close()
        if started:
            ray.shutdown()
    return results


def execute(todo: Sequence[tuple[str, bool]], backend: str = "local", *,
            workers: int | None = None, address: str | None = None, desc: str = "runs",
            progress: bool = True, plots: bool = True, stack: bool = False
            ) -> list[dict[str, Any]]:
    """Train ``todo`` with the chosen backend; results in completion order. ``stack``: runs
    that differ only in their seed train stacked (``make_jobs``)."""
    if backend == "local":
        if address:
            raise ConfigError("--address applies to --backend ray only")
        return run_local(todo, workers, desc=desc, progress=progress, plots=plots, stack=stack)
    if backend == "ray":
        return run_ray(todo, address, desc=desc, progress=progress, plots=plots, stack=stack)
    raise ConfigError(f"unknown backend '{backend}': choose local or ray")


def raise_on_failure(results: Sequence[dict[str, Any]]) -> None:
    """For callers that cannot use a partial batch: the first failure as one RunError line."""
    bad = [r for r in results if r["status"] != "completed"]
    if bad:
        r = bad[0]
        raise RunError(f"run {r['run']} {r['status']}"
                       f"{': ' + r['error'] if r.get('error') else ''}"
                       f"{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}")
