"""One writer per run, and other commands' writes never lost: real processes, real locks.

- ``train.lock`` (flock) lets one process train a run; a second ``train --resume`` gets one line
  naming the holder, exit 2, and changes nothing; a trainer killed with -9 leaves the run
  ``died`` and resumable (the kernel released its lock).
- meta.json and metrics.jsonl read-modify-writes from several processes at once keep every field
  and every record.
- A torn last line is skipped by readers with a warning; a refused write (file too large, full
  disk) is one line naming the file, exit 2, and the last good checkpoint stays.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import ForkedProcess
from ganscope.cli import main
from ganscope.training.run import Run, RunWarning, load_checkpoint

pytestmark = pytest.mark.timeout(240)


def train_args(data: Path, runs: Path, *args: str) -> list[str]:
    return ["train", *args, "--runs-dir", str(runs), "--no-progress", "--no-plot"] + (
        ["--data-dir", str(data)] if "--resume" not in args else [])


def trainer(data: Path, runs: Path, *args: str, **kw) -> ForkedProcess:
    """The same in a process of its own, forked from this one (``ForkedProcess``: a fresh
    interpreter costs ~7.5 s of imports): where the test is about another process (the lock's
    holder, a file size limit); the runs before and after are trained in this one."""
    return ForkedProcess(main, train_args(data, runs, *args), **kw)


def wait_until(cond, timeout: float = 60.0, what: str = "condition"):
    """Poll a condition the other process makes true (an event), with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def start_long_run(tiny_fmnist_dir: Path, runs: Path, name: str = "r") -> ForkedProcess:
    """A trainer that runs until it is killed (1000 epochs of 4 steps)."""
    return trainer(tiny_fmnist_dir, runs, "e1-mlp", "--name", name,
                   "--set", "train.epochs=1000", "--set", "train.save_generators=false",
                   "--set", "train.sample_every=1000", stdout=subprocess.DEVNULL)


def test_a_second_trainer_is_refused_and_a_killed_one_leaves_a_died_resumable_run(
        tiny_fmnist_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    first = start_long_run(tiny_fmnist_dir, runs)
    try:
        run = Run(runs / "r")
        holder = wait_until(lambda: run.path.is_dir() and run.lock_holder(), what="the lock")
        assert holder["pid"] == first.pid and holder["host"] == os.uname().nodename
        wait_until(lambda: run.last_checkpoint.is_file(), what="a first checkpoint")
        assert run.status() == "running"
        config_before = (run.path / "config.yaml").read_bytes()

        second = trainer(tiny_fmnist_dir, runs, "--resume", "r", "--set", "train.epochs=2000")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err
        assert lines[0].startswith(f"error: run 'r' is being trained by process {first.pid} on "
                                   f"{os.uname().nodename} since ")
        assert lines[0].endswith(": wait for it to finish, or stop it (Ctrl-C) and then resume")
        # the refused trainer changed nothing: not the config, not the trainer's lock
        assert (run.path / "config.yaml").read_bytes() == config_before
        assert run.lock_holder()["pid"] == first.pid
        assert first.poll() is None

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert run.meta()["status"] == "running"  # what the dead process left behind...
        assert run.status() == "died"  # ...and what every reader is told
        assert run.lock_holder() is None
        capsys.readouterr()
        assert main(["runs", "--json", "--runs-dir", str(runs)]) == 0
        assert json.loads(capsys.readouterr().out)[0]["status"] == "died"

        # the stale lock is taken over by the next trainer; the run completes
        ck = load_checkpoint(run.last_checkpoint)
        assert main(train_args(tiny_fmnist_dir, runs, "--resume", "r", "--set",
                               f"train.epochs={ck['epoch'] + 1}")) == 0
        assert run.status() == "completed" and run.lock_holder() is None
        steps = [e["step"] for e in run.read_events()]
        assert steps == list(range(1, steps[-1] + 1))
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_the_lock_is_reentrant_in_a_thread_and_refused_to_another_thread(tmp_path):
    run = Run(tmp_path / "r")
    run.path.mkdir()
    with run.training_lock():
        with run.training_lock():  # the CLI's resume lock around train()'s own
            assert run.lock_holder()["pid"] == os.getpid()
        assert run.lock_holder() is not None  # the inner exit did not release it
        errors = []

        def other():
            try:
                with run.training_lock():
                    pass
            except Exception as e:  # noqa: BLE001 - the assertion is on its type and text
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(errors) == 1 and "is being trained by process" in str(errors[0])
    assert run.lock_holder() is None
    with run.training_lock():  # free again
        pass


def _writer(path: str, tag: str, n: int, go: int) -> int:
    run = Run(path)
    os.read(go, 1)  # start together
    for i in range(n):
        run.update_meta(**{f"{tag}{i}": i})
        run.append_metrics([{"writer": tag, "i": i}])
    return 0


def test_concurrent_meta_and_metrics_writers_lose_nothing(tmp_path):
    """Four processes, 150 read-modify-writes each, released at once: with the meta lock every
    field and record is there (with the lock patched out, one run here kept 252 of 600 fields
    and 261 of 600 records: lost updates are the rule, not a rarity). Forked (ForkedProcess),
    not started afresh: each is its own process with its own descriptors and flocks, without
    ~4 s of importing torch."""
    run = Run(tmp_path / "r")
    run.path.mkdir()
    run.update_meta(status="running")
    n, tags = 150, ["a", "b", "c", "d"]
    go, release = os.pipe()
    procs = [ForkedProcess(_writer, str(run.path), t, n, go) for t in tags]
    os.write(release, b"x" * len(tags))  # one byte each: all blocked on the pipe until now
    os.close(release)
    os.close(go)
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    meta = run.meta()
    assert meta["status"] == "running"
    assert all(meta.get(f"{t}{i}") == i for t in tags for i in range(n))
    recs = run.read_metrics()
    assert len(recs) == n * len(tags)
    for t in tags:  # each writer's records in its own order
        assert [r["i"] for r in recs if r["writer"] == t] == list(range(n))


def test_torn_last_lines_are_skipped_with_a_warning(tmp_path, capsys):
    run = Run(tmp_path / "r")
    run.path.mkdir()
    run.append_events([{"step": 1, "loss_d": 1.0}, {"step": 2, "loss_d": 0.5}])
    with open(run.events_path, "a") as f:
        f.write('{"step": 3, "loss_')
    with pytest.warns(RunWarning, match=r"events.jsonl line 3 is torn \(a crash mid-write\)"):
        assert [e["step"] for e in run.read_events()] == [1, 2]
    run.append_metrics([{"epoch": 1}])
    with open(run.metrics_path, "a") as f:
        f.write('{"epoch": 2, "metr')
    with pytest.warns(RunWarning, match=r"metrics.jsonl line 2 is torn"):
        assert run.read_metrics() == [{"epoch": 1}]
    run.append_metrics([{"epoch": 3}])  # the next writer drops the torn record
    assert run.read_metrics() == [{"epoch": 1}, {"epoch": 3}]
    # a damaged line in the middle is not a crash's mark: still a one-line error
    run.metrics_path.write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(Exception, match="line 2 is not JSON"):
        run.read_metrics()


def test_the_cli_prints_a_torn_line_as_one_warning_line(tiny_fmnist_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "e1-mlp", "--data-dir", str(tiny_fmnist_dir), "--name", "r",
                 "--set", "train.epochs=1", "--no-progress", "--no-plot",
                 "--runs-dir", str(runs)]) == 0
    with open(runs / "r" / "events.jsonl", "a") as f:
        f.write('{"step": 5, "ep')
    capsys.readouterr()
    assert main(["plot", "r", "--runs-dir", str(runs)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: {runs / 'r' / 'events.jsonl'} line 5 is torn (a crash "
                   "mid-write): skipped"]


def _limit_file_size(limit: int):
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def test_a_refused_write_is_one_line_and_keeps_the_last_good_checkpoint(tiny_fmnist_dir,
                                                                          tmp_path):
    """A real refused write (the kernel's EFBIG under RLIMIT_FSIZE; as root, a read-only folder
    would not refuse anything): epoch 2's files are too large to write."""
    runs = tmp_path / "runs"
    assert main(train_args(tiny_fmnist_dir, runs, "e1-mlp", "--name", "r",
                           "--set", "train.epochs=1")) == 0
    run = Run(runs / "r")
    before = run.last_checkpoint.read_bytes()
    limit = run.generator_checkpoint(1).stat().st_size // 2  # G alone does not fit any more
    bad = trainer(tiny_fmnist_dir, runs, "--resume", "r", "--set", "train.epochs=3",
                  preexec_fn=_limit_file_size(limit))
    _, err = bad.communicate(timeout=120)
    assert bad.returncode == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert lines[-1] == (f"error: cannot write {run.generator_checkpoint(2)} (File too large): "
                         "the file is larger than this system allows; files written before are "
                         "kept, so a training run can continue with `ganscope train --resume`")
    assert run.last_checkpoint.read_bytes() == before  # the last good checkpoint, untouched
    assert not list(run.path.rglob(".*.tmp"))  # no half-written temp file left
    assert run.status() == "failed" and run.lock_holder() is None
    assert main(train_args(tiny_fmnist_dir, runs, "--resume", "r")) == 0
    assert load_checkpoint(run.last_checkpoint)["epoch"] == 3
    assert [e["step"] for e in run.read_events()] == list(range(1, 13))


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)
    return r.returncode == 0


def test_a_full_disk_is_one_line_and_keeps_the_last_good_checkpoint(tiny_fmnist_dir, tmp_path):
    """ENOSPC from a real, small file system (tmpfs; needs the right to mount, as root has on
    this project's machines)."""
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(disk, "24m"):
        pytest.skip("cannot mount a small tmpfs here (not root): the EFBIG test covers the path")
    try:
        runs = disk / "runs"
        assert main(train_args(tiny_fmnist_dir, runs, "e1-mlp", "--name", "r",
                               "--set", "train.epochs=1")) == 0
        run = Run(runs / "r")
        before = run.last_checkpoint.read_bytes()
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        with open(disk / "filler", "wb") as f:  # leave less than one generator file
            f.write(b"\0" * max(0, free - run.generator_checkpoint(1).stat().st_size // 2))
        bad = trainer(tiny_fmnist_dir, runs, "--resume", "r", "--set", "train.epochs=3")
        _, err = bad.communicate(timeout=120)
        assert bad.returncode == 2 and "Traceback" not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"error: cannot write {runs / 'r'}")
        assert "(No space left on device): free some disk space;" in last
        assert run.last_checkpoint.read_bytes() == before
        assert not list(run.path.rglob(".*.tmp"))
        (disk / "filler").unlink()
        assert main(train_args(tiny_fmnist_dir, runs, "--resume", "r")) == 0
        assert torch.load(run.last_checkpoint, weights_only=True)["epoch"] == 3
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
