"""E1 training speed: ganscope's loop vs the seeds' notebook loop vs the machine's SGEMM rate.

A benchmark, not a test: it asserts nothing and exits 0 whether or not the targets are met.
One process run measures, on the same in-memory Fashion-MNIST training images:

1. **notebook** - the seeds' notebook loop for the E1 MLP GAN, rebuilt without torchvision:
   a map-style ``Dataset`` holding uint8 numpy images whose ``__getitem__`` does
   ``PIL.Image.fromarray(img, mode='L')`` -> ToTensor (HWC uint8 -> CHW float / 255) ->
   Normalize(0.5, 0.5); ``DataLoader(batch_size=64, shuffle=True)`` (no workers); ganscope's
   ``mlp`` G and D; ``nn.BCELoss``; default Adam (per-tensor for-loop on CPU, not fused),
   lr 2e-4 for both; the notebook's D-then-G step order; four ``.item()`` logs per iteration.
2. **ganscope** - ``ganscope.training.loop.train`` on preset ``e1-mlp`` through its public API
   (``save_generators=false``; the per-epoch sample grid and checkpoint stay and count).
3. **SGEMM** - ``torch.mm`` of two 2048x2048 float32 matrices, 2*n^3 FLOPs each, one round
   before and after each ganscope run and one at the end; the reference rate is the best rep.
4. **useful FLOPs** of E1's training math (see :func:`e1_step_flops`), giving ganscope's useful
   GFLOP/s and its fraction of the SGEMM rate.

What is timed (wall clock, ``time.perf_counter``):

* Reading the IDX files from disk is excluded for both sides (done once, before anything).
* notebook epoch: from creating the DataLoader iterator to the end of the last iteration; the
  per-sample PIL/ToTensor/Normalize work and collation happen inside it and count.
* ganscope epoch: ``train()`` calls ``should_stop(step)`` at the start of every generator step;
  an epoch runs from the call for its first step to the call for the next epoch's first step
  (or ``train()``'s return for the last epoch), so it includes the per-epoch event flushes,
  sample grid, checkpoint and meta update. ``train()``'s set-up before the first step (config
  read, uint8 -> float conversion of the whole split, model build, meta writes) is reported
  separately as ``setup_s`` and is not part of the epoch time.
* Warm-up: before the timed runs, each side runs a short throwaway warm-up in the same process
  (ganscope: a 10-step ``train()`` on 640 images in another temp dir; notebook: 20 iterations on
  throwaway models), so one-off costs (oneDNN primitive creation, lazy imports, first PNG/zip
  writes) are not charged to either epoch. Every timed run starts from ``torch.manual_seed(0)``.
* Each side is timed ``--repeats`` times (default 3), interleaved; the fastest run is reported
  and all are kept in the JSON. On a shared VM the speed of small-matmul work drifts over time
  (by up to 1.6x here) and other processes' CPU use is recorded per section.

Run: ``.venv/bin/python benchmarks/train_speed.py [--epochs N] [--repeats N] [--limit N]
[--skip-notebook] [--threads N] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganscope.config import apply_overrides, load_config
from ganscope.data import Dataset
from ganscope.domains import load_dataset
from ganscope.io import atomic_write_text
from ganscope.models import build_models
from ganscope.training.loop import train
from ganscope.training.run import Run, iter_runs

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "train_speed.json"
TARGET_RATIO = 6.0  # ganscope epoch at least 6x faster than the notebook's
TARGET_SGEMM_FRACTION = 0.35  # ganscope's useful FLOP/s at least 35 % of large-SGEMM FLOP/s
Z_DIM, HIDDEN, IMG = 100, 128, 784
BATCH = 64
SEED = 0


# ----------------------------------------------------------------------------------------------
# Useful FLOPs of E1's math


def e1_step_flops(b: int, z: int = Z_DIM, h: int = HIDDEN, img: int = IMG) -> dict[str, int]:
    """Matmul FLOPs (2*m*n*k per matmul) that one E1 generator step needs at batch ``b``.

    One ``nn.Linear(i, o)`` on a batch of ``b`` costs ``2*b*i*o`` for its forward (x @ W^T),
    the same for its weight gradient (dY^T @ x) and the same for its input gradient (dY @ W).
    Bias adds/gradients, activations, losses and the optimiser update are elementwise or
    reductions, not matmuls, and are not counted. Only products the maths needs are counted:

    D step (real batch x, fresh z, fake = G(z) detached):
      G forward without grad ..................... G.fc1 (z->h) + G.fc2 (h->img)
      D forward on real and on fake .............. 2 x [D.fc1 (img->h) + D.fc2 (h->1)]
      D backward, both batches ................... 2 x [W-grad D.fc2 + input-grad D.fc2 (needed
                                                   for D.fc1's W-grad) + W-grad D.fc1]; no
                                                   input-grad of D.fc1 (its inputs are data and
                                                   a detached fake)
    G step (fresh z):
      G forward .................................. G.fc1 + G.fc2
      D forward .................................. D.fc1 + D.fc2
      D backward to its input only ............... input-grad D.fc2 + input-grad D.fc1 (no
                                                   D weight gradients)
      G backward ................................. W-grad G.fc2 + input-grad G.fc2 (needed for
                                                   G.fc1's W-grad) + W-grad G.fc1; no input-grad
                                                   of G.fc1 (z needs none)

    Per sample that is 2*(z*h + h*img + 4*img*h + 6*h) for the D step and
    2*(2*z*h + 3*h*img + 2*img*h + 2*h) for the G step: 2,085,888 FLOPs, i.e. 133.5 MFLOP per
    step at b=64. Everything is linear in ``b``, so a short last batch is counted exactly.
    """

    def lin(i: int, o: int) -> int:  # one forward, or one W-grad, or one input-grad
        return 2 * b * i * o

    d_step = (
        lin(z, h) + lin(h, img)  # G forward, no grad
        + 2 * (lin(img, h) + lin(h, 1))  # D forward real + fake
        + 2 * (lin(h, 1) + lin(h, 1) + lin(img, h))  # D: W-grad fc2, in-grad fc2, W-grad fc1
    )
    g_step = (
        lin(z, h) + lin(h, img)  # G forward
        + lin(img, h) + lin(h, 1)  # D forward
        + lin(h, 1) + lin(img, h)  # D backward to its input: in-grad fc2, in-grad fc1
        + lin(h, img) + lin(h, img) + lin(z, h)  # G: W-grad fc2, in-grad fc2, W-grad fc1
    )
    return {"d_step": d_step, "g_step": g_step, "total": d_step + g_step}


def epoch_batch_sizes(n: int, bs: int = BATCH) -> list[int]:
    """The seeds' DataLoader keeps the short last batch (ganscope's drop_last=false, too)."""
    return [bs] * (n // bs) + ([n % bs] if n % bs else [])


def epoch_flops(n: int, bs: int = BATCH) -> int:
    return sum(e1_step_flops(b)["total"] for b in epoch_batch_sizes(n, bs))


# ----------------------------------------------------------------------------------------------
# SGEMM reference


def measure_sgemm(n: int = 2048, warmup: int = 3, reps: int = 10) -> dict:
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    for _ in range(warmup):
        torch.mm(a, b, out=c)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t0)
    flops = 2 * n ** 3
    return {"n": n, "reps": reps, "best_gflops": flops / min(times) / 1e9,
            "median_gflops": flops / statistics.median(times) / 1e9}


# ----------------------------------------------------------------------------------------------
# The seeds' notebook loop (torchvision-free replica)


class NotebookFashionMNIST(torch.utils.data.Dataset):
    """torchvision.datasets.FashionMNIST + Compose([ToTensor(), Normalize((0.5,), (0.5,))])."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.data, self.targets = images, labels  # uint8 (N, 28, 28), int64 (N,)
        self.mean = torch.tensor([0.5]).view(-1, 1, 1)
        self.std = torch.tensor([0.5]).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        img, target = self.data[i], int(self.targets[i])
        img = Image.fromarray(img, mode="L")
        # ToTensor: PIL 'L' -> uint8 HWC array -> CHW float32 / 255
        t = torch.from_numpy(np.array(img, np.uint8, copy=True))
        t = t.view(img.size[1], img.size[0], 1).permute(2, 0, 1).contiguous()
        t = t.to(dtype=torch.float32).div(255)
        # Normalize(mean=0.5, std=0.5), not in place: -> [-1, 1]
        t = t.clone().sub_(self.mean).div_(self.std)
        return t, target


def notebook_train(dataset: NotebookFashionMNIST, epochs: int, max_iters: int | None = None,
                   model: str = "mlp") -> dict:
    """The seeds' notebook loop on ``model`` (E1: mlp; the E2 notebooks had the same loop
    around their conv nets). With ``max_iters`` it stops early and reports ``iter_s``, the
    mean seconds per iteration after the first 3 (conv nets are too slow for whole epochs)."""
    torch.manual_seed(SEED)
    G, D = build_models(model, Z_DIM, sigmoid=True)
    bce = nn.BCELoss()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
    log: list[tuple[float, float, float, float]] = []
    epoch_s: list[float] = []
    iters = 0
    for _epoch in range(epochs):
        t0 = time.perf_counter()
        for x_real, _ in loader:
            b = x_real.size(0)
            ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)
            # D step
            opt_d.zero_grad()
            D_x = D(x_real)
            lossD_real = bce(D_x, ones)
            z = torch.randn(b, Z_DIM)
            x_gen = G(z).detach()
            D_G_z = D(x_gen)
            lossD_fake = bce(D_G_z, zeros)
            lossD = lossD_real + lossD_fake
            lossD.backward()
            opt_d.step()
            # G step
            opt_g.zero_grad()
            z = torch.randn(b, Z_DIM)
            x_gen = G(z)
            lossG = bce(D(x_gen), ones)
            lossG.backward()
            opt_g.step()
            log.append((lossD.item(), lossG.item(), D_x.mean().item(), D_G_z.mean().item()))
            iters += 1
            if iters == 3:
                t3 = time.perf_counter()
            if max_iters is not None and iters >= max_iters:
                iter_s = (time.perf_counter() - t3) / (iters - 3) if iters > 3 else None
                return {"epoch_s": [], "iters": iters, "last": log[-1], "iter_s": iter_s}
        epoch_s.append(time.perf_counter() - t0)
    return {"epoch_s": epoch_s, "iters": iters, "last": log[-1]}


# ----------------------------------------------------------------------------------------------
# ganscope through its public API


def ganscope_train(epochs: int, limit: int | None, dataset: Dataset, runs_dir: str,
                   name: str) -> dict:
    overrides = [f"train.epochs={epochs}", "train.save_generators=false"]
    if limit is not None:
        overrides.append(f"data.limit={limit}")
    cfg = apply_overrides(load_config("e1-mlp"), overrides)
    run = Run.create(cfg, runs_dir=runs_dir, name=name)
    stamps: list[float] = []

    def should_stop(step: int) -> bool:  # called at the start of every generator step
        stamps.append(time.perf_counter())
        return False

    t_call = time.perf_counter()
    train(run, dataset=dataset, progress=False, should_stop=should_stop)
    t_end = time.perf_counter()
    meta = run.meta()
    spe = int(meta["steps_per_epoch"])
    bounds = [stamps[e * spe] for e in range(epochs)] + [t_end]
    epoch_s = [bounds[e + 1] - bounds[e] for e in range(epochs)]
    # Inside an epoch: median step interval, and what the epoch's end (event flush, sample grid,
    # checkpoint, meta) costs beyond one ordinary step.
    intervals = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    step_med = statistics.median(intervals) if intervals else float("nan")
    tails = [bounds[e + 1] - stamps[(e + 1) * spe - 1] - step_med for e in range(epochs)]
    return {"epoch_s": epoch_s, "setup_s": stamps[0] - t_call, "steps_per_epoch": spe,
            "median_step_s": step_med, "epoch_end_overhead_s": tails, "status": meta["status"],
            "environment": meta.get("environment"), "last": meta.get("last")}


# ----------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class OtherLoad:
    """CPU time other processes used while a section ran, as a fraction of all cores' time.

    Other busy processes on a 2-core box (a test suite, say) distort every number here, and
    OpenMP threads suffer most when one core is taken; the JSON records this for each section.
    """

    def __init__(self) -> None:
        self.t0 = self.sys0 = self.own0 = 0.0

    @staticmethod
    def _system_busy_s() -> float:
        try:
            f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return float("nan")
        v = [int(x) for x in f]
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
        return busy / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_s() -> float:
        """This process and its finished children (a worker pool is ours, not 'other')."""
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self) -> OtherLoad:
        self.t0, self.sys0, self.own0 = time.perf_counter(), self._system_busy_s(), self._own_s()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.t0
        other = (self._system_busy_s() - self.sys0) - (self._own_s() - self.own0)
        self.fraction = max(0.0, other) / (wall * (os.cpu_count() or 1))


def atomic_write_json(path: Path, obj: dict) -> None:
    """Every benchmark's result file, written as ganscope writes its own (temp file + rename)."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def newest_mlp_run() -> Run | None:
    """The most recently trained MLP run in the runs dir (what the latent/serve benchmarks
    time when no --run is given), or None."""
    best = None
    for r in iter_runs():
        try:
            if r.config().model.name != "mlp" or not r.last_checkpoint.is_file():
                continue
        except Exception:  # an unreadable run is simply not a candidate
            continue
        t = r.last_checkpoint.stat().st_mtime
        if best is None or t > best[0]:
            best = (t, r)
    return best[1] if best else None


def notebook_data_only(dataset: NotebookFashionMNIST) -> float:
    """One pass over the notebook's DataLoader with no training: its input pipeline alone."""
    torch.manual_seed(SEED)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
    t0 = time.perf_counter()
    for _x, _y in loader:
        pass
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs per side (default 1)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed runs per side, interleaved, best one reported (default 3)")
    ap.add_argument("--limit", type=int, default=None,
                    help="use only the first N training images (quick check)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON path ({DEFAULT_OUT})")
    ap.add_argument("--skip-notebook", action="store_true", help="time ganscope only")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads(N) first (default: torch's default)")
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1 or (args.limit is not None and args.limit < BATCH):
        ap.error(f"--epochs and --repeats must be >= 1, --limit >= {BATCH}")
    if args.threads:
        torch.set_num_threads(args.threads)

    # Disk -> memory once, outside every timing.
    cfg = load_config("e1-mlp")
    if args.limit is not None:
        cfg = apply_overrides(cfg, [f"data.limit={args.limit}"])
    ds = load_dataset(cfg.data)
    n = int(ds.images.shape[0])
    nb_ds = NotebookFashionMNIST(ds.images[:, 0].numpy().copy(), ds.labels.numpy().copy())
    warm_ds = Dataset(ds.images[:640].clone(), ds.labels[:640].clone(), ds.source)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_model()}; "
          f"{n} images, {args.epochs} epoch(s) x {args.repeats} repeat(s) per side",
          file=sys.stderr)

    sgemm: list[dict] = []

    def sgemm_round(label: str) -> None:
        with OtherLoad() as mon:
            r = measure_sgemm()
        sgemm.append({"label": label, **r, "other_load": mon.fraction})

    gs_runs: list[dict] = []
    nb_runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ganscope-bench-") as tmp:
        ganscope_train(1, None, warm_ds, tmp, "warmup")  # warm-ups, untimed
        if not args.skip_notebook:
            notebook_train(nb_ds, 1, max_iters=20)
        for r in range(args.repeats):
            sgemm_round(f"before ganscope #{r + 1}")
            print(f"ganscope #{r + 1} ...", file=sys.stderr)
            with OtherLoad() as mon:
                gs = ganscope_train(args.epochs, args.limit, ds, tmp, f"timed-{r + 1}")
            gs["other_load"] = mon.fraction
            gs_runs.append(gs)
            sgemm_round(f"after ganscope #{r + 1}")
            if not args.skip_notebook:
                print(f"notebook #{r + 1} ...", file=sys.stderr)
                with OtherLoad() as mon:
                    nb = notebook_train(nb_ds, args.epochs)
                nb["other_load"] = mon.fraction
                nb_runs.append(nb)
        nb_data_s = None if args.skip_notebook else notebook_data_only(nb_ds)
        sgemm_round("end")

    flops = epoch_flops(n)
    steps = len(epoch_batch_sizes(n))
    sgemm_ref = max(r["best_gflops"] for r in sgemm)
    for runs in (gs_runs, nb_runs):
        for x in runs:
            x["mean_epoch_s"] = statistics.mean(x["epoch_s"])
    gs_i = min(range(len(gs_runs)), key=lambda i: gs_runs[i]["mean_epoch_s"])
    gs = gs_runs[gs_i]
    gs_epoch = gs["mean_epoch_s"]
    gs_gflops = flops / gs_epoch / 1e9
    frac = gs_gflops / sgemm_ref
    adjacent = max(sgemm[2 * gs_i]["median_gflops"], sgemm[2 * gs_i + 1]["median_gflops"])
    nb_epoch = min(x["mean_epoch_s"] for x in nb_runs) if nb_runs else None
    ratio = nb_epoch / gs_epoch if nb_epoch else None
    matmul_floor_s = flops / (sgemm_ref * 1e9)

    rows = [("side (best run)", "s/epoch", "samples/s", "steps/s", "vs notebook",
             "useful GFLOP/s", "of SGEMM")]
    if nb_epoch:
        rows.append(("notebook", f"{nb_epoch:.2f}", f"{n / nb_epoch:,.0f}",
                     f"{steps / nb_epoch:.0f}", "1.00x", f"{flops / nb_epoch / 1e9:.1f}",
                     f"{flops / nb_epoch / 1e9 / sgemm_ref:.1%}"))
    rows.append(("ganscope", f"{gs_epoch:.2f}", f"{n / gs_epoch:,.0f}", f"{steps / gs_epoch:.0f}",
                 f"{ratio:.2f}x" if ratio else "-", f"{gs_gflops:.1f}", f"{frac:.1%}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = zip(r, widths, strict=True)
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells)))
    def fmt(xs: list[dict], key: str, spec: str) -> str:
        return ", ".join(format(x[key], spec) for x in xs)

    print(f"all runs, s/epoch: ganscope {fmt(gs_runs, 'mean_epoch_s', '.2f')}"
          + (f"; notebook {fmt(nb_runs, 'mean_epoch_s', '.2f')}" if nb_runs else ""))
    print(f"SGEMM 2048^3 fp32 GFLOP/s: reference (best rep) {sgemm_ref:.1f}; round medians "
          f"{fmt(sgemm, 'median_gflops', '.0f')}; next to ganscope's best run "
          f"{adjacent:.1f} (-> {gs_gflops / adjacent:.1%})")
    print(f"E1 useful work {flops / 1e9:.2f} GFLOP/epoch "
          f"({e1_step_flops(BATCH)['total'] / 1e6:.1f} MFLOP/step at b={BATCH}); at the SGEMM "
          f"rate that is {matmul_floor_s:.2f} s/epoch")
    print(f"ganscope best run: median step {gs['median_step_s'] * 1e3:.2f} ms, epoch-end "
          f"overhead {statistics.mean(gs['epoch_end_overhead_s']) * 1e3:.0f} ms/epoch, set-up "
          f"{gs['setup_s']:.2f} s (not in the epoch)")
    if nb_data_s is not None:
        print(f"notebook input pipeline alone (DataLoader pass, no training): {nb_data_s:.2f} "
              f"s/epoch; ratio ceiling if ganscope's epoch were pure SGEMM-rate matmuls: "
              f"{nb_epoch / matmul_floor_s:.1f}x")
    ratio_met = None if ratio is None else ratio >= TARGET_RATIO
    print(f"targets: ganscope >= {TARGET_RATIO:g}x notebook: "
          f"{'n/a' if ratio_met is None else ('met' if ratio_met else 'NOT met')}; "
          f">= {TARGET_SGEMM_FRACTION:.0%} of SGEMM: "
          f"{'met' if frac >= TARGET_SGEMM_FRACTION else 'NOT met'}")
    busy = [(name, x["other_load"]) for name, x in
            [(f"ganscope #{i + 1}", x) for i, x in enumerate(gs_runs)]
            + [(f"notebook #{i + 1}", x) for i, x in enumerate(nb_runs)]
            + [(f"SGEMM {r['label']}", r) for r in sgemm] if x["other_load"] > 0.05]
    if busy:
        print("WARNING: other processes used CPU during "
              + ", ".join(f"{k} ({v:.0%} of all cores)" for k, v in busy)
              + "; those numbers are distorted", file=sys.stderr)
    spread = max(r["median_gflops"] for r in sgemm) / min(r["median_gflops"] for r in sgemm)
    if spread > 1.25:
        print(f"WARNING: SGEMM round medians differ {spread:.2f}x within this run: the machine's "
              "capacity changed (shared host?); compare runs next to similar SGEMM rates",
              file=sys.stderr)

    result = {
        "benchmark": "train_speed",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "limit": args.limit,
        "n_images": n,
        "batch_size": BATCH,
        "generator_steps_per_epoch": steps,
        "measured": {
            "notebook": "epoch wall time incl. per-sample PIL/ToTensor/Normalize, DataLoader "
                        "collation, the D and G steps and 4 .item() logs per iteration; after a "
                        "20-iteration warm-up on throwaway models; best of the repeats",
            "ganscope": "epoch wall time inside ganscope.training.loop.train (should_stop stamps), "
                        "incl. event flushes, sample grid, checkpoint; train() set-up excluded "
                        "(setup_s); after a 10-step warm-up train(); best of the repeats",
            "sgemm": "torch.mm 2048x2048 fp32, 3 warm-up + 10 reps per round, a round before and "
                     "after each ganscope run and at the end; reference = best single rep",
            "useful_flops": "matmul FLOPs the E1 maths needs, see e1_step_flops() docstring",
            "other_load": "CPU used by other processes during a section / (wall x cores)",
        },
        "notebook": None if not nb_runs else {
            "runs": nb_runs, "best_epoch_s": nb_epoch,
            "samples_per_s": n / nb_epoch, "steps_per_s": steps / nb_epoch,
            "useful_gflops": flops / nb_epoch / 1e9, "data_only_epoch_s": nb_data_s,
        },
        "ganscope": {
            "runs": gs_runs, "best_run": gs_i + 1, "best_epoch_s": gs_epoch,
            "samples_per_s": n / gs_epoch, "steps_per_s": steps / gs_epoch,
            "useful_gflops": gs_gflops,
        },
        "speed_ratio_ganscope_vs_notebook": ratio,
        "sgemm": {"rounds": sgemm, "reference_gflops": sgemm_ref,
                  "adjacent_to_best_ganscope_run_gflops": adjacent},
        "flops": {"per_step_b64": e1_step_flops(BATCH), "per_epoch": flops,
                  "epoch_s_at_sgemm_rate": matmul_floor_s},
        "sgemm_fraction": frac,
        "targets": {
            "speed_ratio": {"target": TARGET_RATIO, "value": ratio, "met": ratio_met},
            "sgemm_fraction": {"target": TARGET_SGEMM_FRACTION, "value": frac,
                               "met": frac >= TARGET_SGEMM_FRACTION},
        },
    }
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
