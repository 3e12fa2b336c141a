"""What G's moving average is worth on a BatchNorm generator, and what its BatchNorm statistics
do to it (issue 19: the ablation's EMA rows, and a `best-cpu` preset).

One run of ``--preset`` trains for ``--minutes`` of wall clock with no EMA of its own; after
every generator step the script updates one moving average per ``--decays`` value (the loop's
own :class:`GeneratorEMA`, warm-up ``--ema-start`` steps), so every average is of the very same
iterates. It then scores, as ``ganscope eval`` does (the shipped Fashion-MNIST features, the
test split, ``--n`` samples on the evaluation seed's latents):

- ``raw``: the trained G;
- ``ema D copied``: the average with the raw G's BatchNorm running statistics, as ganscope
  sampled it before standing statistics;
- ``ema D standing``: the average with its own standing statistics, as it samples now.

Writes JSON and prints a table; asserts nothing.

    .venv/bin/python benchmarks/ema_batchnorm.py [--preset e2-dcgan-fixed] [--minutes 15] \\
        [--decays 0.99,0.995,0.999] [--seed 0] [--n 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "ema_batchnorm.json"
sys.path.insert(0, str(HERE))

from ganscope.config import apply_overrides, load_config  # noqa: E402
from ganscope.domains import domain_for, load_dataset  # noqa: E402
from ganscope.metrics.evaluate import evaluate_generator  # noqa: E402
from ganscope.techniques.ema import GeneratorEMA  # noqa: E402
from ganscope.training.loop import train  # noqa: E402
from ganscope.training.run import Run, load_generator  # noqa: E402
from train_speed import OtherLoad, atomic_write_json, cpu_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="e2-dcgan-fixed")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--decays", default="0.99,0.995,0.999")
    ap.add_argument("--ema-start", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the machine's)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    decays = [float(d) for d in args.decays.split(",")]

    cfg = apply_overrides(load_config(args.preset), [
        f"seed={args.seed}", f"train.minutes={args.minutes}", "train.epochs=1000",
        "eval.every=0", "tech.ema=0", f"train.threads={args.threads}", f"eval.n={args.n}"])
    cfg = cfg.validate()
    data = load_dataset(cfg.data)
    emas: dict[float, GeneratorEMA] = {}

    def on_step(v) -> None:
        if not emas:
            emas.update({d: GeneratorEMA(v.G, d, args.ema_start, z_dim=cfg.model.z_dim,
                                         batch_size=cfg.train.batch_size, seed=cfg.seed + 4)
                         for d in decays})
        for ema in emas.values():
            ema.update(v.G, v.step)

    with tempfile.TemporaryDirectory() as tmp:
        run = Run.create(cfg, Path(tmp), "ema-batchnorm")
        t0 = time.perf_counter()
        with OtherLoad() as load:
            train(run, dataset=data, progress=True, verbose=False, on_step=on_step)
        seconds = time.perf_counter() - t0
        meta = run.meta()
        domain = domain_for(cfg.data.name)
        ec = cfg.eval
        ex, ref = domain.run_reference(cfg, ec, None)

        def score(G) -> dict:
            m = evaluate_generator(G, cfg.model.z_dim, ec, ref, extractor=ex)["metrics"]
            return {k: m.get(k) for k in ("fid", "kid", "precision", "recall",
                                          "classes_covered")}

        rows = [{"variant": "raw", **score(load_generator(run, raw=True))}]
        for d, ema in emas.items():
            rows.append({"variant": f"ema {d} copied", **score(ema.G)})  # stale: G's stats
            rows.append({"variant": f"ema {d} standing", **score(ema.generator())})
    result = {"preset": args.preset, "seed": args.seed, "minutes": args.minutes,
              "ema_start": args.ema_start, "n": args.n, "steps": meta.get("step"),
              "epochs_done": meta.get("epochs_done"), "train_seconds": round(seconds, 1),
              "cpu": cpu_model(), "other_load_during_training": round(load.fraction, 3),
              "rows": rows}
    atomic_write_json(args.out, result)
    print(f"{args.preset}, seed {args.seed}: {result['steps']} generator steps in "
          f"{args.minutes} min ({result['epochs_done']:.2f} epochs), {result['cpu']}")
    print(f"{'variant':<24} {'FID':>8} {'KID':>8} {'prec':>6} {'recall':>6} {'classes':>7}")
    for r in rows:
        print(f"{r['variant']:<24} {r['fid']:>8.1f} {r['kid']:>8.4f} {r['precision']:>6.3f} "
              f"{r['recall']:>6.3f} {r['classes_covered']:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
