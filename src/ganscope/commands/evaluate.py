"""``ganscope eval`` and ``ganscope metrics``: scoring a run's generators (or an image set).

Handlers import their library modules when they run, so ``ganscope --help``, completion
and a quick command do not pay for the others (matplotlib, PIL and the modules over them);
cheap ones (a few ms, nothing third-party) are imported at the top.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from ganscope.config import MIN_EVAL_N, DataConfig, EvalConfig
from ganscope.errors import UserError
from ganscope.tables import format_table
from ganscope.training.run import resolve_run


def _eval_config(a: argparse.Namespace, base):
    """The run's (or default) EvalConfig with this command's options applied, validated."""
    from ganscope.metrics.registry import METRICS

    ec = dataclasses.replace(base)
    if a.n is not None:
        if a.n < MIN_EVAL_N:
            raise UserError(f"-n must be at least {MIN_EVAL_N}")
        ec.n = a.n
    if a.seed is not None:
        ec.seed = a.seed
    if a.reference:
        ec.reference = a.reference
    if a.metrics:
        ec.metrics = a.metrics
    if not ec.metric_names():
        raise UserError("--metrics must name at least one metric (see `ganscope metrics`)")
    for name in ec.metric_names():
        METRICS.get(name)
    return ec


def _print_records(records: list[dict], label: str) -> None:
    from ganscope.metrics.table import metric_cells, present_columns, provenance_line

    cols = present_columns(records)
    rows = [[str(r.get(label, "-"))] + metric_cells(r["metrics"], cols) for r in records]
    print(format_table([label.upper()] + [c[1] for c in cols], rows))
    print(provenance_line(records[-1]))


def cmd_eval(a: argparse.Namespace) -> int:
    from ganscope.domains import domain_for
    from ganscope.metrics.evaluate import evaluate_images
    from ganscope.metrics.image_files import load_image_set
    from ganscope.training.evaluation import evaluate_run

    if bool(a.run) == bool(a.images):
        raise UserError("give a run to evaluate, or --images FILE.npy|DIR, but not both")
    if getattr(a, "inception_weights", None):  # read where the Inception extractor loads
        from ganscope.metrics.inception import WEIGHTS_ENV, resolve_weights

        os.environ[WEIGHTS_ENV] = str(resolve_weights(a.inception_weights).resolve())
    against = getattr(a, "against", None)
    if (against or getattr(a, "image_size", None)) and not (a.images and against):
        raise UserError("--against and --image-size go with --images: ganscope eval "
                        "--images GENERATED --against REAL")
    if a.images:
        if a.checkpoint != "last" or a.no_save or a.no_ema:
            raise UserError("--checkpoint, --no-save and --no-ema apply to runs, not to "
                            "--images")
        if against:
            return _eval_against(a)
        ec = _eval_config(a, EvalConfig())  # bad options fail before any file is read
        images = load_image_set(a.images)
        if a.n is not None:
            images = images[:a.n]
        # an image set is scored against the default data set's reference, in its features
        domain = domain_for(DataConfig().name)
        ref = domain.reference(ec.reference, ec.n, a.data_dir, progress=not a.no_progress)
        rec = evaluate_images(images, ref, metrics=ec.metric_names(), seed=ec.seed,
                              progress=not a.no_progress, what=str(a.images))
        rec = {"images": str(a.images), **rec}
        if a.json:
            print(json.dumps([rec], indent=2))
        else:
            _print_records([rec], "images")
        return 0
    run = resolve_run(a.run, a.runs_dir)
    ec = _eval_config(a, run.config().eval)
    domain = domain_for(run.config().data.name)
    asked = domain.no_metrics_asked(ec)
    if asked:
        raise UserError(f"--metrics {asked[0]} does not apply to {domain.title} runs (their "
                        "extractor has no class probabilities): leave it out")
    if not domain.eval_metrics(ec):
        raise UserError("--metrics must name at least one metric (see `ganscope metrics`)")
    records = evaluate_run(run, a.checkpoint, ec, data_dir=a.data_dir,
                           progress=not a.no_progress,
                           save=not a.no_save, raw=a.no_ema)
    if a.json:
        print(json.dumps(records, indent=2))
        return 0
    _print_records(records, "epoch")
    if not a.no_save:
        best = run.meta().get("best")
        where = f"; best FID {best['fid']:.2f} at epoch {best['epoch']}" if best else ""
        print(f"saved to {run.metrics_path}{where}")
    return 0


def _eval_against(a: argparse.Namespace) -> int:
    """Two image sets (folders or arrays) in Inception features, as ``python -m pytorch_fid
    GENERATED REAL`` compares them: both read as an image folder is (RGB, the largest centred
    square, at ``--image-size``, by default the images' own size, so square images are not
    resized before Inception's own resize to 299)."""
    from ganscope.data.folder import load_folder, own_size
    from ganscope.domains import domain_for
    from ganscope.metrics.evaluate import evaluate_images, reference_from_images

    ec = _eval_config(a, EvalConfig())
    dom = domain_for("folder")
    asked = dom.no_metrics_asked(ec)
    if asked:
        raise UserError(f"--metrics {asked[0]} does not apply to Inception features (no class "
                        "probabilities): leave it out")
    size = a.image_size or own_size(a.images)
    if not 8 <= size <= 512:
        raise UserError(f"--image-size {size} is out of range: use 8..512")
    progress = not a.no_progress
    ex = dom.extractor()  # the weights first: a missing file is one line before any decoding
    fake = load_folder(a.images, size, 3, progress=progress or None).images
    if a.n is not None:
        fake = fake[:a.n]
    real = load_folder(a.against, size, 3, progress=progress or None)
    ex.accepts = (3, size, size)
    ref = reference_from_images(real.images, dataset="folder", split="all", n=ec.n,
                                extractor=ex, source=real.source, progress=progress)
    rec = evaluate_images(fake, ref, metrics=dom.eval_metrics(ec), seed=ec.seed,
                          progress=progress, what=str(a.images))
    rec = {"images": str(a.images), "against": str(a.against), **rec}
    if a.json:
        print(json.dumps([rec], indent=2))
    else:
        _print_records([rec], "images")
    return 0


def cmd_metrics(a: argparse.Namespace) -> int:
    from ganscope.domains import domain_for
    from ganscope.metrics.registry import METRICS

    ex = domain_for(DataConfig().name).extractor()  # the default data set's feature space
    info = {"metrics": METRICS.names(), "extractor": ex.name, "sha256": ex.sha256}
    if a.json:
        print(json.dumps(info, indent=2))
        return 0
    for name in METRICS.names():
        doc = (METRICS.get(name).__doc__ or "").strip().splitlines()
        print(f"{name:8s}  {doc[0] if doc else ''}")
    print(f"features: {ex.name} (sha256 {ex.sha256[:12]})")
    return 0
