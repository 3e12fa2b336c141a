"""bf16 against fp32 on this CPU: does autocast change what a conv preset learns, and how much
faster is it? (issue 20: ``--precision auto`` may only be a preset's default where it holds).

For each seed and precision, interleaved (fp32 then bf16 for seed 0, then seed 1, ...), one
process trains the preset for ``--epochs`` epochs on the real training split with the machine's
threads, then scores its last generator as ``ganscope eval`` does (10,000 samples, the shipped
Fashion-MNIST features, the test split). Reported per precision: FID mean ± std over seeds,
seconds per epoch of training (evaluation excluded), and the question the
issue asks: is |mean FID bf16 - mean FID fp32| within the seed-to-seed spread (the larger of the
two standard deviations)? Seconds are ``train()``'s wall time (the steps plus each epoch's
sample grid and checkpoint). Writes JSON and prints a table; asserts nothing.

    .venv/bin/python benchmarks/precision_fid.py [--preset e2-dcgan-fixed] [--seeds 0-2] \\
        [--epochs 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "precision_fid.json"
sys.path.insert(0, str(HERE))

from ganscope.config import apply_overrides, load_config  # noqa: E402
from ganscope.domains import load_dataset  # noqa: E402
from ganscope.environment import cpu_flags, native_bf16  # noqa: E402
from ganscope.experiments.sweep import parse_seeds  # noqa: E402
from ganscope.training.evaluation import evaluate_run  # noqa: E402
from ganscope.training.loop import train  # noqa: E402
from ganscope.training.run import Run  # noqa: E402
from train_speed import OtherLoad, atomic_write_json, cpu_model  # noqa: E402


def one_run(preset: str, seed: int, precision: str, epochs: int, root: Path, data) -> dict:
    cfg = apply_overrides(load_config(preset), [f"seed={seed}", f"train.precision={precision}",
                                                f"train.epochs={epochs}", "eval.every=0"])
    run = Run.create(cfg.validate(), root, f"{preset}-{precision}-s{seed}")
    t0 = time.perf_counter()
    train(run, dataset=data, progress=False, verbose=False)
    seconds = time.perf_counter() - t0
    [rec] = evaluate_run(run, "last", save=False)
    m = rec["metrics"]
    return {"seed": seed, "precision": precision, "seconds": round(seconds, 2),
            "s_per_epoch": round(seconds / epochs, 2), "fid": m["fid"],
            "recall": m.get("recall"), "classes_covered": m.get("classes_covered"),
            "ran_as": run.meta()["execution"]["precision"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="e2-dcgan-fixed")
    ap.add_argument("--seeds", default="0-2")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    seeds = parse_seeds(a.seeds)
    cfg = load_config(a.preset)
    data = load_dataset(cfg.data, cfg.seed)
    import torch

    rows = []
    with OtherLoad() as load, tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for precision in ("fp32", "bf16"):
                rows.append(one_run(a.preset, seed, precision, a.epochs, Path(tmp), data))
                r = rows[-1]
                print(f"  seed {seed} {precision}: FID {r['fid']:.2f}, {r['s_per_epoch']:.1f} "
                      "s/epoch", file=sys.stderr)
    summary = {}
    for precision in ("fp32", "bf16"):
        fids = [r["fid"] for r in rows if r["precision"] == precision]
        secs = [r["s_per_epoch"] for r in rows if r["precision"] == precision]
        summary[precision] = {"fid_mean": statistics.mean(fids),
                              "fid_std": statistics.stdev(fids) if len(fids) > 1 else 0.0,
                              "s_per_epoch_median": statistics.median(secs)}
    gap = abs(summary["bf16"]["fid_mean"] - summary["fp32"]["fid_mean"])
    spread = max(summary["fp32"]["fid_std"], summary["bf16"]["fid_std"])
    speedup = summary["fp32"]["s_per_epoch_median"] / summary["bf16"]["s_per_epoch_median"]
    result = {
        "benchmark": "precision_fid", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                    "bf16_units": sorted(cpu_flags() & {"amx_bf16", "avx512_bf16"}),
                    "auto_picks": "bf16" if native_bf16(torch.device("cpu")) else "fp32"},
        "preset": a.preset, "epochs": a.epochs, "seeds": seeds, "other_load": load.fraction,
        "runs": rows, "summary": summary, "fid_gap": gap, "seed_spread": spread,
        "within_spread": gap <= spread, "speedup_bf16": speedup,
    }
    atomic_write_json(a.out, result)
    print(f"precision_fid: {a.preset}, {a.epochs} epoch(s), seeds {a.seeds}, on {cpu_model()} "
          f"({torch.get_num_threads()} threads; bf16 units: "
          f"{', '.join(result['machine']['bf16_units']) or 'none'})")
    print(f"{'precision':10s} {'FID mean ± std':>18s} {'s/epoch':>9s}")
    for p, s in summary.items():
        print(f"{p:10s} {s['fid_mean']:>9.2f} ± {s['fid_std']:<6.2f} {s['s_per_epoch_median']:>9.1f}")
    print(f"|FID gap| {gap:.2f} {'<=' if gap <= spread else '>'} seed spread {spread:.2f}: "
          f"{'within' if gap <= spread else 'NOT within'} the seed-to-seed spread; bf16 speed-up "
          f"x{speedup:.2f}; other processes' CPU share {load.fraction:.0%}; wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
