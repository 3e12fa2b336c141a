"""How a run executes — device, precision, compile, memory format, threads — without changing
what it computes beyond float rounding. The CUDA half runs only where a GPU is present."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from ganscope.cli import main
from ganscope.config import RunConfig, apply_overrides
from ganscope.data import Dataset
from ganscope.sampling import generate_images, latents_from_seed
from ganscope.training.loop import train
from ganscope.training.run import Run, load_checkpoint, load_generator

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny(n: int = 128) -> Dataset:
    g = torch.Generator().manual_seed(0)
    return Dataset(torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8), None,
                   {"synthetic": True})


def run_with(tmp_path, name: str, *overrides: str, n: int = 128) -> Run:
    cfg = apply_overrides(RunConfig(), ["train.epochs=1", "train.batch_size=32",
                                        "train.n_samples=4", "seed=1", *overrides]).validate()
    return train(Run.create(cfg, tmp_path / "runs", name), dataset=tiny(n), progress=False)


def weights(run: Run) -> dict[str, torch.Tensor]:
    ck = load_checkpoint(run.last_checkpoint)
    return {**{f"G.{k}": v for k, v in ck["G"].items()},
            **{f"D.{k}": v for k, v in ck["D"].items()}}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def initial_weights(model: str = "mlp") -> dict[str, torch.Tensor]:
    """The nets run_with starts from (seed 1, PyTorch's default init)."""
    from ganscope.models import build_models

    torch.manual_seed(1)
    G0, D0 = build_models(model)
    return {**{f"G.{k}": v for k, v in G0.state_dict().items()},
            **{f"D.{k}": v for k, v in D0.state_dict().items()}}


def assert_same_training(ref: Run, other: Run, model: str = "mlp", factor: float = 10) -> None:
    """Float rounding, not another run: in every weight tensor the two runs differ on average
    ``factor`` times less than training moved the weights. (A max-difference test would not
    do: Adam's first steps are +-lr wherever a gradient is near zero, so one rounding flip
    moves a weight by a whole step.)"""
    w_ref, w_other, w0 = weights(ref), weights(other), initial_weights(model)
    for k in w_ref:
        if not k.endswith("weight") or w_ref[k].numel() < 2:
            continue
        update = (w_ref[k] - w0[k]).abs().mean()
        assert (w_ref[k] - w_other[k]).abs().mean() < update / factor, k


# How far a reduced-precision run may drift from fp32: max over weight tensors of
# mean|w_low - w_fp32| / mean|w_fp32 - w_init| (assert_same_training's ratio, 1/factor).
# Measured on an Intel Xeon (AVX-512, AMX-BF16), 1 and 2 threads alike (the MLP's matmuls
# are too small to be split): bf16 0.082, fp16 0.014 (both at G.fc1.weight); the original
# limit 1/10 passed on AMD EPYC (AVX2). Limits with >= 3x headroom over the worst measured
# value: bf16 1/4 (3.0x), fp16 1/10 (7x). For scale, a run that differs only in data order
# (train.shuffle=false) reaches 0.47 on its worst tensor.
PRECISION_FACTOR = {"bf16": 4, "fp16": 10}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_close_to_fp32(tmp_path, precision):
    ref = run_with(tmp_path, "fp32")
    low = run_with(tmp_path, precision, f"train.precision={precision}")
    w_ref, w_low = weights(ref), weights(low)
    assert all(torch.isfinite(v).all() for v in w_low.values())
    assert all(v.dtype == torch.float32 for v in w_low.values())  # master weights stay fp32
    assert max_diff(w_ref, w_low) > 0  # it did run in lower precision
    assert_same_training(ref, low, factor=PRECISION_FACTOR[precision])
    first = ref.read_events()[0], low.read_events()[0]
    # measured |difference| of the first loss_d: bf16 5.4e-4, fp16 4.6e-5 (37x / 430x margin)
    assert first[1]["loss_d"] == pytest.approx(first[0]["loss_d"], abs=0.02)
    assert low.meta()["execution"]["precision"] == precision


def test_compiled_nets_match_eager(tmp_path):
    # measured ratio (see assert_same_training) on the Xeon: 1.5e-7 (1 or 2 threads), so the
    # 1/100 limit has a margin of ~6e4
    eager = run_with(tmp_path, "eager", n=64)
    comp = run_with(tmp_path, "compiled", "train.compile=true", n=64)
    assert_same_training(eager, comp, factor=100)
    assert comp.meta()["execution"]["compile"] is True
    # checkpoints hold the plain modules' keys, so every reader loads them unchanged
    assert not any("_orig_mod" in k for k in weights(comp))
    assert generate_images(load_generator(comp), latents_from_seed(0, 2)).shape == (2, 28, 28)


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_channels_last_conv_run_matches_nchw(tmp_path, keep_threads):
    """NHWC and NCHW convolutions are different oneDNN kernels (other summation orders), and
    Adam turns each flipped sign of a near-zero gradient into a whole +-lr step, so the runs
    differ by more than rounding. Measured ratio (assert_same_training's, max over tensors):
    Intel Xeon AVX-512/AMX 0.0046 with 1 thread, 0.0119 with 2 (G.main.0/1.weight); on AMD
    EPYC (AVX2) the original 1/100 limit held. Both runs use 1 thread, so the machine's core
    count does not pick the kernels; the limit 1/25 = 0.04 is 8.7x the 1-thread and 3.4x the
    2-thread value. A run with another data order (train.shuffle=false) reaches 0.33."""
    one = "train.threads=1"
    a = run_with(tmp_path, "nchw", "model.name=dcgan", "train.channels_last=false", one, n=64)
    b = run_with(tmp_path, "nhwc", "model.name=dcgan", one, n=64)  # the default for conv nets
    assert b.meta()["execution"]["channels_last"] is True
    assert a.meta()["execution"]["channels_last"] is False
    assert_same_training(a, b, "dcgan", factor=25)


def test_threads_setting_is_applied_and_recorded(tmp_path):
    before = torch.get_num_threads()
    try:
        r = run_with(tmp_path, "one-thread", "train.threads=1", n=64)
        assert torch.get_num_threads() == 1
        assert r.meta()["execution"]["threads"] == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_asked_without_a_gpu_is_one_line(tmp_path, capsys):
    rc = main(["train", "e1-mlp", "--device", "cuda", "--runs-dir", str(tmp_path),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == ("error: CUDA was asked for (--device cuda) but this torch build sees no GPU: "
                   "use --device cpu, or install a CUDA build of torch\n")


@cuda
@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_cuda_fp32_agrees_with_cpu_and_its_checkpoints_load_on_cpu(tmp_path, model):
    """Same config on CPU and GPU: the same data order and latents (both drawn on the CPU), so
    the weights agree to float rounding (cuBLAS/cuDNN vs oneDNN sums; TF32 convs on recent
    GPUs), far below what training moved them."""
    cpu = run_with(tmp_path, "cpu", f"model.name={model}")
    gpu = run_with(tmp_path, "gpu", f"model.name={model}", "train.device=cuda")
    assert gpu.meta()["device"].startswith("cuda")
    ck = load_checkpoint(gpu.last_checkpoint)  # written on the GPU, loaded with map_location=cpu
    assert all(v.device.type == "cpu" for v in ck["G"].values())
    w_cpu, w_gpu = weights(cpu), weights(gpu)
    key = "G.fc2.weight" if model == "mlp" else next(k for k in w_cpu if k.endswith("weight"))
    init = load_checkpoint(cpu.last_checkpoint)  # scale of the update: compare with epoch 1
    assert max_diff(w_cpu, w_gpu) < 2e-3
    assert (w_cpu[key] - w_gpu[key]).abs().max() < 2e-3
    ev_c, ev_g = cpu.read_events(), gpu.read_events()
    assert [e["loss_d"] for e in ev_g] == pytest.approx([e["loss_d"] for e in ev_c], abs=5e-3)
    G = load_generator(gpu, device="cpu")
    assert generate_images(G, latents_from_seed(0, 4)).shape[0] == 4
    assert init["format"] == ck["format"]


@cuda
def test_cuda_bf16_and_compile_run(tmp_path):
    r = run_with(tmp_path, "gpu-bf16", "train.device=cuda", "train.precision=bf16",
                 "train.compile=true", "model.name=dcgan", "train.channels_last=true")
    assert r.meta()["status"] == "completed"
    assert all(torch.isfinite(v).all() for v in weights(r).values())


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two cores to pin to one")
def test_a_process_pinned_to_one_core_sizes_its_pool_and_threads_to_that_core(monkeypatch):
    """taskset / a Slurm CPU set: pools and torch threads follow the cores this process may
    use, not the machine's count (two threads on one core wait on each other); and a user's
    OMP_NUM_THREADS caps the threads."""
    from ganscope.environment import usable_cores
    from ganscope.experiments.runner import pool_shape

    cores = len(os.sched_getaffinity(0))
    assert usable_cores() == cores
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # conftest sets it under xdist
    assert pool_shape(1) == (1, cores) and pool_shape(9) == (cores, 1)
    assert pool_shape(9, workers=1) == (1, cores)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert pool_shape(1) == (1, 1) and pool_shape(9, workers=1) == (1, 1)
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from ganscope.environment import usable_cores; "
            "from ganscope.experiments.runner import pool_shape; "
            "from ganscope.training.distributed import DistInfo, threads_per_rank; "
            "print(usable_cores(), pool_shape(4), pool_shape(4, workers=3), "
            "threads_per_rank(DistInfo(rank=0, world=1)))")
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_WORLD_SIZE"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert (p.returncode, p.stdout) == (0, "1 (1, 1) (3, 1) 1\n"), p.stderr
