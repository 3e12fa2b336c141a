"""Evaluating a run: which of its checkpoints, its metrics.jsonl records and its best epoch.

The scoring itself (reference features, generated images, metrics) is
:mod:`ganscope.metrics.evaluate`; this module reads and writes run directories around it, for
training (``--eval-every``) and ``ganscope eval RUN``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganscope.domains import DOMAINS, domain_for
from ganscope.environment import now_iso
from ganscope.errors import ConfigError, RunError
from ganscope.io import file_sha256
from ganscope.metrics.evaluate import evaluate_generator
from ganscope.training.run import Run, load_checkpoint, load_generator

if TYPE_CHECKING:  # annotations only
    from ganscope.config import EvalConfig, RunConfig


def check_evaluable(cfg: RunConfig, run_name: str) -> None:
    """ConfigError unless the run's domain is scored offline (in its shipped features)."""
    if not domain_for(cfg.data.name).offline_eval:
        titles = [DOMAINS.get(n).title for n in DOMAINS.names() if DOMAINS.get(n).offline_eval]
        which = titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} and {titles[-1]}"
        raise ConfigError(
            f"run '{run_name}' trains on {cfg.data.name}: `ganscope eval` measures {which} "
            "runs only, each in its own domain's feature extractor"
        )


def select_checkpoints(run: Run, which: str | int = "last") -> list[tuple[int, Path]]:
    """(epoch, path) of the generators to evaluate: ``last``, ``all`` or one epoch number."""
    if which == "all":
        eps = run.generator_epochs()
        if not eps:
            raise RunError(f"run '{run.name}' kept no per-epoch generators "
                           "(train.save_generators=false): use --checkpoint last")
        return [(e, run.generator_checkpoint(e)) for e in eps]
    if which == "last":
        # stable: the latest per-epoch file, which a metrics record can name for good
        epoch, path = run.checkpoint_for(stable=True)
        if epoch is None:
            epoch = int(load_checkpoint(path)["epoch"])
        return [(epoch, path)]
    try:
        epoch = int(which)
    except (TypeError, ValueError):
        raise ConfigError(f"bad --checkpoint {which!r}: use last, all or an epoch number") from None
    return [(epoch, run.checkpoint_for(epoch)[1])]


def run_record(run: Run, epoch: int, checkpoint: Path, result: dict[str, Any],
               source: str) -> dict[str, Any]:
    """A metrics.jsonl line: the result plus which run, epoch and checkpoint file it measured."""
    return {"time": now_iso(), "run": run.name, "epoch": epoch,
            "checkpoint": str(checkpoint.relative_to(run.path)),
            "checkpoint_sha256": file_sha256(checkpoint), "source": source, **result}


def comparable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two records measure on the same scale: same extractor, reference and sample sizes, and
    the same weights (G's moving average, or the trained ones: ``eval --no-ema``)."""
    return (a.get("extractor") == b.get("extractor") and a.get("n_fake") == b.get("n_fake")
            and bool(a.get("raw")) == bool(b.get("raw"))
            and a.get("reference", {}).get("images_sha256")
            == b.get("reference", {}).get("images_sha256"))


def best_by_fid(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The lowest-FID record among those comparable with the latest one."""
    withfid = [r for r in records if math.isfinite(r.get("metrics", {}).get("fid", math.nan))]
    if not withfid:
        return None
    latest = withfid[-1]
    return min((r for r in withfid if comparable(r, latest)), key=lambda r: r["metrics"]["fid"])


def record_best(run: Run) -> dict[str, Any] | None:
    """Store the best checkpoint by FID in meta.json (``best``) and return it."""
    best = best_by_fid(run.read_metrics())
    if best is None:
        return None
    entry = {"epoch": best["epoch"], "fid": best["metrics"]["fid"],
             "checkpoint": best["checkpoint"]}
    run.update_meta(best=entry)
    return entry


def evaluate_run(run: Run, which: str | int = "last", ec: EvalConfig | None = None, *,
                 data_dir: str | None = None, progress: bool = False, save: bool = True,
                 raw: bool = False) -> list[dict[str, Any]]:
    """Evaluate a run's checkpoint(s); append the records to its metrics.jsonl when ``save``.

    ``raw``: a run with ``tech.ema`` is scored with its trained weights instead of their
    moving average; its records say ``"raw": true`` and compare only with each other."""
    cfg = run.config()
    check_evaluable(cfg, run.name)
    domain = domain_for(cfg.data.name)
    ec = ec or cfg.eval
    ec = dataclasses.replace(ec, metrics=",".join(domain.eval_metrics(ec)))  # what it can give
    chosen = select_checkpoints(run, which)
    ex, ref = domain.run_reference(cfg, ec, data_dir, progress=progress)
    records = []
    for epoch, path in chosen:
        G = load_generator(run, None if path == run.last_checkpoint else epoch, raw=raw)
        res = evaluate_generator(G, cfg.model.z_dim, ec, ref, extractor=ex, progress=progress)
        rec = run_record(run, epoch, path, res, source="eval")
        if raw and cfg.tech.ema > 0:
            rec["raw"] = True
        records.append(rec)
        if save:  # one at a time: an interrupted `--checkpoint all` keeps what it measured
            run.append_metrics([rec])
    if save:
        record_best(run)
    return records
