"""Logging sinks (``--log tensorboard,wandb``): what the dashboards get is what the run records.

Every scalar TensorBoard holds is read back and compared with events.jsonl (same steps, values
equal to float32 rounding) and metrics.jsonl; the sample grids are there per epoch; W&B writes
an offline run whose history holds the same numbers; a resumed run continues both without a
duplicate step; a missing extra is one error line before any run directory exists.
"""

from __future__ import annotations

import io
import json
import re
import struct
import sys

import numpy as np
import pytest
from PIL import Image

import ganscope.data.fashion_mnist as fm
from ganscope.cli import main
from ganscope.config import RunConfig, apply_overrides, from_dict, load_config, save_yaml
from ganscope.errors import ConfigError, TrainingInterrupted
from ganscope.training.loop import EVENT_KEYS, train
from ganscope.training.run import Run

STEPS_PER_EPOCH = 4  # 256 tiny training images / batch 64
SMALL = ["train.n_samples=16", "eval.n=64"]


def _wandb_env(mp: pytest.MonkeyPatch, root) -> None:
    """W&B offline, and everything it writes (config, cache, artifacts) under ``root``."""
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    for var, sub in (("WANDB_DIR", "wandb"), ("WANDB_CONFIG_DIR", "wandb-config"),
                     ("WANDB_CACHE_DIR", "wandb-cache"), ("WANDB_DATA_DIR", "wandb-data")):
        mp.setenv(var, str(root / sub))
    mp.delenv("WANDB_API_KEY", raising=False)
    mp.delenv("WANDB_PROJECT", raising=False)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _tb(run: Run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run.path / "tb"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return ea


def _tb_scalars(ea, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def _assert_tb_matches_events(ea, run: Run) -> None:
    """Every train/ scalar at exactly the steps of events.jsonl, with its float32 value."""
    events = run.read_events()
    for key in EVENT_KEYS:
        got = _tb_scalars(ea, f"train/{key}")
        assert [s for s, _ in got] == [e["step"] for e in events], key
        np.testing.assert_array_equal(np.float32([v for _, v in got]),
                                      np.float32([e[key] for e in events]), err_msg=key)


@pytest.fixture(scope="module")
def logged(tmp_path_factory, tiny_fmnist_dir):
    """A 2-epoch E1 run, evaluated every epoch, logged to TensorBoard and offline W&B."""
    root = tmp_path_factory.mktemp("sinks")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANSCOPE_CACHE", str(root / "cache"))
        mp.setattr(fm, "DEBIAN_DIR", root / "none")
        _wandb_env(mp, root)
        rc = main(["train", "e1-mlp", "--data-dir", str(tiny_fmnist_dir), "--set",
                   "train.epochs=2", *[a for s in SMALL for a in ("--set", s)], "--eval-every",
                   "1", "--log", "tensorboard,wandb", "--no-progress", "--no-plot",
                   "--runs-dir", str(root / "runs"), "--name", "logged"])
    assert rc == 0
    return Run(root / "runs" / "logged")


def test_tensorboard_holds_every_event_metric_and_grid(logged):
    ea = _tb(logged)
    _assert_tb_matches_events(ea, logged)
    assert len(logged.read_events()) == 2 * STEPS_PER_EPOCH
    # evaluation metrics: every number of every metrics.jsonl record, at its epoch's last step
    records = logged.read_metrics()
    assert [r["epoch"] for r in records] == [1, 2]
    checked = 0
    for r in records:
        step = r["epoch"] * STEPS_PER_EPOCH
        for name, v in r["metrics"].items():
            if isinstance(v, list):
                continue  # the class histogram: not a scalar
            got = dict(_tb_scalars(ea, f"eval/{name}"))
            assert got[step] == pytest.approx(float(np.float32(v)), rel=1e-6, abs=1e-30), name
            checked += 1
    assert checked >= 2 * 8  # fid, kid, precision, recall, density, coverage, classes, ...
    assert {t for t in ea.Tags()["scalars"] if t.startswith("eval/")} == {
        f"eval/{k}" for k, v in records[0]["metrics"].items() if not isinstance(v, list)}
    # the sample grid of every epoch, pixel for pixel
    images = ea.Images("samples")
    assert [im.step for im in images] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    for epoch, im in enumerate(images, 1):
        shown = np.asarray(Image.open(io.BytesIO(im.encoded_image_string)).convert("L"))
        saved = np.asarray(Image.open(logged.sample_grid(epoch)).convert("L"))
        np.testing.assert_array_equal(shown, saved)
    # the setting is part of the run's saved config
    assert logged.config().log.sinks == ["tensorboard", "wandb"]


def _wandb_records(path):
    """The records of a .wandb file (W&B's leveldb-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if data[:4] != b":W&B":
        pytest.skip("this wandb version writes another .wandb format")
    pos, buf, block = 7, b"", 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 2):  # FULL, FIRST
            buf = chunk
        elif kind in (3, 4):  # MIDDLE, LAST
            buf += chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            yield rec


def _wandb_history(run_dir) -> dict[int, dict]:
    hist: dict[int, dict] = {}
    files = list(run_dir.glob("run-*.wandb"))  # run-<id>.wandb (a same-second restart: -1)
    assert len(files) == 1, files
    for rec in _wandb_records(files[0]):
        if rec.WhichOneof("record_type") == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                   for i in rec.history.item}
            hist.setdefault(row["_step"], {}).update(row)
    return hist


def test_wandb_writes_an_offline_run_with_the_same_numbers(logged):
    meta = logged.meta()["wandb"]
    assert meta["mode"] == "offline" and meta["project"] == "ganscope"
    (run_dir,) = (logged.path / "wandb").glob("offline-run-*")
    assert run_dir.name.endswith("-" + meta["id"])
    assert (run_dir / f"run-{meta['id']}.wandb").is_file()
    hist = _wandb_history(run_dir)
    events = logged.read_events()
    assert sorted(hist) == [e["step"] for e in events]
    for e in events:
        for key in EVENT_KEYS:
            assert np.float32(hist[e["step"]][f"train/{key}"]) == np.float32(e[key])
    for r in logged.read_metrics():
        row = hist[r["epoch"] * STEPS_PER_EPOCH]
        assert row["eval/fid"] == pytest.approx(r["metrics"]["fid"], rel=1e-12)
        assert row["samples/_type"] == "image-file"
        assert (run_dir / "files" / row["samples/path"]).is_file()


def test_missing_extra_is_one_line_before_any_run_exists(capsys, tmp_path, tiny_fmnist_dir,
                                                       monkeypatch):
    base = ["train", "e1-mlp", "--data-dir", str(tiny_fmnist_dir), "--no-progress",
            "--runs-dir", str(tmp_path / "runs")]
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    rc, out, err = _cli(capsys, *base, "--log", "tensorboard")
    assert (rc, out) == (2, "")
    assert err == ("error: --log tensorboard needs the tensorboard package: "
                   "pip install 'ganscope[tensorboard]'\n")
    monkeypatch.setitem(sys.modules, "wandb", None)
    rc, _, err = _cli(capsys, *base, "--set", "log.sinks=[wandb]")
    assert rc == 2
    assert err == "error: --log wandb needs the wandb package: pip install 'ganscope[wandb]'\n"
    assert not (tmp_path / "runs").exists()


def test_log_sinks_config_field(capsys, tmp_path):
    cfg = apply_overrides(load_config("e1-mlp"), ["log.sinks=[tensorboard]"]).validate()
    assert cfg.log.sinks == ["tensorboard"]
    assert from_dict(yaml_round_trip(cfg)).log.sinks == ["tensorboard"]
    assert apply_overrides(RunConfig(), ["log.sinks=tensorboard,wandb"]).log.sinks == [
        "tensorboard", "wandb"]
    assert RunConfig().log.sinks == []
    with pytest.raises(ConfigError, match=r"bad value for log.sinks: expected a list of "
                                          r"strings, got 3"):
        apply_overrides(RunConfig(), ["log.sinks=3"])
    rc, _, err = _cli(capsys, "train", "e1-mlp", "--log", "tensorboard,mlflow",
                      "--runs-dir", str(tmp_path / "runs"))
    assert rc == 2
    assert err == ("error: bad config: unknown log sink 'mlflow' in log.sinks: choose from "
                   "tensorboard, wandb (comma-separated), or none\n")


def yaml_round_trip(cfg: RunConfig) -> dict:
    import yaml

    return yaml.safe_load(save_yaml(cfg))


def test_resume_continues_both_sinks_without_duplicate_steps(capsys, tmp_path, tiny_fmnist_dir,
                                                            monkeypatch):
    _wandb_env(monkeypatch, tmp_path)
    cfg = apply_overrides(RunConfig(), [
        "train.epochs=3", f"data.dir={tiny_fmnist_dir}", "log.sinks=[tensorboard,wandb]",
        *SMALL]).validate()
    run = Run.create(cfg, tmp_path / "runs", "r")
    with pytest.raises(TrainingInterrupted):  # Ctrl-C in epoch 2: checkpoint at step 6
        train(run, progress=False, should_stop=lambda step: step == 6)
    ea = _tb(run)
    assert [s for s, _ in _tb_scalars(ea, "train/loss_d")] == [1, 2, 3, 4, 5, 6]
    wandb_id = run.meta()["wandb"]["id"]
    # What a trainer killed after its checkpoint leaves: TensorBoard steps past it that the
    # resumed run logs again. purge_step hides them.
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run.path / "tb")) as w:
        for step in (7, 8):
            w.add_scalar("train/loss_d", -1.0, step)
    rc, _, err = _cli(capsys, "train", "--resume", "r", "--runs-dir", str(tmp_path / "runs"),
                      "--no-progress", "--no-plot")
    assert rc == 0, err
    assert len(run.read_events()) == 3 * STEPS_PER_EPOCH
    ea = _tb(run)
    _assert_tb_matches_events(ea, run)  # steps 1..12 once each, the new values at 7 and 8
    assert [im.step for im in ea.Images("samples")] == [4, 8, 12]
    # W&B: the same run id, a second offline folder for it; `wandb sync` joins them
    dirs = sorted((run.path / "wandb").glob("offline-run-*"))
    # (two starts within one second get a "-1" suffix from W&B)
    assert len(dirs) == 2
    assert all(re.search(rf"-{wandb_id}(-\d+)?$", d.name) for d in dirs), dirs
    assert run.meta()["wandb"]["id"] == wandb_id
    assert sorted(_wandb_history(dirs[1])) == list(range(7, 13))
    # log.sinks may change on --resume (how a run is watched, not what it trains)
    rc, _, err = _cli(capsys, "train", "--resume", "r", "--runs-dir", str(tmp_path / "runs"),
                      "--set", "train.epochs=4", "--log", "none", "--no-progress", "--no-plot")
    assert rc == 0, err
    assert run.config().log.sinks == []
    assert max(s for s, _ in _tb_scalars(_tb(run), "train/loss_d")) == 12
    assert len(run.read_events()) == 4 * STEPS_PER_EPOCH
