"""The shipped Fashion-MNIST feature extractor: integrity checks, extraction, reproducible training."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ganscope.data.fashion_mnist import OFFICIAL_PAYLOAD_SHA256, load_fashion_mnist
from ganscope.domains.fashion_mnist import extractor as ex
from ganscope.domains.fashion_mnist.train_extractor import main as train_main
from ganscope.domains.fashion_mnist.train_extractor import train_classifier
from ganscope.errors import RunError


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (32, 28, 28), generator=g, dtype=torch.uint8)


def test_shipped_weights_load_and_match_hash():
    assert ex.WEIGHTS_FILE.is_file()
    assert ex.WEIGHTS_FILE.stat().st_size < 2_000_000
    assert ex.file_sha256(ex.WEIGHTS_FILE) == ex.WEIGHTS_SHA256
    e = ex.load_extractor()
    assert e.name == "fmnist-cnn-v1" == ex.EXTRACTOR_NAME
    assert e.sha256 == ex.WEIGHTS_SHA256
    assert e.feature_dim == 128
    assert not e.model.training
    assert ex.load_extractor() is e  # cached per process


def test_recipe_ships_beside_weights():
    r = ex.recipe()
    assert r["name"] == ex.EXTRACTOR_NAME
    assert r["sha256"] == ex.WEIGHTS_SHA256
    assert r["size_bytes"] == ex.WEIGHTS_FILE.stat().st_size
    assert r["test_accuracy"] >= 0.92
    assert r["n_test"] == 10000 and r["recipe"]["n_train"] == 60000
    assert r["data"]["train"]["verified"] and r["data"]["test"]["verified"]
    assert len(r["per_class_test_accuracy"]) == 10


def test_corrupted_weights_raise_run_error(tmp_path, monkeypatch):
    bad = tmp_path / "fmnist-cnn-v1.pt"
    data = bytearray(ex.WEIGHTS_FILE.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(ex, "WEIGHTS_FILE", bad)
    with pytest.raises(RunError, match="reinstall") as info:
        ex.load_extractor()
    msg = str(info.value)
    assert "damaged" in msg and str(bad) in msg and "\n" not in msg
    assert ex.WEIGHTS_SHA256[:12] in msg


def test_missing_weights_raise_run_error(tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "WEIGHTS_FILE", tmp_path / "nope.pt")
    with pytest.raises(RunError, match="reinstall"):
        ex.load_extractor()


def test_intact_copy_loads(tmp_path, monkeypatch):
    good = tmp_path / "copy.pt"
    shutil.copyfile(ex.WEIGHTS_FILE, good)
    monkeypatch.setattr(ex, "WEIGHTS_FILE", good)
    assert ex.load_extractor().sha256 == ex.WEIGHTS_SHA256


def test_extract_shapes_dtypes_and_probabilities(images):
    feats, probs = ex.load_extractor().extract(images)
    assert feats.shape == (32, 128) and feats.dtype == np.float32
    assert probs.shape == (32, 10) and probs.dtype == np.float32
    assert np.isfinite(feats).all() and (feats >= 0).all()  # post-ReLU features
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    # (N, 1, 28, 28) is the same input as (N, 28, 28)
    f4, p4 = ex.load_extractor().extract(images.unsqueeze(1))
    np.testing.assert_array_equal(f4, feats)
    np.testing.assert_array_equal(p4, probs)


def test_extract_is_deterministic_and_batch_size_independent(images):
    e = ex.load_extractor()
    f1, p1 = e.extract(images)
    f2, p2 = e.extract(images.clone())
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(p1, p2)
    f7, p7 = e.extract(images, batch_size=7, progress=True)
    np.testing.assert_allclose(f7, f1, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(p7, p1, atol=1e-5)


def test_extract_empty_input():
    feats, probs = ex.load_extractor().extract(torch.zeros((0, 28, 28), dtype=torch.uint8))
    assert feats.shape == (0, 128) and probs.shape == (0, 10)


@pytest.mark.parametrize("bad", [
    torch.rand(4, 28, 28),                          # float, even in [0, 1]
    torch.zeros(4, 28, 28, dtype=torch.int64),
    torch.zeros(4, 32, 32, dtype=torch.uint8),
    torch.zeros(4, 3, 28, 28, dtype=torch.uint8),
    torch.zeros(28, 28, dtype=torch.uint8),
])
def test_extract_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        ex.load_extractor().extract(bad)


def test_extract_rejects_numpy():
    with pytest.raises(ValueError):
        ex.load_extractor().extract(np.zeros((2, 28, 28), dtype=np.uint8))


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_classifier_is_reproducible(tiny_fmnist_dir):
    train = load_fashion_mnist("train", tiny_fmnist_dir, limit=128)  # 2 steps: keep it fast
    test = load_fashion_mnist("test", tiny_fmnist_dir)
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    rng_before = torch.get_rng_state()

    def run(seed: int):
        return train_classifier(train.images, train.labels, test.images, test.labels,
                                epochs=1, seed=seed, batch_size=64)

    m1, r1 = run(0)
    m2, r2 = run(0)
    m3, _ = run(1)
    s1, s2, s3 = _state(m1), _state(m2), _state(m3)
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1 if s1[k].is_floating_point())
    assert r1["test_accuracy"] == r2["test_accuracy"]
    assert r1["history"][0]["train_loss"] == r2["history"][0]["train_loss"]
    assert r1["recipe"]["seed"] == 0 and r1["recipe"]["n_train"] == 128
    assert r1["n_test"] == 64 and len(r1["per_class_test_accuracy"]) == 10
    assert not m1.training
    # the process is left as it was found
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_training_script_writes_weights_and_recipe(tiny_fmnist_dir, tmp_path):
    out = tmp_path / "weights"
    assert train_main(["--data-dir", str(tiny_fmnist_dir), "--out", str(out), "--epochs", "1",
                       "--limit", "128"]) == 0
    pt, js = out / "fmnist-cnn-v1.pt", out / "fmnist-cnn-v1.json"
    report = json.loads(js.read_text())
    assert report["sha256"] == ex.file_sha256(pt)
    assert report["recipe"]["epochs"] == 1 and report["recipe"]["n_train"] == 128
    assert report["data"]["train"]["verified"] is False  # synthetic files are not the originals
    assert report["data"]["train"]["payload_sha256"] == {}
    model = ex.FMNISTClassifier()
    model.load_state_dict(torch.load(pt, weights_only=True))


def test_training_script_reports_missing_data(tmp_path, capsys):
    assert train_main(["--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err


@pytest.mark.realdata
def test_shipped_extractor_accuracy_on_real_test_split(real_fmnist):
    test = load_fashion_mnist("test", real_fmnist)
    assert test.source["verified"] and len(test) == 10000
    _, probs = ex.load_extractor().extract(test.images)
    acc = float((probs.argmax(1) == test.labels.numpy()).mean())
    r = ex.recipe()
    assert acc >= 0.92
    assert abs(acc - r["test_accuracy"]) <= 1e-4
    assert r["sha256"] == ex.WEIGHTS_SHA256
    assert r["data"]["test"]["payload_sha256"] == {
        k: v for k, v in OFFICIAL_PAYLOAD_SHA256.items() if k.startswith("t10k")
    }
