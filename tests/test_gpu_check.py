"""benchmarks/gpu_check.py, the one-call GPU check, run end to end on the CPU (--quick).

The GPU half cannot run here; what can: every step records itself, the CUDA steps skip with a
reason that names CUDA, the CPU throughput rows and the short training run give numbers, the
2-process torchrun step works (gloo, --torchrun-on-cpu), and the table is printed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STEPS = ["environment", "cuda_tests", "throughput", "train_e2_dcgan_fixed", "torchrun_2gpu"]


def gpu_check(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = dict(os.environ)  # conftest's isolated cache and runs folders, no CelebA
    env.pop("GANSCOPE_CELEBA", None)
    out = tmp_path / "gpu_check.json"
    p = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out), *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert out.is_file(), p.stderr[-3000:]
    return p, json.loads(out.read_text())


def assert_recorded(res: dict) -> None:
    assert list(res["steps"]) == STEPS
    assert res["finished"] is True
    for name, s in res["steps"].items():
        assert s["status"] in ("ok", "skipped", "failed"), name
        assert s["seconds"] >= 0
        if s["status"] != "ok":
            assert s["reason"], name


@pytest.mark.slow
def test_quick_cpu_check_runs_every_step(tmp_path, tiny_fmnist_dir):
    p, res = gpu_check(tmp_path, "--device", "cpu", "--data-dir", str(tiny_fmnist_dir),
                       "--torchrun-on-cpu")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert_recorded(res)
    steps = res["steps"]
    assert all(s["status"] != "failed" for s in steps.values())
    env = steps["environment"]
    assert env["torch"] and "torch_cuda" in env and env["cpu_count"] >= 1

    cuda = steps["cuda_tests"]
    assert cuda["status"] == "skipped" and "CUDA" in cuda["reason"]
    # The selection is collected even here: exactly the GPU tests of test_execution.py.
    assert len(cuda["selected"]) == 3
    assert all("test_execution.py::test_cuda_" in t for t in cuda["selected"])

    rows = {(r["preset"], r["variant"]): r for r in steps["throughput"]["rows"]}
    for preset, variant in (("e1-mlp", "fp32"), ("e1-mlp", "bf16"), ("e2-dcgan-fixed", "fp32")):
        r = rows[(preset, variant)]
        assert r["status"] == "ok" and r["samples_per_s"] > 0 and r["timed_steps"] == 5
    # a conv preset's bf16 row is the one --quick skips on a CPU: emulated, it took ~60 s
    assert rows[("e2-dcgan-fixed", "bf16")]["status"] == "skipped"
    assert "emulated" in rows[("e2-dcgan-fixed", "bf16")]["reason"]
    for preset in ("e1-mlp", "e2-dcgan-fixed"):
        assert rows[(preset, "bf16+compile+cl")]["status"] == "skipped"
    assert all(rows[("e6-faces-gpu", v)]["reason"].startswith("e6-faces-gpu needs CelebA")
               for v in ("fp32", "bf16"))

    train = steps["train_e2_dcgan_fixed"]
    assert train["status"] == "ok" and train["epochs_done"] == 2
    assert train["variant"] in ("fp32", "bf16")
    assert train["train_seconds"] > 0 and math.isfinite(train["fid"])

    ddp = steps["torchrun_2gpu"]
    assert ddp["status"] == "ok" and ddp["world_size"] == 2 and ddp["epochs_done"] == 1
    assert ddp["execution"]["world_size"] == 2

    table = (tmp_path / "gpu_check.txt").read_text()
    assert table.strip() in p.stdout
    for name in STEPS:
        assert name in table
    assert "samples/s" in table and "e2-dcgan-fixed   fp32" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_cuda_or_data_each_says_so_in_one_line(tmp_path):
    """--device cuda on a CPU build of torch, with no Fashion-MNIST: one line each, the torch
    and CUDA versions in the JSON, and every GPU step skipped."""
    empty = tmp_path / "empty"
    empty.mkdir()
    p, res = gpu_check(tmp_path, "--device", "cuda", "--data-dir", str(empty))
    assert p.returncode == 0, p.stderr[-3000:]
    assert_recorded(res)
    lines = p.stdout.splitlines()
    assert lines[0].startswith("CUDA not available: torch ") and "torch.version.cuda" in lines[0]
    assert any(line.startswith("Fashion-MNIST train files missing in") for line in lines)
    assert res["torch"] and "torch_cuda" in res and res["cuda_available"] is False
    assert res["data"]["fashion_mnist"] is None
    for name in STEPS[1:]:
        assert res["steps"][name]["status"] == "skipped"
        assert "CUDA" in res["steps"][name]["reason"], name
