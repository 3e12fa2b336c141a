"""``kill -9`` at random moments of training, then ``train --resume``, many times over one run.

The run must always complete; its events must have every step exactly once; no kill may cost
the previous checkpoint; and because resuming is exact, the weights at the end must equal those
of an uninterrupted run bit for bit (same machine, same code path, same thread count: every
trainer is the CLI in a process forked from this one, ``ForkedProcess``, started the same way).

Kill moments are drawn uniformly over the time the trainer holds its lock, so they land in
steps, in event flushes, in sample-grid and checkpoint writes (the writes with fsync take a
good part of each epoch of this tiny run): a kill that left a temp file behind was a kill in the
middle of an atomic write, and the test counts them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import torch

from conftest import ForkedProcess
from ganscope.cli import main
from ganscope.training.run import Run, load_checkpoint

pytestmark = [pytest.mark.timeout(420), pytest.mark.slow]

# 4 kills: one before the first checkpoint, one mid-write, two at random moments; more:
# GANSCOPE_CRASH_KILLS=20
KILLS = int(os.environ.get("GANSCOPE_CRASH_KILLS", "4"))
EPOCHS, STEPS_PER_EPOCH = max(24, 3 * KILLS), 4  # 256 tiny images, batch 64


def cmd(data: Path, runs: Path, *args: str) -> list[str]:
    base = ["train", *args, "--runs-dir", str(runs), "--no-progress", "--no-plot"]
    return base if "--resume" in args else base + ["--data-dir", str(data)]


def trainer(argv: list[str], stdout: int | None = subprocess.DEVNULL) -> ForkedProcess:
    return ForkedProcess(main, argv, stdout=stdout)


def config_args(name: str) -> list[str]:
    return ["e1-mlp", "--name", name, "--set", f"train.epochs={EPOCHS}"]


def wait_for_lock(run: Run, pid: int, proc: ForkedProcess, timeout: float = 90.0) -> bool:
    """Until ``pid`` holds the run's training lock (the trainer has started), or it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        holder = run.lock_holder() if run.path.is_dir() else None
        if holder and holder.get("pid") == pid:
            return True
        time.sleep(0.005)
    raise AssertionError("the trainer never took its lock")


def test_kill_9_at_random_moments_then_resume_always_completes_exactly(tiny_fmnist_dir,
                                                                       tmp_path):
    runs = tmp_path / "runs"

    # the uninterrupted reference, timed from taking the lock to exit: the window kills fall in
    ref = trainer(cmd(tiny_fmnist_dir, runs, *config_args("ref")))
    assert wait_for_lock(Run(runs / "ref"), ref.pid, ref)
    t0 = time.monotonic()
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    window = time.monotonic() - t0

    run = Run(runs / "crash")
    rng = random.Random(20261130)
    report = {"kills": 0, "mid_write": 0, "before_first_checkpoint": 0, "finished_first": 0,
              "torn_lines": 0}
    args = config_args("crash")
    for attempt in range(KILLS):
        had_checkpoint = run.last_checkpoint.is_file()
        proc = trainer(cmd(tiny_fmnist_dir, runs, *args))
        args = ["--resume", "crash"]
        if not wait_for_lock(run, proc.pid, proc):
            pytest.fail(f"trainer exited before training: {proc.stderr.read()}")
        if attempt == 0:  # at once: before the first checkpoint (the run starts over)
            pass
        elif attempt % 3 == 2:  # the moment a checkpoint's temp file exists: mid-write
            _spin_until_temp_file(run.checkpoints, proc)
        else:  # a random moment in a random epoch of what is left of the run: wait for
            # that epoch's sample grid (an event), then a random part of an epoch's time
            done = (load_checkpoint(run.last_checkpoint)["epoch"]
                    if run.last_checkpoint.is_file() else 0)
            target = rng.randint(min(done, EPOCHS - 2), EPOCHS - 2)
            _wait_for_grids(run, target, proc)
            time.sleep(rng.uniform(0.0, window / EPOCHS))  # the fault's moment, not a wait
        if proc.poll() is not None:  # it finished before its kill came
            assert proc.returncode == 0, proc.stderr.read()
            report["finished_first"] += 1
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        report["kills"] += 1
        if list(run.path.rglob(".*.tmp")):
            report["mid_write"] += 1
        if run.last_checkpoint.is_file():
            load_checkpoint(run.last_checkpoint)  # never a torn checkpoint
        else:
            assert not had_checkpoint, "a kill lost the previous checkpoint"
            report["before_first_checkpoint"] += 1
        assert run.status() in ("died", "created")  # killed before it wrote "running": created
        # a torn last line may be there: readers skip it, with a warning
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            steps = [e["step"] for e in run.read_events()]
        report["torn_lines"] += len(seen)
        assert steps == list(range(1, len(steps) + 1))  # what was logged has no gap

    # resume until it completes (a kill may have come after the last epoch's checkpoint)
    for _ in range(3):
        if run.meta().get("status") == "completed":
            break
        done = trainer(cmd(tiny_fmnist_dir, runs, "--resume", "crash"), stdout=subprocess.PIPE)
        _, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
    print("\ncrash test:", json.dumps(report))
    assert report["kills"] >= KILLS - 2

    total = EPOCHS * STEPS_PER_EPOCH
    assert run.status() == "completed" and run.meta()["epochs_done"] == EPOCHS
    events = run.read_events()
    assert [e["step"] for e in events] == list(range(1, total + 1))  # no gap, no duplicate
    ref_run = Run(runs / "ref")
    ref_events = ref_run.read_events()
    assert [{k: e[k] for k in ("step", "epoch", "it")} for e in events] == \
        [{k: e[k] for k in ("step", "epoch", "it")} for e in ref_events]
    # exact resume: the logged losses and the final weights are the uninterrupted run's
    assert [e["loss_d"] for e in events] == [e["loss_d"] for e in ref_events]
    a, b = load_checkpoint(run.last_checkpoint), load_checkpoint(ref_run.last_checkpoint)
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"
    for e in range(1, EPOCHS + 1):
        assert run.sample_grid(e).is_file() and run.generator_checkpoint(e).is_file()
    assert not list(run.path.rglob(".*.tmp"))  # the last resume removed the leftovers


def _spin_until_temp_file(folder: Path, proc: ForkedProcess, timeout: float = 60.0) -> None:
    """Busy-wait (no sleep: a checkpoint write lasts milliseconds) for an atomic write's temp
    file in ``folder``; return at once when it shows or the trainer exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(n.endswith(".tmp") for n in os.listdir(folder)):
                return
        except FileNotFoundError:
            pass


def _wait_for_grids(run: Run, n: int, proc: ForkedProcess, timeout: float = 120.0) -> None:
    """Until the trainer has written the sample grid of epoch ``n`` (0: at once)."""
    deadline = time.monotonic() + timeout
    while n > 0 and time.monotonic() < deadline and proc.poll() is None:
        if run.sample_grid(n).is_file():
            return
        time.sleep(0.002)
