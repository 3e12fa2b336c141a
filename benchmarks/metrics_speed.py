"""How long a full evaluation takes: FID + KID + PRDC + class coverage, 10,000 vs 10,000.

Times ``ganscope.metrics.evaluate`` exactly as ``ganscope eval`` runs it, cold (empty statistics
cache: the 10,000 real test images are extracted too) and warm (real features from the cache),
with a breakdown per stage. The generator is the E1 MLP (a trained run's with ``--run``, else a
freshly initialised one: the cost does not depend on quality). The issue's target is under
30 s warm on 2 cores. The machine's SGEMM rate is measured in the same run as a reference for
comparing machines. Writes JSON (``--out``) and prints a table; asserts nothing.

    .venv/bin/python benchmarks/metrics_speed.py [--run RUN] [-n 10000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "metrics_speed.json"
sys.path.insert(0, str(HERE))

from ganscope.config import EvalConfig  # noqa: E402
from ganscope.domains.fashion_mnist import reference_features  # noqa: E402
from ganscope.domains.fashion_mnist.extractor import load_extractor  # noqa: E402
from ganscope.metrics.evaluate import generate_for_eval  # noqa: E402
from ganscope.metrics.registry import METRICS, FeatureSet  # noqa: E402
from ganscope.models import build_models  # noqa: E402
from train_speed import OtherLoad, atomic_write_json, cpu_model, measure_sgemm  # noqa: E402


def generator(run: str | None):
    if run:
        from ganscope.training.run import load_generator, resolve_run

        r = resolve_run(run)
        return load_generator(r), r.config().model.z_dim, r.name
    torch.manual_seed(0)
    G, _ = build_models("mlp", 100)
    return G.eval(), 100, "mlp (untrained)"


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def one_evaluation(G, z_dim: int, ec: EvalConfig, data_dir: str | None) -> dict:
    """Stage by stage, the same calls evaluate_run makes; returns seconds per stage."""
    ex = load_extractor()
    load = OtherLoad().__enter__()
    t0 = time.perf_counter()
    ref, t_ref = timed(lambda: reference_features(ec.reference, ec.n, data_dir, extractor=ex))
    (imgs, _), t_gen = timed(lambda: generate_for_eval(G, z_dim, ec.n, ec.seed))
    (feats, probs), t_ext = timed(lambda: ex.extract(imgs))
    fake = FeatureSet(feats, probs)
    stages = {"reference": t_ref, "generate": t_gen, "extract_fake": t_ext}
    for name in ec.metric_names():
        _, stages[f"metric_{name}"] = timed(lambda n=name: METRICS.get(n)(ref.features, fake,
                                                                          ec.seed))
    stages["total"] = time.perf_counter() - t0
    load.__exit__()
    stages["cache_hit"] = ref.info["cache_hit"]
    stages["other_load"] = load.fraction  # other processes' share of the CPUs meanwhile
    return stages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a trained Fashion-MNIST run (default: an untrained E1 G)")
    ap.add_argument("-n", type=int, default=10000, help="images per side (default 10000)")
    ap.add_argument("--repeats", type=int, default=2, help="cold+warm pairs (best reported)")
    ap.add_argument("--data-dir", help="Fashion-MNIST folder")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads first")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    G, z_dim, gname = generator(a.run)
    ec = EvalConfig(n=a.n)
    load_extractor()  # loading + hashing the weights once per process is not part of a run
    cold, warm = [], []
    for _ in range(a.repeats):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["GANSCOPE_CACHE"] = cache  # an empty statistics cache: cold
            cold.append(one_evaluation(G, z_dim, ec, a.data_dir))
            warm.append(one_evaluation(G, z_dim, ec, a.data_dir))
    assert not any(c["cache_hit"] for c in cold) and all(w["cache_hit"] for w in warm)
    best_cold = min(cold, key=lambda s: s["total"])
    best_warm = min(warm, key=lambda s: s["total"])
    sgemm = measure_sgemm()
    result = {
        "benchmark": "metrics_speed", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpu": cpu_model(), "threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "generator": gname, "n": a.n, "metrics": list(ec.metric_names()),
        "cold": best_cold, "warm": best_warm, "all_cold": cold, "all_warm": warm,
        "sgemm_gflops": sgemm["best_gflops"], "target_warm_s": 30.0,
        "meets_target": best_warm["total"] < 30.0,
    }
    atomic_write_json(a.out, result)
    keys = [k for k in best_cold if k not in ("cache_hit", "other_load")]
    print(f"metrics_speed: {a.n} generated vs {a.n} real, {gname}, "
          f"{torch.get_num_threads()} threads, SGEMM {sgemm['best_gflops']:.0f} GFLOP/s")
    print(f"{'stage':18s} {'cold (s)':>9s} {'warm (s)':>9s}")
    for k in keys:
        print(f"{k:18s} {best_cold[k]:9.2f} {best_warm[k]:9.2f}")
    print(f"other processes' CPU share during the best runs: cold "
          f"{best_cold['other_load']:.0%}, warm {best_warm['other_load']:.0%}")
    print(f"target: warm total under 30 s -> {'met' if result['meets_target'] else 'NOT met'}")
    print(f"wrote {a.out}")
    print(json.dumps({"cold_s": round(best_cold["total"], 2),
                      "warm_s": round(best_warm["total"], 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
