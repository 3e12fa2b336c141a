"""GPU check: CUDA tests, preset throughput, a 10-epoch E2 run and a 2-GPU torchrun, in one call.

Meant for a session that is lent a GPU for a few minutes: ``bash benchmarks/gpu_check.sh`` runs
this (default budget 450 s, under 8 minutes on one GPU) and the figures go into the README's
*Scale* section. Every step has its own time limit, a share of what is left of ``--budget-s``, so
a slow step cannot starve the ones after it; each is recorded with a status (ok / skipped /
failed), its seconds, its limit, its numbers and, unless ok, a one-line reason. The JSON is
rewritten (atomically) after every step, so a run killed from outside still leaves the steps it
finished.

Steps:

1. **environment** — torch and CUDA versions, GPU names / memory / capability, ``nvidia-smi``'s
   view (it sees the GPU even when a CPU build of torch does not), CPU count, and on a GPU the
   bf16 GEMM rate (8192^3) as the machine's reference.
2. **cuda_tests** — ``pytest -x -q`` on the tests that need a GPU: those in
   ``tests/test_execution.py`` behind its ``cuda`` skipif (``-k "cuda and not without_a_gpu"``).
   Without CUDA: skipped, and the selection is only collected (so it is checked here too).
3. **throughput** — ``preset_speed.time_preset`` (the library, in this process, as
   ``preset_speed.py`` does) for e1-mlp, e2-dcgan-fixed and, where CelebA is found,
   e6-faces-gpu, each as fp32, bf16 and bf16 + compile + channels-last: images/s over
   ``--steps`` timed generator steps after ``--warmup`` untimed ones. The fp32 and bf16 rows run
   first; the compile rows share what is left. ``train.minutes`` caps each row.
4. **train_e2_dcgan_fixed** — ``ganscope train e2-dcgan-fixed`` for 10 epochs on the device in
   the fastest setting step 3 measured for it (bf16 if none), ``--eval-every 10`` with FID only
   (10,000 samples): wall time, training seconds, s/epoch, samples/s, FID.
5. **torchrun_2gpu** — with ``torch.cuda.device_count() >= 2``: the same preset and setting for
   1 epoch under ``torchrun --nproc-per-node 2`` (NCCL), its s/epoch against step 4's. Else
   skipped with the reason (``--torchrun-on-cpu`` runs it with 2 gloo CPU ranks, for testing).

``--device cpu --quick`` does the same steps on the CPU with tiny settings (a few steps, batch
8, one thread, 2 epochs of 64 images; the compile rows skipped: inductor's C++ build alone
takes ~20 s on 2 cores) to test this script where there is no GPU.

Run: ``.venv/bin/python benchmarks/gpu_check.py [--device cuda|cpu] [--budget-s 450] [--quick]
[--data-dir DIR] [--celeba-dir DIR] [--out PATH]``. Exit status 1 if a step failed, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

import ganscope
from ganscope.config import apply_overrides, load_config
from ganscope.data import celeba, fashion_mnist
from ganscope.domains import load_dataset
from ganscope.environment import git_commit
from ganscope.errors import UserError
from ganscope.io import atomic_write_text
from ganscope.models import build_models, has_conv
from ganscope.training.run import Run, load_checkpoint

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import preset_speed  # noqa: E402  (time_preset: one preset's step time, in this process)
import train_speed  # noqa: E402  (atomic_write_json, cpu_model)

DEFAULT_OUT = HERE / "results" / "gpu_check.json"
STEPS = ("environment", "cuda_tests", "throughput", "train_e2_dcgan_fixed", "torchrun_2gpu")
# Shares of the time left when a step starts (over the steps still to run).
WEIGHTS = {"cuda_tests": 0.30, "throughput": 0.35, "train_e2_dcgan_fixed": 0.30,
           "torchrun_2gpu": 0.15}
CUDA_TESTS = ["tests/test_execution.py", "-k", "cuda and not without_a_gpu"]
PRESETS = ("e1-mlp", "e2-dcgan-fixed", "e6-faces-gpu")
TRAIN_PRESET = "e2-dcgan-fixed"
VARIANTS = {  # name -> (config overrides, ganscope train flags)
    "fp32": (["train.precision=fp32"], ["--precision", "fp32"]),
    "bf16": (["train.precision=bf16"], ["--precision", "bf16"]),
    "bf16+compile+cl": (["train.precision=bf16", "train.compile=true",
                         "train.channels_last=true"],
                        ["--precision", "bf16", "--compile", "--set", "train.channels_last=true"]),
}
# --quick, for every config and run: small steps, and one thread, so that a busy machine (a
# test suite next to it) cannot stall OpenMP threads that wait for a taken core.
QUICK_SET = ["train.batch_size=8", "train.threads=1"]
QUICK_FACES = ["train.batch_size=4", "train.threads=1"]  # dcgan64, full widths: ~0.7 s a step
QUICK_TRAIN = ["data.limit=64", "eval.n=64"]


def one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


def run_cmd(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict:
    """A subprocess in a session of its own, killed with its children after ``timeout`` s."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return {"rc": proc.returncode, "timed_out": timed_out, "out": out or "",
            "wall_s": time.perf_counter() - t0}


def sub_env() -> dict[str, str]:
    """This process's environment, with the ganscope it imported first on the path."""
    env = dict(os.environ)
    src = str(Path(ganscope.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def tail(text: str, n: int = 2500) -> str:
    return text[-n:]


class Check:
    """The steps' records, the budget, and the JSON rewritten after every step."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + a.budget_s
        self.cuda = a.device == "cuda" and torch.cuda.is_available()
        self.result: dict = {
            "benchmark": "gpu_check", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "device": a.device, "quick": a.quick, "budget_s": a.budget_s,
            "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "note": None,
            "steps": {}, "finished": False}

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def limit_for(self, name: str, will_run: list[str]) -> float:
        rest = [s for s in will_run if STEPS.index(s) >= STEPS.index(name)]
        share = WEIGHTS[name] / sum(WEIGHTS[s] for s in rest)
        return max(0.0, self.left() * share)

    def save(self) -> None:
        self.result["total_s"] = time.perf_counter() - self.t0
        train_speed.atomic_write_json(self.a.out, self.result)

    def step(self, name: str, limit: float | None, fn, *args) -> dict:
        print(f"[gpu_check] {name} (limit {'-' if limit is None else f'{limit:.0f} s'}) ...",
              file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            rec = fn(limit, *args)
        except Exception as e:  # a step's failure is recorded; the next steps still run
            rec = {"status": "failed", "reason": one_line(e),
                   "traceback": tail(traceback.format_exc())}
        rec = {"status": rec.pop("status"), "seconds": time.perf_counter() - t,
               "limit_s": limit, "reason": rec.pop("reason", None), **rec}
        self.result["steps"][name] = rec
        self.save()
        return rec


# ----------------------------------------------------------------------------------------------
# 1. environment


def step_environment(_limit: float | None) -> dict:
    rec: dict = {"status": "ok", "python": platform.python_version(),
                 "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                 "cudnn": (torch.backends.cudnn.version() if torch.cuda.is_available() else None),
                 "cuda_available": torch.cuda.is_available(),
                 "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
                 "gpus": [], "cpu_count": os.cpu_count(), "cpu_model": train_speed.cpu_model(),
                 "torch_threads": torch.get_num_threads(), "ganscope": ganscope.__version__,
                 "git": git_commit(), "nvidia_smi": None}
    for i in range(rec["gpu_count"]):
        p = torch.cuda.get_device_properties(i)
        rec["gpus"].append({"index": i, "name": p.name, "memory_gib": p.total_memory / 2**30,
                            "capability": f"{p.major}.{p.minor}",
                            "multiprocessors": p.multi_processor_count})
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20)
        if smi.returncode == 0:
            rec["nvidia_smi"] = [line.strip() for line in smi.stdout.splitlines() if line.strip()]
    if rec["gpu_count"]:
        n, reps = 8192, 20
        a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        torch.cuda.synchronize()
        rec["bf16_gemm_tflops"] = 2 * n**3 * reps / (time.perf_counter() - t) / 1e12
        del a, b
        torch.cuda.empty_cache()
    return rec


# ----------------------------------------------------------------------------------------------
# 2. the CUDA tests


def counts(out: str) -> dict[str, int]:
    """pytest's summary line: {'passed': 3, 'failed': 0, ...}."""
    last = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed|skipped|error|"
                                                           r"deselected|selected)", line)]
    found = re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)",
                       last[-1] if last else "")
    return {k.rstrip("s") if k.startswith("error") else k: int(v) for v, k in found}


def step_cuda_tests(limit: float, cuda: bool, why_not: str) -> dict:
    base = [sys.executable, "-m", "pytest", *CUDA_TESTS, "-p", "no:cacheprovider"]
    if not cuda:  # collect only: the selection is checked even where it cannot run
        r = run_cmd([*base, "--collect-only", "-q"], min(limit, 60), sub_env())
        ids = [line.strip() for line in r["out"].splitlines() if "::" in line]
        return {"status": "skipped", "reason": why_not, "selected": ids,
                "command": " ".join(["pytest", *CUDA_TESTS[:1], "-k", repr(CUDA_TESTS[2])])}
    r = run_cmd([*base, "-x", "-q"], limit, sub_env())
    c = counts(r["out"])
    rec = {"counts": c, "rc": r["rc"], "wall_s": r["wall_s"]}
    if r["timed_out"]:
        return {"status": "failed", "reason": f"timed out after {limit:.0f} s", **rec,
                "output_tail": tail(r["out"])}
    if r["rc"] != 0 or c.get("failed") or c.get("error") or not c.get("passed"):
        return {"status": "failed", "reason": f"pytest exit {r['rc']}: {c}", **rec,
                "output_tail": tail(r["out"])}
    return {"status": "ok", **rec}


# ----------------------------------------------------------------------------------------------
# 3. throughput


def find_fmnist(data_dir: str | None) -> tuple[Path | None, str]:
    """Fashion-MNIST found as ganscope finds it (no download): (folder, '') or (None, why)."""
    try:
        for split in ("train", "test"):
            d, origin = fashion_mnist.locate(split, data_dir, download=False)
        return d, origin
    except UserError as e:
        return None, str(e).splitlines()[0]


def find_celeba(celeba_dir: str | None) -> tuple[Path | None, str]:
    try:
        return celeba.locate(celeba_dir)
    except UserError as e:
        return None, str(e).splitlines()[0]


def flop_counter_left_active() -> bool:
    """preset_speed's FlopCounterMode, entered for one step, still on the dispatch stack."""
    try:
        from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

        return any("FlopCounter" in type(m).__name__ for m in _get_current_dispatch_mode_stack())
    except Exception:  # a private API: where it is gone, assume the common case
        return False


def quick_set(quick: bool, faces: bool) -> list[str]:
    return (QUICK_FACES if faces else QUICK_SET) if quick else []


def row_base(preset: str, variant: str) -> dict:
    return {"preset": preset, "variant": variant}


def conv_preset(preset: str) -> bool:
    """Whether the preset's nets convolve (their bf16 rows are the slow ones on a CPU)."""
    cfg = load_config(preset)
    G, D = build_models(cfg.model.name, cfg.model.z_dim)
    return has_conv(G) or has_conv(D)


def step_throughput(limit: float, c: Check, fmnist: Path | None, fmnist_why: str,
                    faces: Path | None, faces_why: str) -> dict:
    a = c.a
    device = a.device
    end = time.perf_counter() + limit
    data: dict[str, object] = {}
    rows: list[dict] = []
    todo: list[tuple[str, str]] = []
    for variant in VARIANTS:  # fp32 and bf16 rows first; the compile rows share the rest
        for preset in PRESETS:
            row = row_base(preset, variant)
            if preset.startswith("e6") and faces is None:
                rows.append({**row, "status": "skipped", "reason": faces_why})
            elif not preset.startswith("e6") and fmnist is None:
                rows.append({**row, "status": "skipped", "reason": fmnist_why})
            elif "compile" in variant and a.quick and device == "cpu":
                rows.append({**row, "status": "skipped", "reason": "--quick on the CPU: "
                             "torch.compile's C++ build alone takes ~20 s per preset here"})
            elif variant != "fp32" and a.quick and device == "cpu" and conv_preset(preset):
                rows.append({**row, "status": "skipped", "reason": "--quick on the CPU: "
                             "bf16 convolutions without AMX are emulated (0.9 samples/s at "
                             "batch 8 on an AVX2 EPYC, ~60 s for this row)"})
            else:
                todo.append((preset, variant))
                rows.append({**row, "status": "pending"})
    for i, (preset, variant) in enumerate(todo):
        idx = next(j for j, r in enumerate(rows)
                   if (r["preset"], r["variant"]) == (preset, variant))
        left = end - time.perf_counter()
        cap = left / sum(1 for p, v in todo[i:] if ("compile" in v) == ("compile" in variant))
        if left < 2:
            rows[idx] = {**row_base(preset, variant), "status": "skipped",
                         "reason": f"the step's time limit ({limit:.0f} s) was spent"}
            continue
        face = preset.startswith("e6")
        key = "faces" if face else "fmnist"
        try:
            if key not in data:
                extra = [f"data.dir={faces if face else fmnist}"]
                if a.quick:
                    extra.append(f"data.limit={64 if face else 512}")
                elif face:
                    extra.append("data.limit=8192")  # loading all of CelebA is not the point
                data[key] = load_dataset(apply_overrides(load_config(preset), extra).data)
            t = time.perf_counter()
            r = preset_speed.time_preset(
                preset, data[key], a.warmup, a.steps, device,
                [*VARIANTS[variant][0], *quick_set(a.quick, face),
                 f"train.minutes={cap / 60:.4f}"])
            r["variant"] = variant
            r["wall_s"] = time.perf_counter() - t
            r["status"], r["reason"] = "ok", None
            if r["timed_steps"] < a.steps:
                r["status"] = "failed"
                r["reason"] = (f"cut by its time cap ({cap:.0f} s) after {r['timed_steps']} of "
                               f"{a.steps} timed steps")
            if flop_counter_left_active():
                # The cap ended the run inside the FLOP-counted step: preset_speed's counter
                # is still active and would slow every later row.
                r["flops_note"] = "FLOP counter cut by the time cap"
            rows[idx] = r
        except statistics.StatisticsError:
            rows[idx] = {**row_base(preset, variant), "status": "failed",
                         "reason": f"no timed step within its time cap ({cap:.0f} s): "
                                   "compile / warm-up took longer"}
        except Exception as e:
            rows[idx] = {**row_base(preset, variant), "status": "failed",
                         "reason": one_line(e), "traceback": tail(traceback.format_exc())}
        if "compile" in variant:
            with contextlib.suppress(Exception):
                torch._dynamo.reset()
        if device == "cuda":
            torch.cuda.empty_cache()
        c.result["steps"]["throughput"] = {"status": "running", "rows": rows}
        c.save()
        if rows[idx].get("flops_note"):
            for j, rr in enumerate(rows):
                if rr["status"] == "pending":
                    rows[j] = {**row_base(rr["preset"], rr["variant"]), "status": "skipped",
                               "reason": "an earlier row left preset_speed's FLOP counter "
                                         "active; rerun"}
            break
    ran = [r for r in rows if r["status"] != "skipped"]
    failed = [r for r in rows if r["status"] == "failed"]
    rec = {"rows": rows, "steps": a.steps, "warmup": a.warmup,
           "quick_overrides": {"fashion-mnist": quick_set(a.quick, False),
                               "celeba": quick_set(a.quick, True)},
           "status": "ok", "reason": None}
    if not ran:
        rec["status"] = "skipped"
        rec["reason"] = "; ".join(dict.fromkeys(r["reason"] for r in rows))
    elif failed:
        rec["status"] = "failed"
        rec["reason"] = f"{len(failed)} of {len(ran)} rows failed: " + "; ".join(
            f"{r['preset']} {r['variant']}: {r['reason']}" for r in failed)
    return rec


def fastest(c: Check) -> tuple[str, str]:
    """Step 3's fastest OK setting for the training preset, and why it was picked."""
    rows = [r for r in c.result["steps"].get("throughput", {}).get("rows", [])
            if r["preset"] == TRAIN_PRESET and r["status"] == "ok"]
    if rows:
        best = max(rows, key=lambda r: r["samples_per_s"])
        return best["variant"], f"fastest in step 3 ({best['samples_per_s']:,.0f} samples/s)"
    default = "bf16" if c.a.device == "cuda" else "fp32"
    return default, "step 3 measured none of its settings OK: the default"


# ----------------------------------------------------------------------------------------------
# 4. and 5. ganscope train, in one process and under torchrun


def train_cmd(c: Check, variant: str, epochs: int, runs: str, name: str,
              eval_every: int | None) -> list[str]:
    a = c.a
    cmd = ["train", TRAIN_PRESET, "--device", a.device, *VARIANTS[variant][1],
           "--set", f"train.epochs={epochs}", "--runs-dir", runs, "--name", name,
           "--no-progress", "--no-plot"]
    if a.data_dir:
        cmd += ["--data-dir", a.data_dir]
    if eval_every:
        cmd += ["--eval-every", str(eval_every), "--set", "eval.metrics=fid"]
    for s in (QUICK_SET + QUICK_TRAIN if a.quick else []):
        cmd += ["--set", s]
    return cmd


def run_numbers(run: Run) -> dict:
    meta = run.meta()
    ck = load_checkpoint(run.last_checkpoint)
    cfg = run.config()
    done = float(meta.get("epochs_done") or 0)
    secs = float(ck.get("train_seconds") or 0)
    step = int(meta.get("step") or 0)
    return {"run_status": meta.get("status"), "epochs_done": done, "steps": step,
            "train_seconds": secs, "s_per_epoch": secs / done if done else None,
            "samples_per_s": (step * cfg.train.batch_size * cfg.train.n_critic / secs
                              if secs else None),
            "fid": (meta.get("best") or {}).get("fid"), "execution": meta.get("execution"),
            "stopped_early": meta.get("stopped_early"), "device": meta.get("device")}


def step_train(limit: float, c: Check, fmnist: Path | None, why: str) -> dict:
    if fmnist is None:
        return {"status": "skipped", "reason": why}
    variant, picked = fastest(c)
    epochs = 2 if c.a.quick else 10
    # Soft cap (the loop stops at a step and still evaluates), inside the hard timeout that
    # leaves room for start-up and the final FID.
    soft = max(limit - (10 if c.a.quick else 30), 0.25 * limit)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as runs:
        cmd = train_cmd(c, variant, epochs, runs, "single", eval_every=epochs)
        cmd += ["--set", f"train.minutes={soft / 60:.4f}"]
        r = run_cmd([sys.executable, "-m", "ganscope", *cmd], limit, sub_env())
        rec = {"variant": variant, "picked": picked, "epochs": epochs,
               "command": "ganscope " + " ".join(cmd[:-2]), "wall_s": r["wall_s"],
               "rc": r["rc"]}
        run = Run(Path(runs) / "single")
        if run.meta_path.is_file() and run.last_checkpoint.is_file():
            rec.update(run_numbers(run))
    if r["timed_out"] or r["rc"] != 0:
        what = f"timed out after {limit:.0f} s" if r["timed_out"] else f"exit {r['rc']}"
        return {"status": "failed", "reason": f"ganscope train {what}", **rec,
                "output_tail": tail(r["out"])}
    if rec.get("epochs_done", 0) < epochs:
        return {"status": "failed", "reason": f"stopped by its time cap ({soft:.0f} s) after "
                f"{rec.get('epochs_done', 0):.2f} of {epochs} epochs", **rec}
    return {"status": "ok", **rec}


def step_torchrun(limit: float, c: Check, fmnist: Path | None, why: str) -> dict:
    if fmnist is None:
        return {"status": "skipped", "reason": why}
    single = c.result["steps"].get("train_e2_dcgan_fixed", {})
    variant = single.get("variant") or fastest(c)[0]
    soft = max(limit - 30, 0.25 * limit)
    with tempfile.TemporaryDirectory(prefix="gpu-check-ddp-") as runs:
        cmd = train_cmd(c, variant, 1, runs, "ddp", eval_every=None)
        cmd += ["--set", f"train.minutes={soft / 60:.4f}"]
        env = sub_env()
        if c.a.device == "cpu":
            env.setdefault("OMP_NUM_THREADS", "1")
        full = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node=2", "-m", "ganscope", *cmd]
        r = run_cmd(full, limit, env)
        rec = {"variant": variant, "world_size": 2, "epochs": 1, "wall_s": r["wall_s"],
               "rc": r["rc"], "command": "torchrun --standalone --nproc-per-node=2 -m ganscope "
               + " ".join(cmd[:-2])}
        run = Run(Path(runs) / "ddp")
        if run.meta_path.is_file() and run.last_checkpoint.is_file():
            rec.update(run_numbers(run))
    if r["timed_out"] or r["rc"] != 0:
        what = f"timed out after {limit:.0f} s" if r["timed_out"] else f"exit {r['rc']}"
        return {"status": "failed", "reason": f"torchrun {what}", **rec,
                "output_tail": tail(r["out"])}
    one = single.get("s_per_epoch")
    rec["single_s_per_epoch"] = one
    rec["speedup_vs_single"] = (one / rec["s_per_epoch"]
                                if one and rec.get("s_per_epoch") else None)
    if single.get("variant") not in (None, variant):
        rec["note"] = "step 4 ran another setting: the speed-up compares unlike runs"
    if rec.get("epochs_done", 0) < 1:
        return {"status": "failed", "reason": f"stopped by its time cap ({soft:.0f} s) before "
                "the epoch ended", **rec}
    return {"status": "ok", **rec}


# ----------------------------------------------------------------------------------------------
# the table


def cut(text: str | None, n: int = 120) -> str:
    """A reason as the table shows it (the JSON keeps it whole)."""
    text = text or ""
    return text if len(text) <= n else text[: n - 3] + "..."


def fmt(x: object, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def summary(name: str, s: dict) -> str:
    if s["status"] != "ok":
        return cut(s.get("reason"))
    if name == "environment":
        gpus = ", ".join(f"{g['name']} {g['memory_gib']:.0f} GiB" for g in s["gpus"]) or "no GPU"
        extra = (f"; bf16 GEMM {s['bf16_gemm_tflops']:.0f} TFLOP/s"
                 if s.get("bf16_gemm_tflops") else "")
        return (f"torch {s['torch']} (CUDA {s['torch_cuda']}), {s['gpu_count']} GPU(s): {gpus};"
                f" {s['cpu_count']} CPUs{extra}")
    if name == "cuda_tests":
        return ", ".join(f"{v} {k}" for k, v in s["counts"].items())
    if name == "throughput":
        ok = [r for r in s["rows"] if r["status"] == "ok"]
        return f"{len(ok)} rows ok (table below)"
    if name == "train_e2_dcgan_fixed":
        return (f"{s['variant']}: {s['epochs_done']:g} epochs, wall {s['wall_s']:.1f} s, "
                f"train {s['train_seconds']:.1f} s ({fmt(s['s_per_epoch'], '.2f')} s/epoch, "
                f"{fmt(s['samples_per_s'], ',.0f')} samples/s), FID {fmt(s['fid'], '.2f')}")
    if name == "torchrun_2gpu":
        return (f"{s['variant']}: 1 epoch {fmt(s['s_per_epoch'], '.2f')} s vs one process "
                f"{fmt(s['single_s_per_epoch'], '.2f')} s/epoch "
                f"(x{fmt(s['speedup_vs_single'], '.2f')}), wall {s['wall_s']:.1f} s")
    return ""


def table(result: dict) -> str:
    lines = [f"gpu_check on {result['device']}{' (--quick)' if result['quick'] else ''}: "
             f"torch {result['torch']}, CUDA build {result['torch_cuda']}, "
             f"cuda available {result['cuda_available']}; total {result['total_s']:.0f} s of "
             f"{result['budget_s']:.0f} s budget"]
    if result["note"]:
        lines.append(result["note"])
    lines.append(f"{'step':<22} {'status':<8} {'s':>6} {'limit':>6}  result")
    for name in STEPS:
        s = result["steps"].get(name)
        if s is None:
            lines.append(f"{name:<22} {'missing':<8}")
            continue
        lim = "-" if s["limit_s"] is None else f"{s['limit_s']:.0f}"
        lines.append(f"{name:<22} {s['status']:<8} {s['seconds']:6.1f} {lim:>6}  "
                     f"{summary(name, s)}")
    rows = result["steps"].get("throughput", {}).get("rows", [])
    if rows:
        lines.append("")
        lines.append(f"{'preset':<16} {'variant':<16} {'status':<8} {'batch':>5} "
                     f"{'ms/step':>8} {'samples/s':>10} {'s/epoch':>8} {'peak GiB':>8}  note")
        for r in rows:
            if r["status"] == "ok":
                lines.append(
                    f"{r['preset']:<16} {r['variant']:<16} {'ok':<8} {r['batch_size']:>5} "
                    f"{1000 * r['median_step_s']:8.2f} {r['samples_per_s']:10,.0f} "
                    f"{r['s_per_epoch']:8.1f} {fmt(r['peak_mem_gb'], '8.2f'):>8}  "
                    f"{r['timed_steps']} timed steps")
            else:
                lines.append(f"{r['preset']:<16} {r['variant']:<16} {r['status']:<8} "
                             f"{'':45}  {cut(r.get('reason'), 90)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON path ({DEFAULT_OUT})")
    ap.add_argument("--budget-s", type=float, default=450.0,
                    help="seconds for all steps together (default 450)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true",
                    help="a tiny smoke version (a few steps, batch 8, 64 images, 2 epochs)")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed generator steps per throughput row (200 GPU, 20 CPU, 5 quick)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed steps first (20 GPU, 3 CPU, 2 quick)")
    ap.add_argument("--data-dir", default=None,
                    help="Fashion-MNIST folder (default: where ganscope looks)")
    ap.add_argument("--celeba-dir", default=None,
                    help="CelebA folder for e6-faces-gpu (default: $GANSCOPE_CELEBA)")
    ap.add_argument("--torchrun-on-cpu", action="store_true",
                    help="with --device cpu, run step 5 on 2 gloo CPU ranks instead of skipping")
    a = ap.parse_args(argv)
    gpu = a.device == "cuda"
    if a.steps is None:
        a.steps = 5 if a.quick else (200 if gpu else 20)
    if a.warmup is None:
        a.warmup = 2 if a.quick else (20 if gpu else 3)
    c = Check(a)

    why_no_cuda = (f"torch {torch.__version__} (torch.version.cuda = {torch.version.cuda}) sees "
                   "no GPU")
    if gpu and not torch.cuda.is_available():
        c.result["note"] = (f"CUDA not available: {why_no_cuda}; GPU steps skipped (install a "
                            "CUDA build of torch, or pass --device cpu)")
        print(c.result["note"], flush=True)
    env = c.step("environment", None, step_environment)
    if env["status"] == "ok" and env.get("nvidia_smi") and not torch.cuda.is_available():
        c.result["note"] = (c.result["note"] or "CUDA not available") + (
            f"; nvidia-smi sees {'; '.join(env['nvidia_smi'])}")
    fmnist, found_by = find_fmnist(a.data_dir)
    fmnist_why = "" if fmnist else found_by.split("; ")[0]  # the error without its hint
    if fmnist is None:
        print(f"{fmnist_why}; its throughput rows, the training run and torchrun skipped",
              flush=True)
    faces, faces_why = find_celeba(a.celeba_dir)
    if faces is None:  # the error's first clause; its hint on where to get CelebA is long
        faces_why = (f"e6-faces-gpu needs CelebA: {faces_why.split(': ')[0]}; pass "
                     "--celeba-dir DIR or set GANSCOPE_CELEBA")
    c.result["data"] = {"fashion_mnist": str(fmnist) if fmnist else None,
                        "fashion_mnist_found_by": found_by if fmnist else None,
                        "celeba": str(faces) if faces else None}

    skip: dict[str, str] = {}  # step -> why it is skipped (cuda_tests then only collects)
    if gpu and not c.cuda:
        skip = {name: f"no CUDA: {why_no_cuda}" for name in STEPS[2:]}
    n_gpu = torch.cuda.device_count() if c.cuda else 0
    if c.cuda and n_gpu < 2:
        skip["torchrun_2gpu"] = f"needs 2 CUDA GPUs; torch.cuda.device_count() = {n_gpu}"
    elif not c.cuda and not (a.device == "cpu" and a.torchrun_on_cpu):
        skip["torchrun_2gpu"] = f"needs 2 CUDA GPUs; no CUDA on --device {a.device}"
    plan = {"cuda_tests": (step_cuda_tests, c.cuda,
                           f"no CUDA: {why_no_cuda}" if not torch.cuda.is_available()
                           else f"CUDA not used: --device {a.device}"),
            "throughput": (step_throughput, c, fmnist, fmnist_why, faces, faces_why),
            "train_e2_dcgan_fixed": (step_train, c, fmnist, fmnist_why),
            "torchrun_2gpu": (step_torchrun, c, fmnist, fmnist_why)}
    will_run = [name for name in plan if name not in skip]
    for name, (fn, *args) in plan.items():
        if name in skip:
            c.step(name, None, lambda _limit, why=skip[name]: {"status": "skipped",
                                                               "reason": why})
        else:
            c.step(name, c.limit_for(name, will_run), fn, *args)

    c.result["finished"] = True
    c.save()
    text = table(c.result)
    print(text, flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out.with_suffix(".txt"), text + "\n")
    print(f"wrote {a.out} and {a.out.with_suffix('.txt')}", flush=True)
    return 1 if any(s["status"] == "failed" for s in c.result["steps"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
