"""Training throughput of every Fashion-MNIST preset, against the notebook loop and the SGEMM rate.

A benchmark, not a test: it asserts nothing and exits 0. For each preset, in one process:

* **ganscope** — ``train()`` on the real training split, stopped after ``--steps`` timed
  generator steps (after ``--warmup`` untimed ones). Step times come from an ``on_step`` hook
  (wall clock between consecutive hook calls), so run set-up, epoch-end grids and checkpoints
  are not in them; seconds per epoch are extrapolated as steps/epoch x median step time.
* **FLOPs** — one training step (n_critic D steps + one G step, as the loop runs it) counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions, forward and backward);
  useful GFLOP/s = FLOPs per step / median step time, and its fraction of the SGEMM rate.
* **notebook** — the seeds' notebook loop (``train_speed.notebook_train``: per-sample PIL /
  ToTensor / Normalize through a DataLoader, default Adam, ``.item()`` logging) on the same
  model, for the BCE presets, timed per iteration over ``--steps`` iterations.
* **SGEMM** — ``torch.mm`` 2048^3 fp32 at the same thread count, measured before and after.
* conv presets are also timed with ``train.channels_last=false`` (NCHW), to show what the
  default NHWC layout (oneDNN's fast path) gains.

On a GPU (``--device cuda``) the same table is measured for fp32, bf16 and compile, plus the
GPU's utilisation (``torch.cuda.utilization`` where NVML is available) and its peak memory.

Run: ``.venv/bin/python benchmarks/preset_speed.py [--presets e1-mlp,e2-dcgan-fixed,...]
[--steps 60] [--warmup 10] [--device cpu|cuda] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganscope.config import apply_overrides, load_config
from ganscope.domains import load_dataset
from ganscope.errors import TrainingInterrupted
from ganscope.training.loop import StepView, train
from ganscope.training.run import Run

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_speed  # noqa: E402  (notebook replica, SGEMM reference)

DEFAULT_OUT = HERE / "results" / "preset_speed.json"
DEFAULT_PRESETS = "e1-mlp,fast-mlp,e2-tiny-cnn,e2-cnn,e2-dcgan,e2-dcgan-fixed"


class StepTimer:
    """on_step hook: the wall time of each step, and one step's FLOPs."""

    def __init__(self, warmup: int, steps: int, count_flops_at: int, cuda: bool) -> None:
        self.warmup, self.steps, self.count_at, self.cuda = warmup, steps, count_flops_at, cuda
        self.times: list[float] = []
        self.t = time.perf_counter()
        self.counter: FlopCounterMode | None = None
        self.flops = 0
        self.util: list[int] = []

    def __call__(self, v: StepView) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        if self.counter is not None:  # the step that just ended was counted
            self.counter.__exit__(None, None, None)
            self.flops = self.counter.get_total_flops()
            self.counter = None
        elif self.warmup < v.step <= self.warmup + self.steps:
            self.times.append(now - self.t)
            if self.cuda and v.step % 10 == 0:
                with contextlib.suppress(Exception):  # needs NVML (pynvml); optional
                    self.util.append(torch.cuda.utilization())
        if v.step == self.count_at:
            self.counter = FlopCounterMode(display=False)
            self.counter.__enter__()
        self.t = time.perf_counter()

    def stop(self, step: int) -> bool:
        return step >= self.warmup + self.steps + 2 and self.counter is None


def time_preset(name: str, data, warmup: int, steps: int, device: str, extra: list[str]) -> dict:
    cfg = apply_overrides(load_config(name), ["train.save_generators=false", "eval.every=0",
                                              f"train.device={device}", *extra]).validate()
    n, bs = data.images.shape[0], cfg.train.batch_size
    spe = (n // bs if cfg.train.drop_last else math.ceil(n / bs)) // cfg.train.n_critic
    timer = StepTimer(warmup, steps, warmup + steps + 1, device == "cuda")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as d, contextlib.suppress(TrainingInterrupted):
        train(Run.create(cfg, d, "speed"), dataset=data, progress=False, verbose=False,
              on_step=timer, should_stop=timer.stop)
    step_s = statistics.median(timer.times)
    return {"preset": name, "variant": " ".join(extra) or "default", "model": cfg.model.name,
            "batch_size": bs, "n_critic": cfg.train.n_critic, "steps_per_epoch": spe,
            "median_step_s": step_s, "samples_per_s": bs * cfg.train.n_critic / step_s,
            "s_per_epoch": spe * step_s, "flops_per_step": timer.flops,
            "useful_gflops": timer.flops / step_s / 1e9, "timed_steps": len(timer.times),
            "gpu_utilization": (statistics.mean(timer.util) if timer.util else None),
            "peak_mem_gb": (torch.cuda.max_memory_allocated() / 2**30
                            if device == "cuda" else None)}


def time_notebook(model: str, data, iters: int) -> dict:
    ds = train_speed.NotebookFashionMNIST(data.images[:, 0].numpy(), data.labels.numpy())
    train_speed.notebook_train(ds, 1, max_iters=3, model=model)  # warm-up
    r = train_speed.notebook_train(ds, 1, max_iters=iters + 3, model=model)
    return {"iter_s": r["iter_s"], "samples_per_s": train_speed.BATCH / r["iter_s"],
            "s_per_epoch": math.ceil(len(ds) / train_speed.BATCH) * r["iter_s"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default=DEFAULT_PRESETS)
    ap.add_argument("--steps", type=int, default=60, help="timed generator steps per preset")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--skip-notebook", action="store_true")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    data = load_dataset(load_config("e1-mlp").data)
    sgemm = [train_speed.measure_sgemm()["best_gflops"]]
    variants = [[]]
    if a.device == "cuda":
        variants = [[], ["train.precision=bf16"], ["train.precision=bf16", "train.compile=true",
                                                    "train.channels_last=true"]]
    rows = []
    for name in a.presets.split(","):
        conv = load_config(name).model.name != "mlp"
        # On the CPU the conv nets' lever is the kernels: oneDNN is much faster on NHWC tensors
        # (the default); the NCHW variant shows by how much.
        for extra in variants + ([["train.channels_last=false"]]
                                 if conv and a.device == "cpu" else []):
            print(f"{name} {' '.join(extra)} ...", file=sys.stderr)
            r = time_preset(name, data, a.warmup, a.steps, a.device, extra)
            cfg = load_config(name)
            if not extra and a.device == "cpu" and not a.skip_notebook and cfg.loss.name == "bce":
                r["notebook"] = time_notebook(cfg.model.name, data, a.steps)
                r["vs_notebook"] = r["notebook"]["iter_s"] / r["median_step_s"]
            rows.append(r)
    sgemm.append(train_speed.measure_sgemm()["best_gflops"])
    ref = max(sgemm)
    print(f"\n{a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"SGEMM 2048^3 fp32 {ref:.0f} GFLOP/s (best of {len(sgemm)} rounds)")
    hdr = (f"{'preset':<16} {'variant':<28} {'ms/step':>8} {'samples/s':>10} {'s/epoch':>8} "
           f"{'GFLOP/step':>10} {'GFLOP/s':>8} {'of SGEMM':>8} {'notebook s/ep':>13} {'vs nb':>6}")
    print(hdr)
    for r in rows:
        r["sgemm_fraction"] = r["useful_gflops"] / ref if a.device == "cpu" else None
        nb = r.get("notebook")
        frac = f"{100 * r['sgemm_fraction']:.0f}%" if r["sgemm_fraction"] is not None else "-"
        nb_ep = f"{nb['s_per_epoch']:.1f}" if nb else "-"
        vs_nb = f"{r['vs_notebook']:.1f}x" if nb else "-"
        print(f"{r['preset']:<16} {r['variant'][:28]:<28} {1000 * r['median_step_s']:8.2f} "
              f"{r['samples_per_s']:10,.0f} {r['s_per_epoch']:8.1f} "
              f"{r['flops_per_step'] / 1e9:10.3f} {r['useful_gflops']:8.1f} {frac:>8} "
              f"{nb_ep:>13} {vs_nb:>6}")
    out = {"benchmark": "preset_speed", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "device": a.device, "gpu": (torch.cuda.get_device_name() if a.device == "cuda"
                                       else None),
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "sgemm_gflops_rounds": sgemm, "steps": a.steps, "warmup": a.warmup, "rows": rows}
    train_speed.atomic_write_json(a.out, out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
