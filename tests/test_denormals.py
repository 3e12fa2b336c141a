"""Subnormal floats flushed while training (ganscope.training.denormals): the training thread
flushes when train.flush_denormals says so, solo and stacked, meta records it, and the caller's
own setting comes back afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganscope.config import apply_overrides, load_config
from ganscope.training.denormals import denormals_flushed, flush_denormals
from ganscope.training.loop import train
from ganscope.training.run import Run
from ganscope.training.stacked import train_stacked

SMALL = ["data.n_points=640", "train.n_samples=64", "train.save_generators=false",
         "train.epochs=1", "eval.every=0", "eval.patience=0"]


@pytest.fixture(autouse=True)
def caller_does_not_flush():
    """Each test starts from torch's default (not flushing) and leaves it so."""
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)


def test_the_probe_reads_the_flag_and_the_block_restores_the_callers():
    assert not denormals_flushed()
    with flush_denormals(True) as on:
        assert on and denormals_flushed()
        # what the flag is for: a subnormal state reads as zero in the optimiser's arithmetic
        sq = torch.full((4,), 1e-40)
        assert sq.sqrt().eq(0).all()
        with flush_denormals(False) as inner:
            assert not inner and not denormals_flushed()
            assert torch.full((4,), 1e-40).sqrt().gt(0).all()
        assert denormals_flushed()
    assert not denormals_flushed()
    torch.set_flush_denormal(True)
    with flush_denormals(False):
        pass
    assert denormals_flushed()  # a caller who flushes keeps flushing


def _runs(tmp_path, where: str, seeds, *extra: str) -> list[Run]:
    out = []
    for s in seeds:
        cfg = apply_overrides(load_config("e5-wgan-rmsprop"),
                              [f"seed={s}", *SMALL, *extra]).validate()
        out.append(Run.create(cfg, tmp_path / where, f"s{s}"))
    return out


@pytest.mark.parametrize("flush", [True, False])
def test_the_loop_trains_under_the_configs_setting_and_gives_the_callers_back(tmp_path, flush):
    (run,) = _runs(tmp_path, "solo", [0], f"train.flush_denormals={str(flush).lower()}")
    seen: list[bool] = []
    train(run, progress=False, verbose=False, on_step=lambda v: seen.append(denormals_flushed()))
    assert len(seen) == 2 and set(seen) == {flush}  # 640 points / 64 / 5 critic steps
    assert run.meta()["execution"]["flush_denormals"] is flush
    assert not denormals_flushed()


@pytest.mark.parametrize("flush", [True, False])
def test_a_stack_trains_under_the_configs_setting_too(tmp_path, flush):
    runs = _runs(tmp_path, "stack", [0, 1], f"train.flush_denormals={str(flush).lower()}")
    seen: list[bool] = []

    def should_stop(step: int) -> bool:
        seen.append(denormals_flushed())
        return False

    train_stacked(runs, progress=False, verbose=False, should_stop=should_stop)
    assert seen and set(seen) == {flush}
    assert [r.meta()["execution"]["flush_denormals"] for r in runs] == [flush, flush]
    assert [r.meta()["execution"]["stacked"] for r in runs] == [2, 2]
    assert not denormals_flushed()


def test_a_run_without_subnormals_is_the_same_either_way(tmp_path):
    """Flushing only touches values under 1.2e-38: 2 steps of the WGAN cell (clipped weights,
    RMSprop from zero state) leave nothing there, so the weights are bit-identical."""
    on, off = (_runs(tmp_path, w, [0], f"train.flush_denormals={w}")[0]
               for w in ("true", "false"))
    for r in (on, off):
        train(r, progress=False, verbose=False)
    a = torch.load(on.last_checkpoint, weights_only=True)["G"]
    b = torch.load(off.last_checkpoint, weights_only=True)["G"]
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
