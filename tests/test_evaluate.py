"""Evaluation plumbing: cached reference statistics, provenance, run records, training-time eval.

The metric math is tested in test_metrics_math.py and the extractor in test_extractor.py; here
the shipped extractor runs for real on tiny synthetic data in the real IDX format.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from ganscope.config import EvalConfig, RunConfig, apply_overrides
from ganscope.domains.fashion_mnist import reference_features
from ganscope.domains.fashion_mnist.extractor import EXTRACTOR_NAME, WEIGHTS_SHA256
from ganscope.errors import ConfigError, RunError
from ganscope.metrics.evaluate import (
    STATS_FORMAT,
    evaluate_images,
    stats_cache_dir,
)
from ganscope.training.evaluation import best_by_fid, evaluate_run, select_checkpoints
from ganscope.training.loop import train
from ganscope.training.run import Run, load_checkpoint

SMALL = EvalConfig(n=64, seed=3)


def make_run(tmp_path, data_dir, name, *overrides):
    cfg = apply_overrides(RunConfig(), [
        "train.epochs=2", "train.batch_size=32", "train.n_samples=16", f"data.dir={data_dir}",
        "eval.n=64", *overrides])
    return Run.create(cfg.validate(), tmp_path / "runs", name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_fmnist_dir):
    """A 2-epoch E1 run on tiny data (256 train / 64 test images), evaluated nowhere yet."""
    import ganscope.data.fashion_mnist as fm

    root = tmp_path_factory.mktemp("eval")
    data = tiny_fmnist_dir
    mp = pytest.MonkeyPatch()
    mp.setenv("GANSCOPE_CACHE", str(root / "cache"))
    mp.setattr(fm, "DEBIAN_DIR", root / "none")
    try:
        run = train(make_run(root, data, "tiny"), progress=False)
    finally:
        mp.undo()
    return run, data


def test_reference_is_cached_and_keyed_by_the_image_bytes(tiny_fmnist_dir, tmp_path, capsys,
                                                          make_fmnist):
    first = reference_features("test", 10000, str(tiny_fmnist_dir))
    assert first.info["cache_hit"] is False
    assert first.info["n"] == 64 and first.info["of"] == 64  # n larger than the split: all of it
    files = list(stats_cache_dir().glob("*.npz"))
    assert [str(f) for f in files] == [first.info["cache"]]
    assert EXTRACTOR_NAME in files[0].name and not list(stats_cache_dir().glob(".*tmp"))
    again = reference_features("test", 10000, str(tiny_fmnist_dir))
    assert again.info["cache_hit"] is True
    np.testing.assert_array_equal(again.features.features, first.features.features)
    np.testing.assert_array_equal(again.features.stats[1], first.features.stats[1])
    with np.load(files[0]) as z:
        assert str(z["format"]) == STATS_FORMAT
    # A subset is a fixed selection: same bytes, same cache entry; different n, different entry.
    sub1 = reference_features("test", 32, str(tiny_fmnist_dir))
    sub2 = reference_features("test", 32, str(tiny_fmnist_dir))
    assert sub1.info["n"] == 32 and sub2.info["cache_hit"]
    assert sub1.info["images_sha256"] == sub2.info["images_sha256"] != first.info["images_sha256"]
    # Other data content under the same names: a new key, never the stale statistics.
    other = make_fmnist(tmp_path / "other", seed=5)
    changed = reference_features("test", 10000, str(other))
    assert changed.info["cache_hit"] is False and changed.info["cache"] != first.info["cache"]
    # A damaged cache file is rebuilt, with a warning, not an error.
    capsys.readouterr()
    files[0].write_bytes(b"garbage")
    rebuilt = reference_features("test", 10000, str(tiny_fmnist_dir))
    assert rebuilt.info["cache_hit"] is False
    assert "ignoring damaged statistics cache" in capsys.readouterr().err
    np.testing.assert_array_equal(rebuilt.features.features, first.features.features)
    assert reference_features("test", 10000, str(tiny_fmnist_dir)).info["cache_hit"]


def test_evaluate_images_records_provenance(tiny_fmnist_dir):
    ref = reference_features("test", 64, str(tiny_fmnist_dir))
    imgs = torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))
    rec = evaluate_images(imgs, ref, seed=1)
    assert rec["extractor"] == {"name": EXTRACTOR_NAME, "sha256": WEIGHTS_SHA256}
    assert rec["reference"]["split"] == "test" and rec["reference"]["n"] == 64
    assert (rec["n_real"], rec["n_fake"], rec["seed"]) == (64, 40, 1)
    m = rec["metrics"]
    assert {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage",
            "classes_covered", "class_kl", "confidence", "class_hist"} <= m.keys()
    assert m["fid"] > 0 and 0 <= m["precision"] <= 1 and 1 <= m["classes_covered"] <= 10
    json.dumps(rec)  # a record must be plain JSON
    # The same images give the same numbers (4-D input is accepted too).
    assert evaluate_images(imgs[:, None], ref, seed=1)["metrics"] == m
    # Real test images against themselves: the floor.
    same = evaluate_images(ref_images(tiny_fmnist_dir), ref, metrics=["fid", "prdc"])
    assert abs(same["metrics"]["fid"]) < 1e-6
    assert same["metrics"]["precision"] == same["metrics"]["recall"] == 1.0


def ref_images(d):
    from ganscope.data.fashion_mnist import load_fashion_mnist

    return load_fashion_mnist("test", d).images


@pytest.mark.parametrize("images,line", [
    (torch.zeros(5, 32, 32, dtype=torch.uint8),
     "x has images of shape (32, 32): the Fashion-MNIST extractor measures 1x28x28 grey images "
     "only"),
    (torch.zeros(5, 3, 28, 28, dtype=torch.uint8),
     "x has images of shape (3, 28, 28): the Fashion-MNIST extractor measures 1x28x28 grey "
     "images only"),
    (torch.zeros(5, 28, 28), "x holds torch.float32 images: convert them to uint8 0..255 first"),
    (torch.zeros(3, 28, 28, dtype=torch.uint8),
     "cannot score x: PRDC with k=5 needs more than 5 samples on each side, got 64 real and 3 fake"),
])
def test_unscorable_image_sets_are_one_line(tiny_fmnist_dir, images, line):
    ref = reference_features("test", 64, str(tiny_fmnist_dir))
    with pytest.raises(ConfigError) as e:
        evaluate_images(images, ref, what="x")
    assert str(e.value) == line


def test_evaluate_run_all_checkpoints_appends_records_and_best(trained):
    run, _ = trained
    recs = evaluate_run(run, "all", SMALL)
    assert [r["epoch"] for r in recs] == [1, 2]
    on_disk = run.read_metrics()[-2:]
    assert on_disk == recs
    for r in recs:
        ck = run.path / r["checkpoint"]
        assert r["checkpoint"] == f"checkpoints/G-epoch-{r['epoch']:04d}.pt"
        assert r["checkpoint_sha256"] == hashlib.sha256(ck.read_bytes()).hexdigest()
        assert r["run"] == "tiny" and r["source"] == "eval" and r["n_fake"] == 64
    best = min(recs, key=lambda r: r["metrics"]["fid"])
    assert run.meta()["best"] == {"epoch": best["epoch"], "fid": best["metrics"]["fid"],
                                  "checkpoint": best["checkpoint"]}
    # Deterministic: evaluating again gives the same numbers.
    n_before = len(run.read_metrics())
    again = evaluate_run(run, 2, SMALL, save=False)
    assert again[0]["metrics"] == recs[1]["metrics"]
    assert len(run.read_metrics()) == n_before  # --no-save writes nothing


def test_select_checkpoints(trained, tmp_path):
    run, _ = trained
    assert [e for e, _ in select_checkpoints(run, "last")] == [2]
    assert [e for e, _ in select_checkpoints(run, "2")] == [2]
    with pytest.raises(RunError) as e:
        select_checkpoints(run, "7")
    assert str(e.value) == "run 'tiny' has no generator for epoch 7: available 1, 2"
    with pytest.raises(ConfigError) as e:
        select_checkpoints(run, "best")
    assert str(e.value) == "bad --checkpoint 'best': use last, all or an epoch number"
    # Without per-epoch generators, 'last' is last.pt and 'all' says why it cannot.
    bare = Run(tmp_path / "bare")
    shutil.copytree(run.path, bare.path)
    for p in bare.checkpoints.glob("G-epoch-*.pt"):
        p.unlink()
    assert select_checkpoints(bare, "last") == [(2, bare.last_checkpoint)]
    with pytest.raises(RunError, match="kept no per-epoch generators"):
        select_checkpoints(bare, "all")


def test_training_eval_equals_offline_eval_and_does_not_change_training(tmp_path,
                                                                        tiny_fmnist_dir):
    with_eval = train(make_run(tmp_path, tiny_fmnist_dir, "e", "eval.every=1", "eval.seed=3"),
                      progress=False)
    without = train(make_run(tmp_path, tiny_fmnist_dir, "n"), progress=False)
    a, b = load_checkpoint(with_eval.last_checkpoint), load_checkpoint(without.last_checkpoint)
    for k in a["G"]:
        assert torch.equal(a["G"][k], b["G"][k]), k
    recs = with_eval.read_metrics()
    assert [(r["epoch"], r["source"]) for r in recs] == [(1, "train"), (2, "train")]
    offline = evaluate_run(without, "all", EvalConfig(n=64, seed=3), save=False)
    assert [r["metrics"] for r in offline] == [r["metrics"] for r in recs]
    assert with_eval.meta()["best"]["epoch"] in (1, 2)


def test_training_eval_equals_offline_eval_for_a_channels_last_conv_net(tmp_path,
                                                                        tiny_fmnist_dir):
    """During training G is the live NHWC (channels_last) net; `ganscope eval` loads the
    checkpoint in the layout the run trained in, so both take one code path and agree exactly.
    (An NCHW copy would not: on an Intel Xeon, 2 of 50,176 pixels moved by one uint8 level.)"""
    from ganscope.training.run import load_generator

    run = train(make_run(tmp_path, tiny_fmnist_dir, "cnn", "model.name=tiny-cnn",
                         "train.channels_last=true", "eval.every=1", "eval.seed=3"),
                progress=False)
    assert run.meta()["execution"]["channels_last"] is True
    recs = run.read_metrics()
    assert [(r["epoch"], r["source"]) for r in recs] == [(1, "train"), (2, "train")]
    offline = evaluate_run(run, "all", EvalConfig(n=64, seed=3), save=False)
    assert [r["epoch"] for r in offline] == [1, 2]
    assert [r["metrics"] for r in offline] == [r["metrics"] for r in recs]
    convs = [p for p in load_generator(run, 1).parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


def test_eval_every_on_a_non_fashion_mnist_run_fails_before_training(tmp_path, monkeypatch):
    from ganscope.domains import DOMAINS
    from ganscope.domains.fashion_mnist import FashionMNIST

    class Unscored(FashionMNIST):  # a domain with no shipped scorer
        name, offline_eval, trains_with_eval = "faces-test", False, False

    cfg = apply_overrides(RunConfig(), ["eval.every=1", "train.epochs=1"])
    cfg.data.name = "faces-test"
    monkeypatch.setitem(DOMAINS._items, "faces-test", Unscored())
    run = Run.create(cfg, tmp_path / "runs", "f")
    with pytest.raises(ConfigError) as e:
        train(run, progress=False)
    assert str(e.value) == ("run 'f' trains on faces-test: `ganscope eval` measures "
                            "CelebA, Fashion-MNIST and image folder runs only, each in its "
                            "own domain's feature extractor")
    assert not run.events_path.exists()


def test_best_by_fid_only_compares_comparable_records():
    def rec(epoch, fid, n):
        return {"epoch": epoch, "checkpoint": f"c{epoch}", "metrics": {"fid": fid}, "n_fake": n,
                "extractor": {"name": "x", "sha256": "y"},
                "reference": {"images_sha256": "r"}}

    recs = [rec(1, 5.0, 1000), rec(2, 9.0, 10000), rec(3, 7.0, 10000)]
    assert best_by_fid(recs)["epoch"] == 3  # epoch 1's FID came from another n
    assert best_by_fid([]) is None
    assert best_by_fid([rec(1, float("nan"), 10)]) is None


@pytest.mark.parametrize("bad,line", [
    ("eval.every=-1", "bad config: eval.every must be >= 0 (0 turns evaluation off)"),
    ("eval.n=5", "bad config: eval.n must be at least 10"),
    ("eval.reference=val", "bad config: eval.reference must be 'train' or 'test'"),
    ("eval.metrics=fid,nope",
     "unknown metric 'nope': choose one of class_match, classes, fid, intra_fid, kid, "
     "prdc"),
    ("eval.metrics=' , '", "bad config: eval.metrics must name at least one metric"),
])
def test_eval_config_values_are_checked(bad, line):
    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), [bad]).validate()
    assert str(e.value) == line
