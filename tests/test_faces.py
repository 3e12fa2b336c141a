"""The shipped CelebA attribute classifier: integrity checks (hash, card, loading errors), the
scorer's shape / columns / range, reproducible training, and (real data) the card's held-out
accuracy re-measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganscope.domains.faces import attributes as fa
from ganscope.domains.faces.train_attributes import load_split, train_classifier
from ganscope.domains.faces.train_attributes import main as train_main
from ganscope.domains.faces.yaw import yaw
from ganscope.errors import RunError
from ganscope.io import file_sha256

REAL = Path("/work/shared/data/celeba-10k")
REQUIRED = ("Male", "Smiling", "Young", "Eyeglasses", "Mouth_Slightly_Open", "Blond_Hair")


@pytest.fixture(autouse=True)
def _no_celeba_env(monkeypatch):
    monkeypatch.delenv("GANSCOPE_CELEBA", raising=False)


@pytest.fixture(scope="module")
def random_classifier() -> fa.AttributeClassifier:
    torch.manual_seed(0)
    return fa.AttributeClassifier(fa.AttributeNet(), sha256="random")


def faces(n: int = 10, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


# ----------------------------------------------------------------------------------------------
# The shipped weights and their card


def test_shipped_weights_load_and_match_hash():
    assert fa.WEIGHTS_FILE.is_file()
    assert fa.WEIGHTS_FILE.stat().st_size < 2_000_000
    assert file_sha256(fa.WEIGHTS_FILE) == fa.WEIGHTS_SHA256
    c = fa.load_attribute_classifier()
    assert c.sha256 == fa.WEIGHTS_SHA256 and c.name == "celeba-attr-v1"
    assert c.columns == fa.ATTRIBUTES + ("Yaw",)
    assert not c.model.training
    assert fa.load_attribute_classifier() is c  # cached per process


def test_card_ships_beside_the_weights():
    card = fa.card()
    assert card["name"] == fa.CLASSIFIER_NAME
    assert card["sha256"] == fa.WEIGHTS_SHA256
    assert card["size_bytes"] == fa.WEIGHTS_FILE.stat().st_size
    assert card["attributes"] == list(fa.ATTRIBUTES)
    assert set(REQUIRED) <= set(card["heldout"])
    assert card["n_heldout"] == 1000 and card["recipe"]["n_train"] == 9000
    assert card["input"]["size"] == 32 and card["input"]["crop"] == fa.CROP
    assert len(card["data"]["attr_sha256"]) == 64 and len(card["data"]["images_sha256"]) == 64
    for a in fa.ATTRIBUTES:
        r = card["heldout"][a]
        assert 0 <= r["base_rate"] <= 1 and r["majority_accuracy"] == max(r["base_rate"],
                                                                          1 - r["base_rate"])
    # Better than always answering the majority class, for the attributes the issue names.
    for a in REQUIRED:
        assert card["heldout"][a]["accuracy"] > card["heldout"][a]["majority_accuracy"], a


@pytest.fixture
def random_weights(tmp_path, monkeypatch) -> Path:
    """A random-init classifier saved as the 'shipped' weights, with its own hash."""
    torch.manual_seed(1)
    path = tmp_path / "celeba-attr-v1.pt"
    torch.save(fa.AttributeNet().state_dict(), path)
    monkeypatch.setattr(fa, "WEIGHTS_FILE", path)
    monkeypatch.setattr(fa, "WEIGHTS_SHA256", file_sha256(path))
    return path


def test_intact_weights_load(random_weights):
    assert fa.load_attribute_classifier().sha256 == file_sha256(random_weights)


def test_damaged_weights_are_one_line(random_weights):
    want = fa.WEIGHTS_SHA256
    data = bytearray(random_weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    random_weights.write_bytes(bytes(data))
    with pytest.raises(RunError) as e:
        fa.load_attribute_classifier()
    got = file_sha256(random_weights)
    assert str(e.value) == (f"attribute classifier weights {random_weights} are damaged "
                            f"(SHA-256 {got[:12]}... != {want[:12]}...): reinstall ganscope")


def test_missing_weights_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(fa, "WEIGHTS_FILE", tmp_path / "nope.pt")
    with pytest.raises(RunError) as e:
        fa.load_attribute_classifier()
    assert str(e.value) == (f"attribute classifier weights {tmp_path / 'nope.pt'} are missing: "
                            "reinstall ganscope, or train them with "
                            "`python -m ganscope.domains.faces.train_attributes`")


def test_weights_of_another_shape_are_one_line(tmp_path, monkeypatch):
    """A file whose hash matches (e.g. a wrongly pinned hash) but is not this network."""
    path = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(3)}, path)
    monkeypatch.setattr(fa, "WEIGHTS_FILE", path)
    monkeypatch.setattr(fa, "WEIGHTS_SHA256", file_sha256(path))
    with pytest.raises(RunError) as e:
        fa.load_attribute_classifier()
    assert str(e.value) == (f"attribute classifier weights {path} do not load (RuntimeError): "
                            "reinstall ganscope")


def test_unreadable_card(tmp_path, monkeypatch):
    bad = tmp_path / "card.json"
    bad.write_text("{not json")
    monkeypatch.setattr(fa, "CARD_FILE", bad)
    with pytest.raises(RunError) as e:
        fa.card()
    assert str(e.value) == (f"attribute classifier card {bad} is unreadable (JSONDecodeError): "
                            "reinstall ganscope")


# ----------------------------------------------------------------------------------------------
# The scorer


def test_scorer_shape_columns_and_range(random_classifier):
    x = faces(10)
    s = random_classifier(x)
    assert s.shape == (10, len(fa.ATTRIBUTES) + 1) and s.dtype == torch.float32
    assert random_classifier.columns[-1] == "Yaw" and len(random_classifier.columns) == 13
    p = s[:, :-1]
    assert ((p >= 0) & (p <= 1)).all()
    assert torch.allclose(s[:, -1], yaw(x), atol=1e-6)
    assert torch.equal(random_classifier.probs(x), p)
    assert random_classifier.features(x).shape == (10, fa.FEATURE_DIM)


def test_scorer_takes_uint8_and_other_sizes(random_classifier):
    x = faces(6, 64)
    u8 = ((x + 1) * 127.5).round().to(torch.uint8)
    p_float = random_classifier.probs(u8.float() / 127.5 - 1)
    assert torch.allclose(random_classifier.probs(u8), p_float, atol=1e-6)
    # a 64 px face is resized to 32 with antialiasing, exactly as to_input says
    small = F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(random_classifier.probs(x), random_classifier.probs(small), atol=1e-6)
    # out-of-range generator output is clamped
    assert torch.equal(random_classifier.probs(x * 5),
                       random_classifier.probs((x * 5).clamp(-1, 1)))


def test_scorer_is_batch_independent(random_classifier, monkeypatch):
    x = faces(40)
    whole = random_classifier(x)
    monkeypatch.setattr(fa, "FORWARD_CHUNK", 7)
    assert torch.allclose(random_classifier(x), whole, atol=1e-5)
    assert random_classifier.probs(x[:0]).shape == (0, len(fa.ATTRIBUTES))


@pytest.mark.parametrize("bad", [torch.zeros(2, 1, 32, 32), torch.zeros(2, 3, 32, 16),
                                 torch.zeros(3, 32, 32), np.zeros((2, 3, 32, 32))])
def test_scorer_rejects_bad_input(random_classifier, bad):
    with pytest.raises(ValueError):
        random_classifier.probs(bad)


# ----------------------------------------------------------------------------------------------
# Training


def test_training_is_reproducible_and_leaves_the_process_as_it_was():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 3, 32, 32), generator=g, dtype=torch.uint8)
    y = (torch.rand(40, len(fa.ATTRIBUTES), generator=g) < 0.5).float()
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    rng = torch.get_rng_state()

    def run(seed):
        return train_classifier(x[:32], y[:32], x[32:], y[32:], epochs=1, batch_size=16,
                                seed=seed)

    (m1, r1), (m2, r2), (m3, _) = run(0), run(0), run(1)
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1 if s1[k].is_floating_point())
    assert r1["heldout"] == r2["heldout"] and r1["n_heldout"] == 8
    assert r1["recipe"]["n_train"] == 32 and not m1.training
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det
    assert torch.equal(torch.get_rng_state(), rng)


def test_training_script_writes_weights_and_card(tmp_path):
    from test_celeba import make_celeba

    d = make_celeba(tmp_path / "celeba", n=12, size=(89, 109))
    out = tmp_path / "weights"
    assert train_main(["--data-dir", str(d), "--out", str(out), "--epochs", "1",
                       "--heldout", "4"]) == 0
    pt, js = out / "celeba-attr-v1.pt", out / "celeba-attr-v1.json"
    card = json.loads(js.read_text())
    assert card["sha256"] == file_sha256(pt) and card["size_bytes"] == pt.stat().st_size
    assert card["n_heldout"] == 4 and card["recipe"]["n_train"] == 8
    assert card["data"]["train"] == "000001.jpg .. 000008.jpg (8)"
    assert card["data"]["heldout"] == "000009.jpg .. 000012.jpg (4)"
    assert set(card["heldout"]) == set(fa.ATTRIBUTES)
    model = fa.AttributeNet()
    model.load_state_dict(torch.load(pt, weights_only=True))


def test_training_script_reports_missing_data_in_one_line(tmp_path, capsys):
    assert train_main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: CelebA folder {tmp_path / 'nowhere'}")


# ----------------------------------------------------------------------------------------------
# Real data: the card's numbers re-measured

real = pytest.mark.skipif(not (REAL / "list_attr_celeba.txt").is_file(),
                          reason=f"CelebA subset not in {REAL}")


@real
@pytest.mark.realdata
def test_heldout_accuracy_matches_the_card():
    ds, images, labels, cut = load_split(str(REAL), 10000, 1000)
    assert cut == 9000 and len(ds) == 10000
    card = fa.card()
    from ganscope.domains.faces.train_attributes import tensor_sha256

    assert ds.source["attr_sha256"] == card["data"]["attr_sha256"]
    assert tensor_sha256(images) == card["data"]["images_sha256"]
    p = fa.load_attribute_classifier().probs(images[cut:])
    y = labels[cut:]
    # The card was measured on one CPU; another one's conv kernels round differently, and a
    # held-out face whose probability lies at the 0.5 threshold can flip. Measured here (Xeon
    # AVX-512, equal to the card): at most 3 of the 1000 held-out faces per attribute lie
    # within 1e-3 of 0.5 (the nearest 1.6e-4 away), float rounding moves them ~1e-6; so up to
    # 3 flipped faces, 3/1000 of accuracy, is rounding, and a 4th is a changed classifier.
    for j, a in enumerate(fa.ATTRIBUTES):
        acc = float(((p[:, j] > 0.5).double() == y[:, j].double()).double().mean())
        assert acc == pytest.approx(card["heldout"][a]["accuracy"], abs=3 / 1000 + 1e-9), a
        assert float(y[:, j].mean()) == pytest.approx(card["heldout"][a]["base_rate"]), a
