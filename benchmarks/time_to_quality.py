"""Time to quality: training seconds each preset needs to reach the notebook E1 baseline's FID.

A benchmark, not a test: it asserts nothing and exits 0. In one process run it measures:

1. **target** — E1 (preset ``e1-mlp``, the seeds' MLP GAN) trained 10 epochs by ganscope; the
   FID of its epoch-10 generator (10,000 samples vs the 10,000 test images, the shipped
   fmnist-cnn-v1 features, as ``ganscope eval``) is the target every preset must reach.
2. **notebook time** — the seeds' notebook loop (``train_speed.py``'s replica: per-sample PIL /
   ToTensor / Normalize through a DataLoader, default Adam, ``.item()`` logging) timed over one
   epoch in this same process; the notebook needs 10 such epochs to reach the target.
3. **each preset** — trained through ``ganscope.training.loop.train`` with an ``on_step`` hook
   that, every ``--eval-steps`` generator steps (and at each epoch end), stops the clock,
   scores G with the same ``evaluate_generator`` as ``ganscope eval`` and starts the clock
   again. Training time excludes evaluation; the first evaluation at or below the target gives
   the preset's time to quality. A preset stops there, or when ``--budget`` training seconds
   are spent.

Run: ``.venv/bin/python benchmarks/time_to_quality.py [--preset e1-mlp --preset fast-mlp ...]
[--budget 600] [--eval-steps 235] [--target FID] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganscope.config import EvalConfig, apply_overrides, load_config
from ganscope.domains import load_dataset
from ganscope.domains.fashion_mnist import reference_features
from ganscope.errors import TrainingInterrupted
from ganscope.metrics.evaluate import evaluate_generator
from ganscope.training.loop import StepView, train
from ganscope.training.run import Run

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_speed  # noqa: E402  (the notebook replica and the SGEMM reference live there)

DEFAULT_OUT = HERE / "results" / "time_to_quality.json"
DEFAULT_PRESETS = "e1-mlp,fast-mlp,e2-tiny-cnn,e2-dcgan-fixed,e2-cnn"
TARGET_SPEEDUP = 4.0  # the fast preset must reach the target in < 1/4 of the notebook's time


class Clocked:
    """on_step hook: training time without evaluations; scores G every ``every`` steps."""

    def __init__(self, z_dim: int, every: int, steps_per_epoch: int, reference, target: float,
                 budget: float, stop_at_target: bool) -> None:
        self.z_dim, self.every, self.spe = z_dim, every, steps_per_epoch
        self.reference, self.target, self.budget = reference, target, budget
        self.stop_at_target = stop_at_target
        self.ec = EvalConfig(n=10000, seed=0, metrics="fid")
        self.train_s = 0.0
        self.eval_s = 0.0
        self.t = time.perf_counter()
        self.curve: list[dict] = []
        self.reached: dict | None = None
        self.done = False

    def __call__(self, v: StepView) -> None:
        now = time.perf_counter()
        self.train_s += now - self.t
        if v.step % self.every == 0 or v.step % self.spe == 0:
            t0 = time.perf_counter()
            fid = evaluate_generator(v.G, self.z_dim, self.ec, self.reference)["metrics"]["fid"]
            self.eval_s += time.perf_counter() - t0
            point = {"step": v.step, "epoch": round(v.step / self.spe, 3),
                     "train_s": round(self.train_s, 2), "fid": round(fid, 2)}
            self.curve.append(point)
            print(f"    step {v.step:6d} ({point['epoch']:.2f} ep)  train {self.train_s:7.1f} s"
                  f"  FID {fid:7.2f}", file=sys.stderr)
            if self.reached is None and fid <= self.target:
                self.reached = point
                self.done = self.stop_at_target
        if self.train_s >= self.budget:
            self.done = True
        self.t = time.perf_counter()


def run_preset(spec: str, reference, target: float, budget: float, eval_steps: int | None,
               stop_at_target: bool = True, epochs: int | None = None) -> dict:
    name, _, extra = spec.partition(":")
    overrides = [o for o in extra.split(";") if o]
    cfg = apply_overrides(load_config(name), [
        "train.save_generators=false", "eval.every=0", *overrides,
        *([f"train.epochs={epochs}"] if epochs else [])]).validate()
    data = load_dataset(cfg.data, cfg.seed)
    n = data.images.shape[0]
    spe = (n // cfg.train.batch_size if cfg.train.drop_last
           else math.ceil(n / cfg.train.batch_size)) // cfg.train.n_critic
    every = eval_steps or max(1, spe // 4)
    clock = Clocked(cfg.model.z_dim, every, spe, reference, target, budget, stop_at_target)
    with tempfile.TemporaryDirectory() as d:
        run = Run.create(cfg, d, "ttq")
        clock.t = time.perf_counter()
        with contextlib.suppress(TrainingInterrupted):  # the hook's stop at target/budget
            train(run, dataset=data, progress=False, verbose=False, on_step=clock,
                  should_stop=lambda step: clock.done)
    steps = clock.curve[-1]["step"] if clock.curve else 0
    best = min(clock.curve, key=lambda p: p["fid"]) if clock.curve else None
    return {"preset": spec, "model": cfg.model.name, "batch_size": cfg.train.batch_size,
            "steps_per_epoch": spe, "eval_every_steps": every,
            "train_s": round(clock.train_s, 2), "eval_s": round(clock.eval_s, 2),
            "s_per_step": round(clock.train_s / max(steps, 1), 5),
            "reached": clock.reached, "best": best, "curve": clock.curve}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", action="append", dest="presets",
                    help=f"a preset to time (repeatable; PRESET:key=v;key=v adds overrides); "
                         f"default {DEFAULT_PRESETS}")
    ap.add_argument("--budget", type=float, default=600.0,
                    help="training seconds per preset before giving up (default 600)")
    ap.add_argument("--eval-steps", type=int, default=None,
                    help="generator steps between evaluations (default: a quarter epoch)")
    ap.add_argument("--target", type=float, default=None,
                    help="target FID (default: measured, E1 after 10 epochs)")
    ap.add_argument("--skip-notebook", action="store_true")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    reference = reference_features("test", 10000)
    sgemm = train_speed.measure_sgemm()

    rows, target = [], a.target
    if target is None:  # E1 for 10 epochs, no early stop: its last FID is the target
        print("target: e1-mlp, 10 epochs", file=sys.stderr)
        e1 = run_preset("e1-mlp", reference, -1.0, 1e9, a.eval_steps, stop_at_target=False,
                        epochs=10)
        target = e1["curve"][-1]["fid"]
        e1["reached"] = next(p for p in e1["curve"] if p["fid"] <= target)
        rows.append(e1)
    notebook = None
    if not a.skip_notebook:
        fm = load_dataset(load_config("e1-mlp").data)
        ds = train_speed.NotebookFashionMNIST(fm.images[:, 0].numpy(), fm.labels.numpy())
        train_speed.notebook_train(ds, 1, max_iters=20)  # warm-up
        nb = train_speed.notebook_train(ds, 1)
        notebook = {"s_per_epoch": round(nb["epoch_s"][0], 2),
                    "s_to_target": round(10 * nb["epoch_s"][0], 2)}
        print(f"notebook: {notebook['s_per_epoch']} s/epoch -> {notebook['s_to_target']} s for "
              "10 epochs", file=sys.stderr)
    for spec in a.presets or DEFAULT_PRESETS.split(","):
        if not spec or (spec == "e1-mlp" and rows):
            continue
        print(f"{spec}: up to {a.budget:.0f} s of training", file=sys.stderr)
        rows.append(run_preset(spec, reference, target, a.budget, a.eval_steps))

    nb_s = notebook["s_to_target"] if notebook else None
    print(f"\ntarget FID {target:.2f} (E1, 10 epochs); notebook: "
          f"{'n/a' if nb_s is None else f'{nb_s:.0f} s'} to get there")
    print(f"{'preset':<22} {'s/step':>8} {'to target (train s)':>20} {'steps':>7} "
          f"{'vs notebook':>12} {'best FID':>9}")
    for r in rows:
        t = r["reached"]["train_s"] if r["reached"] else None
        ratio = f"{nb_s / t:.1f}x" if (t and nb_s) else "-"
        when = f"{t:.1f}" if t else f"> {r['train_s']:.0f}"
        step = r["reached"]["step"] if r["reached"] else "-"
        print(f"{r['preset']:<22} {r['s_per_step'] * 1000:6.1f}ms {when:>20} {step:>7} "
              f"{ratio:>12} {r['best']['fid']:9.1f}")
    out = {"benchmark": "time_to_quality", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "sgemm_gflops": round(sgemm["best_gflops"], 1), "target_fid": target,
           "notebook": notebook, "presets": rows, "target_speedup": TARGET_SPEEDUP}
    train_speed.atomic_write_json(a.out, out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
