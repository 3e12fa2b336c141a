"""conftest's ForkedProcess, the stand-in for ``subprocess.Popen([python, -m, ganscope, ...])`` in
the crash, interrupt and lock tests: it must behave like a process of its own where they rely
on it (exit statuses, signals, pipes, warnings, environment, resource limits)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import warnings

import pytest

from conftest import ForkedProcess


def _returns(code):
    print("out")
    print("err", file=sys.stderr)
    return code


def _exits(code):
    sys.exit(code)


def _raises():
    raise ValueError("boom")


def _interrupted():
    raise KeyboardInterrupt


def _warns():
    warnings.warn("careful", UserWarning, stacklevel=1)
    return 0


def _says_much(n):
    sys.stdout.write("x" * n)
    sys.stderr.write("y" * n)
    return 0


def _env_and_pid():
    print(os.environ.get("FORKED_TEST"), os.environ.get("HOME"), os.getpid())
    return 0


def _waits_for_a_signal(ready_fd):
    os.write(ready_fd, b"1")
    signal.pause()  # a real SIGINT raises KeyboardInterrupt here
    return 0


def _writes(path, n):
    with open(path, "wb") as f:
        f.write(b"\0" * n)
    return 0


def test_status_streams_and_exceptions_as_a_process_has_them():
    p = ForkedProcess(_returns, 3)
    assert p.pid != os.getpid()
    assert p.communicate(timeout=30) == ("out\n", "err\n") and p.returncode == 3
    p = ForkedProcess(_exits, 2)
    assert p.wait(timeout=30) == 2
    p = ForkedProcess(_raises)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "Traceback" in err and "ValueError: boom" in err
    p = ForkedProcess(_interrupted)  # Python dies of the SIGINT it did not handle
    assert p.wait(timeout=30) == -signal.SIGINT


def test_warnings_print_to_the_childs_stderr_not_to_pytests_recorder():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        p = ForkedProcess(_warns)
        _, err = p.communicate(timeout=30)
    assert "UserWarning: careful" in err and seen == []


def test_large_outputs_on_both_pipes_do_not_deadlock():
    n = 1 << 20  # 16x a pipe's buffer
    p = ForkedProcess(_says_much, n)
    out, err = p.communicate(timeout=60)
    assert (len(out), len(err), p.returncode) == (n, n, 0)


def test_environment_signals_and_waiting(tmp_path):
    env = {"FORKED_TEST": "yes", "PATH": os.environ.get("PATH", "")}
    p = ForkedProcess(_env_and_pid, env=env, stderr=subprocess.DEVNULL)
    out, err = p.communicate(timeout=30)
    value, home, pid = out.split()
    assert (value, home, int(pid), err) == ("yes", "None", p.pid, None)

    r, w = os.pipe()
    p = ForkedProcess(_waits_for_a_signal, w)
    os.close(w)
    assert os.read(r, 1) == b"1"  # it is waiting
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(timeout=0.05)
    with pytest.raises(subprocess.TimeoutExpired):
        p.communicate(timeout=0.05)  # its pipes stay open while it waits
    assert p.poll() is None
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == -signal.SIGINT  # KeyboardInterrupt, unhandled
    r, w = os.pipe()
    p = ForkedProcess(_waits_for_a_signal, w)
    os.close(w)
    assert os.read(r, 1) == b"1"
    p.kill()
    assert p.wait(timeout=30) == -signal.SIGKILL and p.poll() == -signal.SIGKILL
    p.kill()  # already gone: nothing happens


def test_a_preexec_limit_applies_to_the_child_alone(tmp_path):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    p = ForkedProcess(_writes, str(tmp_path / "big"), 5000, preexec_fn=limit)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "File too large" in err
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY
    assert _writes(str(tmp_path / "big"), 5000) == 0


def test_a_thread_of_this_process_does_not_follow_into_the_child():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        p = ForkedProcess(lambda: threading.active_count())
        assert p.wait(timeout=30) == 1
    finally:
        stop.set()
        t.join()
