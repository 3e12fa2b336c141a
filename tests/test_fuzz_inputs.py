"""Property-based fuzzing of the real entry points with random user input (issue 15).

Every input must either work (exit 0) or end with exactly one ``error: ...`` line on stderr and
exit code 2: no traceback, no other exception out of ``ganscope.cli.main``, and no run directory
left behind by a run that failed. Inputs:

1. ``ganscope train e1-mlp --set KEY=VALUE ...``: real, misspelt and nested unknown keys; text,
   numbers (negative, zero, huge, nan, inf), booleans, lists and YAML-special values.
2. ``ganscope train ... --set data.name=points:FILE``: random point files (.csv/.txt/.dat/.npy
   and others): wrong columns, nan/inf, empty, one point, huge values, garbage, bad encodings.
3. ``ganscope eval --images FILE.npy``: arrays of random shapes, dtypes and value ranges.
4. ``ganscope train e6-faces --data-dir DIR``: random mutations of a tiny CelebA folder's
   ``list_attr_celeba.txt``.

Valid configs are kept tiny (1-2 epochs, 32 images) so that a working example costs a fraction
of a second. A few representative cases also run as real processes (``python -m ganscope``).
The outcome counts per entry point are printed at the end of the module (``-rA`` or ``-s`` not
needed: they go to the terminal reporter) and recorded as Hypothesis events
(``--hypothesis-show-statistics``).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.extra import numpy as hnp
from PIL import Image

import ganscope.data.celeba as cb
from ganscope import config as gc
from ganscope.cli import main

pytestmark = pytest.mark.timeout(300)

# The same examples on every run (CI). GANSCOPE_FUZZ_SCALE=10 explores: 10x the examples, new
# random ones each run.
SCALE = float(os.environ.get("GANSCOPE_FUZZ_SCALE", "1"))
FUZZ = settings(deadline=None, derandomize="GANSCOPE_FUZZ_SCALE" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    pm = request.config.pluginmanager
    tr, cap = pm.getplugin("terminalreporter"), pm.getplugin("capturemanager")
    if tr is None or cap is None:
        return
    with cap.global_and_fixture_disabled():
        tr.write_line("")
        for entry, c in sorted(COUNTS.items()):
            tr.write_line(f"fuzz {entry}: {c['worked'] + c['error']} inputs, {c['worked']} "
                          f"worked, {c['error']} clean one-line errors")


# ----------------------------------------------------------------------------------------------
# The contract


def runs_root() -> Path:
    return Path(os.environ["GANSCOPE_RUNS"])


def listing() -> set[str]:
    r = runs_root()
    return {p.name for p in r.iterdir()} if r.is_dir() else set()


def count(entry: str, outcome: str) -> None:
    COUNTS[entry][outcome] += 1
    if currently_in_test_context():
        event(f"{entry}: {outcome}")


def check_cli(argv: list[str], capsys, entry: str, creates_run: bool = True) -> tuple[int, str]:
    """Run ``main(argv)`` in-process and assert the one-line-error contract; count the outcome."""
    before = listing()
    threads = torch.get_num_threads()
    capsys.readouterr()
    try:
        rc = main(argv)
    finally:
        torch.set_num_threads(threads)  # train.threads changes this process-wide state
    out, err = capsys.readouterr()
    after = listing()
    assert "Traceback" not in err, err
    if rc == 0:
        count(entry, "worked")
        if creates_run:
            assert len(after - before) == 1, (before, after)
        return rc, err
    assert rc == 2, (rc, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert sum(ln.startswith("error: ") for ln in lines) == 1, err
    assert after == before, f"a failed run left {sorted(after - before)} behind: {lines[-1]}"
    count(entry, "error")
    return rc, err


_names = iter(range(10**9))


def run_name() -> str:
    return f"fz{next(_names)}"


# ----------------------------------------------------------------------------------------------
# 1. --set KEY=VALUE overrides


def leaf_keys(cls: type = gc.RunConfig, prefix: str = "") -> list[str]:
    out = []
    for name, tp in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(tp):
            out += leaf_keys(tp, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


LEAVES = leaf_keys()
SECTIONS = [f.name for f in dataclasses.fields(gc.RunConfig)
            if dataclasses.is_dataclass(typing.get_type_hints(gc.RunConfig)[f.name])]


def _misspell(key: str, data) -> str:
    i = data.draw(st.integers(0, len(key) - 1))
    how = data.draw(st.sampled_from(["drop", "double", "swap", "case", "dash"]))
    if how == "drop":
        return key[:i] + key[i + 1:]
    if how == "double":
        return key[:i] + key[i] + key[i:]
    if how == "swap" and i + 1 < len(key):
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    if how == "case":
        return key.upper()
    return key.replace("_", "-").replace(".", "-", 1) if "_" in key or "." in key else key + "-"


@st.composite
def keys(draw):
    kind = draw(st.sampled_from(["real"] * 12 + ["misspelt", "nested", "section", "junk"]))
    if kind == "real":
        return draw(st.sampled_from(LEAVES))
    if kind == "misspelt":
        return _misspell(draw(st.sampled_from(LEAVES)), _Drawer(draw))
    if kind == "nested":
        base = draw(st.sampled_from(LEAVES + SECTIONS))
        return base + "." + draw(st.sampled_from(["x", "lr", "epochs", "g", "", "0", "a.b"]))
    if kind == "section":
        return draw(st.sampled_from(SECTIONS + ["optim.g", "optim.d"]))
    return draw(st.one_of(st.text(max_size=12),
                          st.sampled_from(["", " ", ".", "..", "train.", ".train", "train..epochs",
                                           "optim.g.lr.x", "data.name ", " seed", "__class__",
                                           "train.__dict__", "optim.resolved", "to_dict"])))


class _Drawer:
    """Lets ``_misspell`` draw inside a composite strategy."""

    def __init__(self, draw):
        self._draw = draw

    def draw(self, strategy):
        return self._draw(strategy)


SPECIALS = ["[", "]", "{", "}", "{a: 1}", "{}", "[]", "~", "null", "Null", "", " ", "!!python/object:os.system",
            "!!python/object/apply:os.system [ls]", "!!binary aGVsbG8=", "!!float 1", "!!int x",
            "!!str 5", "&a [*a]", "*x", "%YAML 1.1", "---", "...", "'", '"', ":", "- a", "? a",
            "a: b: c", "|", ">", "#", "# comment", "@", "`", "1e-4", "1E5", ".inf", "-.inf",
            ".nan", ".NaN", "nan", "inf", "-inf", "1e309", "-1e309", "1e-400", "0x1F", "0o17",
            "0b101", "1_000", "12:30:00", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "=",
            "a=b", "-0", "+1", "0.0", "-0.0", "1.", ".5", "0", "-1", "1", "2", "yes", "no", "on",
            "off", "y", "n", "True", "FALSE", "true", "false", "[0.5, 0.999]", "[0.5]",
            "[0.5, 0.9, 0.99]", "[1, 1]", "[-1, 0.5]", "[nan, 0.5]", "[.nan, 0.5]", "[1e-4, 2]",
            "[[1]]", "[8, 8]", "[0]", "[-8]", "[8, 8.5]", "[true]", "[a, b]", "{0.5: 0.9}",
            "\x00", "é", "\udcff", "\n", "a\nb", "\t", "fid,kid", ",", "fid,,", "none",
            "fid, bogus", "classes", "prdc", "kid", "!!float abc", "!!timestamp x",
            "!!bool maybe", "2001-02-30", "!!set {a}", "!!omap [a]", "!!map x", "[&a [*a]]",
            "!!python/name:os.system", "1e99999", "-" * 3, "0" * 400, "9" * 5000]
GOOD = {
    "data.name": ["fashion-mnist", "celeba", "ring8", "grid25", "ring8:radius=1.5", "ring8:std=-1",
                  "ring8:bogus=1", "ring8:radius=abc", "ring8:", "points:", "points:missing.csv",
                  "spiral:arms=0", "circles:factor=1", "moons:noise=inf", "swissroll:noise=1e400",
                  "mnist", "cifar10", "points", "ring8:radius=1,radius=2"],
    "data.split": ["train", "test", "valid", "all", "TRAIN"],
    "model.name": ["mlp", "cnn", "dcgan", "tiny-cnn", "mlp2d", "dcgan32", "dcgan64", "resnet"],
    "model.init": ["default", "dcgan", "xavier"],
    "model.g_hidden": ["[8, 8]", "[4]", "[]", "[0]", "[8, -1]"],
    "model.d_hidden": ["[8, 8]", "[4]", "[]", "[0]", "[8, 8, 8]"],
    "loss.name": ["bce", "minimax", "wgan", "wgan-gp", "hinge", "lsgan", "l1"],
    "optim.name": ["adam", "rmsprop", "sgd", "adamw"],
    "optim.g.name": ["adam", "rmsprop", "sgd", "lion"],
    "optim.d.name": ["adam", "rmsprop", "sgd", "null"],
    "train.device": ["cpu", "cuda", "auto", "tpu", "cuda:0"],
    "train.precision": ["fp32", "bf16", "fp16", "fp8"],
    "eval.reference": ["test", "train", "valid"],
    "eval.metrics": ["fid", "kid", "prdc", "classes", "fid,kid,prdc,classes", "bogus", ""],
    "eval.every": ["0", "1", "2"],
    "eval.n": ["10", "16", "9", "0"],
}

# Keys whose valid values cost time or memory: values between the fast bound and the
# validation limit would train slowly, so the fuzzer swaps them for small ones. Beyond the
# validation limit they must be refused (and are fuzzed).
COSTLY = {"train.epochs": (2, None), "train.n_samples": (64, gc.MAX_N_SAMPLES),
          "model.z_dim": (256, gc.MAX_WIDTH), "model.g_hidden": (256, gc.MAX_WIDTH),
          "model.d_hidden": (256, gc.MAX_WIDTH), "data.n_points": (4096, gc.MAX_N_POINTS),
          "eval.n": (200, gc.MAX_EVAL_N), "train.threads": (2, gc.MAX_THREADS),
          "data.limit": (64, None)}
SLOW_TRUE = {"train.compile"}  # torch.compile on a CPU: seconds per example


def _numbers(v) -> list:
    if isinstance(v, bool):
        return []
    if isinstance(v, (int, float)):
        return [v]
    if isinstance(v, (list, tuple)):
        return [x for e in v for x in _numbers(e)]
    return []


def tame(key: str, raw: str) -> str:
    """Swap a valid-but-slow value for a quick one (see COSTLY); anything else is kept."""
    if key in SLOW_TRUE:
        try:
            return "false" if yaml.safe_load(raw) is True else raw
        except yaml.YAMLError:
            return raw
    if key not in COSTLY:
        return raw
    fast, limit = COSTLY[key]
    try:
        v = yaml.safe_load(raw)
    except (yaml.YAMLError, ValueError):
        return raw
    nums = _numbers(v)
    if any(isinstance(x, (int, float)) and x == x and x > fast and (limit is None or x <= limit)
           for x in nums):
        return "[8]" if isinstance(v, list) else "1"
    if isinstance(v, list) and len(v) > 4:
        return "[8]"
    return raw


def field_type(key: str):
    cls: typing.Any = gc.RunConfig
    for part in key.split("."):
        tp = typing.get_type_hints(cls)[part]
        cls = tp
    return tp


def typed_values(key: str):
    """Values of the field's own type, mostly valid: these make configs that train."""
    tp = field_type(key)
    args = set(typing.get_args(tp))
    if key in GOOD:
        return st.sampled_from(GOOD[key])
    if tp is bool or bool in args:
        return st.sampled_from(["true", "false"])
    if tp is int or int in args:
        return st.integers(0, 4).map(str)
    if tp is float or float in args:
        return st.floats(1e-5, 0.9).map(repr)
    if typing.get_origin(tp) is tuple or any(typing.get_origin(a) is tuple for a in args):
        return st.sampled_from(["[0.5, 0.999]", "[0.0, 0.9]", "[8]", "[8, 8]"])
    return st.sampled_from(["x", ""])


def values_for(key: str):
    base = [
        st.sampled_from(SPECIALS),
        st.integers(-5, 70).map(str),
        st.sampled_from([10**30, -10**30, 2**63, 2**64, 2**31, -2**63 - 1, 2**32, 10**6,
                         4096, 10**9]).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.lists(st.one_of(st.integers(-3, 300), st.floats(-2, 2), st.booleans(),
                           st.text("ab,:[] ", max_size=3)), max_size=4)
        .map(lambda xs: "[" + ", ".join(str(x) for x in xs) + "]"),
        st.text(max_size=20),
    ]
    if key in GOOD:
        base = [st.sampled_from(GOOD[key])] * 3 + base
    return st.one_of(base)


@st.composite
def overrides(draw):
    out = []
    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):
        key = draw(keys())
        if key == "data.dir":  # --data-dir wins anyway; keep the example about the value
            key = "data.limit"
        typed = key in LEAVES and draw(st.integers(0, 2)) > 0
        raw = tame(key, draw(typed_values(key) if typed else values_for(key)))
        sep = draw(st.sampled_from(["=", "=", "=", " = ", "=="]))
        out.append(f"{key}{sep}{raw}" if draw(st.integers(0, 30)) else f"{key}{raw}")
    return out


TINY_TRAIN = ["--no-progress", "--no-plot", "--set", "train.epochs=1", "--set", "data.limit=32",
              "--set", "train.n_samples=4", "--set", "train.save_generators=false",
              "--set", "data.n_points=256", "--set", "eval.n=16"]


@settings(FUZZ, max_examples=int(100 * SCALE))
@given(sets=overrides())
def test_fuzz_train_overrides(tiny_fmnist_dir, capsys, sets):
    argv = ["train", "e1-mlp", "--data-dir", str(tiny_fmnist_dir), *TINY_TRAIN]
    for s in sets:
        argv += ["--set", s]
    if not any(s.startswith("preset") for s in sets):
        argv += ["--name", run_name()]
    check_cli(argv, capsys, "train --set")


@pytest.mark.parametrize("sets", [
    ["seed=100000000000000000000000"], ["seed=-1", "data.name=ring8", "model.name=mlp2d"],
    ["eval.seed=100000000000000000000", "eval.every=1"], ["train.threads=100000000000000000000"],
    ["train.n_samples=10000000000000"], ["model.z_dim=10000000000"],
    ["data.name=ring8"], ["model.name=mlp2d"], ["data.name=celeba", "model.name=mlp"],
    ["seed=!!int x"], ["seed=2001-02-30"], ["data.name=!!timestamp x"], ["seed=!!bool maybe"],
    ["data.name=ring8", "model.name=mlp2d", "data.n_points=100000000000"],
    ["eval.n=10000000000000", "eval.every=1"], ["optim.lr=1e300"],
    ["optim.lr=1e300", "loss.name=minimax"],
    ["foo\nbar=1"], ["data.name=ring8\n", "model.name=mlp2d"],
    # an argument with bytes that are not UTF-8 arrives as lone surrogates (surrogateescape)
    ["=\udcff"], ["seed=\udcff"], ["preset.x=\udcff"],
])
def test_train_override_regressions(tiny_fmnist_dir, capsys, sets):
    """Inputs the fuzzer found crashing (tracebacks, half-written runs), pinned."""
    argv = ["train", "e1-mlp", "--data-dir", str(tiny_fmnist_dir), *TINY_TRAIN,
            "--name", run_name()]
    for s in sets:
        argv += ["--set", s]
    check_cli(argv, capsys, "train --set (pinned)")


@pytest.mark.parametrize("sets,line", [
    (["train.drop_last=true"], "fewer than train.n_critic="),
    (["train.n_critic=2"], "fewer than train.n_critic="),
    (["train.batch_size=100", "train.drop_last=true"], "fewer than train.n_critic="),
    (["model.name=dcgan32"], "but data fashion-mnist gives 1x28x28 images"),
    (["model.name=dcgan64"], "but data fashion-mnist gives 1x28x28 images")])
def test_checks_that_once_came_after_the_run_dir_existed(tiny_fmnist_dir, capsys, sets, line):
    """Too few batches, a face model on Fashion-MNIST: refused before the run dir exists."""
    argv = ["train", "e1-mlp", "--data-dir", str(tiny_fmnist_dir), *TINY_TRAIN,
            "--name", run_name()]
    for s in sets:
        argv += ["--set", s]
    before = listing()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and line in err.strip().splitlines()[-1], err
    assert listing() == before


# ----------------------------------------------------------------------------------------------
# 2. Point files: --set data.name=points:FILE


def _fmt_float(draw, clean: bool) -> str:
    if clean:
        return repr(draw(st.floats(-5, 5)))
    v = draw(st.one_of(st.floats(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([1e39, -3.5e38, 1e308, 5e-324])))
    style = draw(st.sampled_from(["repr", "g", "comma", "quoted", "junk"]))
    if style == "g":
        return f"{v:g}"
    if style == "comma":
        return repr(v).replace(".", ",")
    if style == "quoted":
        return f'"{v!r}"'
    if style == "junk":
        return draw(st.text(max_size=4))
    return repr(v)


@st.composite
def point_text(draw) -> bytes:
    """A clean points file (about half the time) or one with a few random defects."""
    sep = draw(st.sampled_from([",", ";", " ", "\t", ", ", "  "]))
    n = draw(st.sampled_from([16, 17, 40, 40, 0, 1, 2, 15]))
    defects = draw(st.sampled_from([0, 0, 0, 1, 2, 5]))
    bad_rows = set(draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=defects)))
    lines = []
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["x,y", "x;y", "x y", "# comment", "", "\ufeffx,y"]
                                          + (["a,b,c", "x", "1,a"] if defects else []))))
    for r in range(n):
        clean = r not in bad_rows
        cols = 2 if clean else draw(st.sampled_from([2, 2, 0, 1, 3]))
        lines.append(sep.join(_fmt_float(draw, clean) for _ in range(cols)))
        if not draw(st.integers(0, 20)):
            lines.append(draw(st.sampled_from(["", "# note", "   "])))
    nl = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = nl.join(lines) + draw(st.sampled_from(["", nl]))
    enc = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "utf-16", "latin-1"]))
    raw = text.encode(enc, errors="replace")
    if defects and not draw(st.integers(0, 3)):
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=8)) + raw[cut:]
    return raw


def _npy_bytes(a: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


@st.composite
def point_npy(draw) -> bytes:
    kind = draw(st.sampled_from(["good", "good", "shape", "dtype", "object", "cut", "garbage"]))
    if kind == "object":
        return _npy_bytes(np.array([[1, "a"]] * 20, dtype=object), allow_pickle=True)
    if kind == "garbage":
        return b"\x93NUMPY" + draw(st.binary(max_size=64))
    if kind == "dtype":
        dtype = draw(st.sampled_from([np.bool_, np.complex64, "U3", "S2", "M8[s]", "m8[s]",
                                      np.float16, np.int8, np.uint64, [("x", "f4"), ("y", "f4")]]))
        return _npy_bytes(np.zeros((draw(st.integers(0, 20)), 2), dtype=dtype))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8]))
    if kind == "good":
        a = draw(hnp.arrays(dtype, (draw(st.integers(16, 40)), 2),
                            elements=st.integers(0, 100) if dtype in (np.int64, np.uint8)
                            else st.floats(-5, 5, width=32)))
    else:
        shape = ((draw(st.integers(0, 40)), 2) if kind == "cut" else
                 draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=20)))
        a = draw(hnp.arrays(dtype, shape))
    raw = _npy_bytes(a if draw(st.booleans()) else np.asfortranarray(a))
    if kind == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    return raw


@st.composite
def point_files(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".csv", ".txt", ".dat", ".npy"] * 3
                                  + [".CSV", ".json", "", ".npz", ".csv.gz"]))
    if suffix.lower() == ".npy" or (suffix in (".npz", "") and draw(st.booleans())):
        raw = draw(point_npy())
    elif draw(st.integers(0, 9)):
        raw = draw(point_text())
    else:
        raw = draw(st.binary(max_size=200))
    return suffix, raw


@settings(FUZZ, max_examples=int(100 * SCALE))
@given(f=point_files())
def test_fuzz_points_files(tmp_path, tiny_fmnist_dir, capsys, f):
    suffix, raw = f
    folder = tmp_path / f"pts{next(_names)}"
    folder.mkdir()
    path = folder / f"p t{suffix}"  # a space in the name, as users' files have
    path.write_bytes(raw)
    argv = ["train", "e1-mlp", *TINY_TRAIN, "--set", f"data.name=points:{path}",
            "--set", "model.name=mlp2d", "--set", "model.g_hidden=[16]",
            "--set", "model.d_hidden=[16]", "--name", run_name()]
    check_cli(argv, capsys, "train points:FILE")


@st.composite
def point_specs(draw) -> str:
    from ganscope.data.points import POINT_SETS, point_set_params

    name = draw(st.sampled_from([*POINT_SETS.names()] * 3 + ["ring9", "Ring8", "", " ring8"]))
    known = list(point_set_params(name)) if name in POINT_SETS else []
    items = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(known + ["bogus", "", "n"]) if known else st.just("radius"))
        value = draw(st.one_of(
            st.floats(allow_nan=True, allow_infinity=True).map(repr),
            st.floats(0.01, 3).map(repr), st.integers(-3, 12).map(str),
            st.sampled_from(["1e300", "-1e300", "1e-300", "1e39", "1e30", "nan", "inf", "",
                             "0x10", "1_0", "½", "1,5", "2 3", "=", "10000000000"])))
        items.append(f"{key}={value}" if draw(st.integers(0, 9)) else key)
    sep = draw(st.sampled_from([",", ",", ", ", ";"]))
    return name + (":" + sep.join(items) if items or draw(st.booleans()) else "")


@settings(FUZZ, max_examples=int(40 * SCALE))
@given(spec=point_specs(), n_points=st.sampled_from(["16", "64", "1", "0", "-5"]))
def test_fuzz_point_specs(tiny_fmnist_dir, capsys, spec, n_points):
    """Built-in point sets with random parameters (``ring8:radius=...``) through the CLI."""
    argv = ["train", "e1-mlp", *TINY_TRAIN, "--set", f"data.name={spec}",
            "--set", f"data.n_points={n_points}", "--set", "model.name=mlp2d",
            "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]",
            "--name", run_name()]
    check_cli(argv, capsys, "train point-set spec")


def test_points_special_paths(tmp_path, capsys):
    (tmp_path / "dir.csv").mkdir()
    for spec in ["points:" + str(tmp_path / "dir.csv"), "points:" + str(tmp_path / "nope.csv"),
                 "points:   ", "points:" + str(tmp_path / "a\nb.csv"), "points:/dev/null",
                 "points:" + str(tmp_path / ("x" * 300 + ".csv"))]:
        check_cli(["train", "e1-mlp", *TINY_TRAIN, "--set", f"data.name={spec}",
                   "--set", "model.name=mlp2d", "--name", run_name()], capsys,
                  "train points:FILE (pinned)")


# ----------------------------------------------------------------------------------------------
# 3. Image arrays: eval --images FILE.npy

IMAGE_DTYPES = [np.uint8, np.int8, np.int16, np.int64, np.uint16, np.uint64, np.float16,
                np.float32, np.float64, np.bool_, np.complex64, np.dtype("M8[D]"),
                np.dtype("m8[s]"), np.dtype("U2"), np.dtype([("a", "u1"), ("b", "f4")])]


@st.composite
def image_arrays(draw) -> np.ndarray:
    kind = draw(st.sampled_from(["fmnist", "fmnist", "channel", "random"]))
    n = draw(st.integers(0, 12))
    if kind == "fmnist":
        shape = (n, 28, 28)
    elif kind == "channel":
        shape = (n, draw(st.sampled_from([1, 1, 3])), 28, 28)
    else:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=30)
                     .filter(lambda s: int(np.prod(s)) <= 20000))
    dtype = draw(st.sampled_from(IMAGE_DTYPES))
    if np.dtype(dtype).kind == "f":
        rng = draw(st.sampled_from(["unit", "tanh", "any"]))
        if rng == "unit":
            return draw(hnp.arrays(dtype, shape, elements=st.floats(0, 1, width=16)))
        if rng == "tanh":
            return draw(hnp.arrays(dtype, shape, elements=st.floats(-1, 1, width=16)))
    if np.dtype(dtype) == np.uint8 and kind != "random":
        return draw(hnp.arrays(dtype, shape, elements=st.integers(0, 255)))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def image_files(draw) -> tuple[str, bytes]:
    how = draw(st.sampled_from(["npy"] * 8 + ["cut", "garbage", "pickle", "npz"]))
    if how == "garbage":
        return ".npy", draw(st.binary(max_size=100))
    if how == "pickle":
        return ".npy", _npy_bytes(np.array([None] * 3, dtype=object), allow_pickle=True)
    a = draw(image_arrays())
    if how == "npz":
        buf = io.BytesIO()
        np.savez(buf, a)
        return draw(st.sampled_from([".npz", ".npy"])), buf.getvalue()
    raw = _npy_bytes(a if draw(st.booleans()) else np.asfortranarray(a))
    if how == "cut":
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    return ".npy", raw


@settings(FUZZ, max_examples=int(80 * SCALE))
@given(f=image_files(), metrics=st.sampled_from(["fid", "kid", "prdc", "classes",
                                                 "fid,kid,prdc,classes"]),
       n=st.sampled_from([None, 10, 12]))
def test_fuzz_eval_images(tmp_path, tiny_fmnist_dir, capsys, f, metrics, n):
    suffix, raw = f
    path = tmp_path / f"images{next(_names)}{suffix}"
    path.write_bytes(raw)
    argv = ["eval", "--images", str(path), "--data-dir", str(tiny_fmnist_dir),
            "--metrics", metrics, "--json"]
    if n is not None:
        argv += ["-n", str(n)]
    check_cli(argv, capsys, "eval --images", creates_run=False)


# ----------------------------------------------------------------------------------------------
# 4. CelebA attribute files: train e6-faces --data-dir DIR

CELEBA_N = 6


def _attr_text(files: list[str], values: np.ndarray) -> str:
    lines = [str(len(files)), " ".join(cb.ATTRIBUTES) + " "]
    lines += [f + " " + " ".join(f"{int(v):2d}" for v in row) for f, row in zip(files, values)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def celeba_images(tmp_path_factory) -> Path:
    """A tiny CelebA image folder (6 small JPEGs); each example links it into its own folder."""
    root = tmp_path_factory.mktemp("celeba-src")
    imgs = root / cb.IMAGE_DIR
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(CELEBA_N):
        Image.fromarray(rng.integers(0, 256, (54, 44, 3), dtype=np.uint8)).save(
            imgs / f"{i + 1:06d}.jpg", quality=90)
    return imgs


def _pristine_attrs() -> list[str]:
    files = [f"{i + 1:06d}.jpg" for i in range(CELEBA_N)]
    v = np.where(np.random.default_rng(1).random((CELEBA_N, 40)) < 0.5, -1, 1)
    return _attr_text(files, v).split("\n")


@st.composite
def attr_files(draw) -> bytes:
    lines = _pristine_attrs()
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["count", "value", "drop_token", "add_token", "names",
                                   "whitespace", "drop_line", "dup_line", "file", "blank"]))
        i = draw(st.integers(0, len(lines) - 1))
        if op == "count":
            lines[0] = draw(st.sampled_from(["0", "-1", "5", "7", "6.0", " 6 ", "+6", "1_0",
                                             "six", "", "99999999999999999999", "6 40"]))
        elif op == "value" and i >= 2 and lines[i].split():
            toks = lines[i].split()
            j = draw(st.integers(1, max(1, len(toks) - 1)))
            toks[j % len(toks)] = draw(st.sampled_from(
                ["0", "2", "+1", "1.0", "-1.0", "--1", "01", "nan", "yes", "-", "\u22121",
                 "\x00", "1e0", "-0"]))
            lines[i] = " ".join(toks)
        elif op == "drop_token" and lines[i].split():
            toks = lines[i].split()
            del toks[draw(st.integers(0, len(toks) - 1))]
            lines[i] = " ".join(toks)
        elif op == "add_token":
            lines[i] += " " + draw(st.sampled_from(["1", "-1", "x", "Extra_Attr"]))
        elif op == "names":
            lines[1] = draw(st.sampled_from(
                ["", " ".join(cb.ATTRIBUTES[:39]), " ".join(cb.ATTRIBUTES) + " Extra",
                 " ".join(cb.ATTRIBUTES[::-1]), " ".join(["Male"] * 40), "5_o_Clock_Shadow"]))
        elif op == "whitespace":
            lines[i] = draw(st.sampled_from(["\t", "  ", "\r", "\x0b", "\x0c"])).join(
                lines[i].split(" ")) + draw(st.sampled_from(["", " ", "\t", "\r"]))
        elif op == "drop_line":
            del lines[i]
        elif op == "dup_line":
            lines.insert(i, lines[i])
        elif op == "file" and i >= 2 and lines[i].split():
            toks = lines[i].split()
            toks[0] = draw(st.sampled_from(["999999.jpg", "../000001.jpg", ".", "..",
                                            cb.IMAGE_DIR, "000001.JPG", "/etc/passwd",
                                            "000001.jpg\x00"]))
            lines[i] = " ".join(toks)
        elif op == "blank":
            lines.insert(i, draw(st.sampled_from(["", "   ", "\t"])))
    raw = "\n".join(lines).encode("utf-8")
    tail = draw(st.sampled_from(["none"] * 6 + ["truncate", "garbage", "utf16", "empty"]))
    if tail == "truncate":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif tail == "garbage":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=16)) + raw[at:]
    elif tail == "utf16":
        raw = raw.decode("utf-8").encode("utf-16")
    elif tail == "empty":
        raw = b""
    return raw


@settings(FUZZ, max_examples=int(30 * SCALE))
@given(raw=attr_files(), split=st.sampled_from(["train", "train", "all", "valid"]),
       partition=st.sampled_from([None, None, "ok", "bad"]))
def test_fuzz_celeba_attributes(tmp_path, celeba_images, capsys, raw, split, partition):
    d = tmp_path / f"celeba{next(_names)}"
    d.mkdir()
    (d / cb.IMAGE_DIR).symlink_to(celeba_images, target_is_directory=True)
    (d / cb.ATTR_FILE).write_bytes(raw)
    if partition:
        text = "".join(f"{i + 1:06d}.jpg {i % 3}\n" for i in range(CELEBA_N))
        (d / cb.PARTITION_FILE).write_text(text if partition == "ok" else text[:-9] + "x 7\n")
    argv = ["train", "e6-faces", "--data-dir", str(d), "--no-progress", "--no-plot",
            "--set", "train.epochs=1", "--set", "train.n_samples=4",
            "--set", "train.save_generators=false", "--set", f"data.split={split}",
            "--set", "train.batch_size=4", "--set", "model.g_hidden=[16, 8, 4]",
            "--set", "model.d_hidden=[4, 8, 16]", "--name", run_name()]
    check_cli(argv, capsys, "train e6-faces (CelebA)")


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_a_fmnist_model_on_celeba_is_refused_before_the_run_dir(tmp_path, celeba_images, capsys,
                                                                 model):
    d = tmp_path / "celeba"
    d.mkdir()
    (d / cb.IMAGE_DIR).symlink_to(celeba_images, target_is_directory=True)
    (d / cb.ATTR_FILE).write_text("\n".join(_pristine_attrs()))
    check_cli(["train", "e6-faces", "--data-dir", str(d), "--no-progress", "--no-plot",
               "--set", "train.epochs=1", "--set", f"model.name={model}",
               "--set", "model.init=default", "--set", "model.g_hidden=[]",
               "--set", "model.d_hidden=[]", "--set", "train.batch_size=4",
               "--name", run_name()], capsys, "train e6-faces (model mismatch)")


# ----------------------------------------------------------------------------------------------
# Real processes for a few representative cases


def test_real_processes(tmp_path, tiny_fmnist_dir):
    """The same contract through ``python -m ganscope``: one ``error:`` line, exit 2. Three
    cases, one per stage a real process adds (argument parsing, an evaluation's data, a
    domain's loader); every case is also run in-process above, and each process costs ~5 s."""
    np.save(tmp_path / "imgs.npy", np.full((3, 28, 28), np.inf, np.float32))
    d = tmp_path / "celeba"
    (d / cb.IMAGE_DIR).mkdir(parents=True)
    (d / cb.ATTR_FILE).write_text("3\n" + " ".join(cb.ATTRIBUTES) + "\n000001.jpg 1 -1\n")
    env = {**os.environ, "GANSCOPE_RUNS": str(tmp_path / "runs"), "PYTHONWARNINGS": "ignore"}
    tiny = ["--data-dir", str(tiny_fmnist_dir), *TINY_TRAIN]
    cases = {
        "bad --set": ["train", "e1-mlp", *tiny, "--set", "seed=100000000000000000000000"],
        "images": ["eval", "--images", str(tmp_path / "imgs.npy"), "--data-dir",
                   str(tiny_fmnist_dir)],
        "celeba": ["train", "e6-faces", "--data-dir", str(d), "--set", "train.epochs=1"],
    }
    procs = {k: subprocess.Popen([sys.executable, "-m", "ganscope", *argv], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, argv in cases.items()}
    for k, p in procs.items():
        out, err = p.communicate(timeout=120)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert p.returncode == 2, (k, p.returncode, err)
        assert "Traceback" not in err, (k, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (k, err)
        COUNTS["python -m ganscope"]["error"] += 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
