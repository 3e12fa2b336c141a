"""How long `ganscope latent probe` takes on 100 dims with the default settings.

Times ``ganscope.latent.probe.run_probe`` as the CLI runs it (n_base 256, shifts -3..3, 32 null
directions: about 200k images) on a trained E1 MLP run (``--run``, default: the newest run in
$GANSCOPE_RUNS whose model is mlp; else a freshly initialised E1 G, whose cost is the same), with
the seconds per stage (generation, classifier extraction, statistics). The issue's target:
minutes, not hours, on 2 cores. Writes JSON (``--out``) and prints a table; asserts nothing.

    .venv/bin/python benchmarks/probe_speed.py [--run RUN] [--n-base 256] [--probe-out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "probe_speed.json"
sys.path.insert(0, str(HERE))

from ganscope.domains.fashion_mnist.extractor import load_extractor  # noqa: E402
from ganscope.latent.probe import (  # noqa: E402
    DEFAULT_N_BASE,
    DEFAULT_N_NULL,
    DEFAULT_VALUES,
    probe,
    run_probe,
)
from ganscope.models import build_models  # noqa: E402
from ganscope.training.run import resolve_run  # noqa: E402
from train_speed import OtherLoad, atomic_write_json, cpu_model, newest_mlp_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="an E1 run (default: the newest mlp run in $GANSCOPE_RUNS)")
    ap.add_argument("--n-base", type=int, default=DEFAULT_N_BASE)
    ap.add_argument("--dims", type=int, default=100, help="probe dims 0..N-1 (default 100)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads first")
    ap.add_argument("--probe-out", type=Path,
                    help="where the probe's files go (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    load_extractor()  # loading + hashing the weights once per process is not part of a probe
    newest = newest_mlp_run()
    run_name = a.run or (str(newest.path) if newest else None)
    load = OtherLoad().__enter__()
    t0 = time.perf_counter()
    if run_name:
        run = resolve_run(run_name)
        with tempfile.TemporaryDirectory() as tmp:
            res, _ = run_probe(run, n_base=a.n_base, dims=list(range(a.dims)),
                               out_dir=a.probe_out or tmp)
        gname = run.name
    else:
        torch.manual_seed(0)
        G, _ = build_models("mlp", 100)
        res = probe(G.eval(), 100, n_base=a.n_base, dims=list(range(a.dims)))
        gname = "mlp (untrained)"
    total = time.perf_counter() - t0
    load.__exit__()
    st = res.info["stages"]
    n = res.info["images"]
    result = {
        "benchmark": "probe_speed", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpu": cpu_model(), "threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "generator": gname, "dims": a.dims, "n_base": a.n_base, "n_null": DEFAULT_N_NULL,
        "values": list(DEFAULT_VALUES), "images": n, "seconds": round(total, 2),
        "probe_seconds": res.info["seconds"], "images_per_s": round(n / res.info["seconds"], 1),
        "stages": st, "other_load": round(load.fraction, 3),
        "top": [res.sentence(d) for d in res.ranked()[:5]],
    }
    atomic_write_json(a.out, result)
    print(f"probe_speed: {a.dims} dims of {gname}, n_base {a.n_base}, {DEFAULT_N_NULL} null "
          f"directions, {len(DEFAULT_VALUES)} shifts, {torch.get_num_threads()} threads")
    print(f"{'stage':12s} {'seconds':>8s}")
    for k, v in st.items():
        print(f"{k:12s} {v:8.1f}")
    print(f"{'probe':12s} {res.info['seconds']:8.1f}   ({n} images, "
          f"{result['images_per_s']:.0f} images/s)")
    print(f"{'total':12s} {total:8.1f}   (with loading G and writing the files)")
    print(f"other processes' CPU share meanwhile: {load.fraction:.0%}")
    print(f"wrote {a.out}")
    print(json.dumps({"seconds": result["seconds"], "images_per_s": result["images_per_s"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
