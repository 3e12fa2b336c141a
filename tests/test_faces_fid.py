"""Faces are scored (FID, KID, PRDC) in the shipped attribute classifier's 128-d features,
during training and by ``ganscope eval``; ``classes`` does not apply (attributes are not
classes), and CelebA without its partition file has no test split to score against."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganscope.data.celeba as cb
from ganscope.cli import main
from ganscope.config import RunConfig, apply_overrides
from ganscope.domains import domain_for
from ganscope.domains.faces.attributes import load_attribute_classifier
from ganscope.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_celeba_env(monkeypatch):
    monkeypatch.delenv("GANSCOPE_CELEBA", raising=False)


def tiny_celeba(folder: Path, n: int = 16, size=(89, 109)) -> Path:
    """CelebA's layout (img_align_celeba/ + list_attr_celeba.txt), random faces-sized JPEGs."""
    (folder / cb.IMAGE_DIR).mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = [f"{i + 1:06d}.jpg" for i in range(n)]
    for f in files:
        a = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / cb.IMAGE_DIR / f, quality=90)
    rows = [str(n), " ".join(cb.ATTRIBUTES)]
    rows += [f + " " + " ".join(rng.choice(["1", "-1"], 40)) for f in files]
    (folder / cb.ATTR_FILE).write_text("\n".join(rows) + "\n")
    return folder


def test_face_features_are_the_classifiers(tmp_path):
    dom = domain_for("celeba")
    assert dom.offline_eval and dom.trains_with_eval and dom.no_metrics == ("classes",)
    ex = dom.extractor()
    faces = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    feats, probs = ex.extract(faces, batch_size=2)
    want = load_attribute_classifier().features(faces).numpy()
    assert feats.shape == (5, 128) and probs.shape == (5, 0)
    assert np.array_equal(feats, want)
    assert ex.name == "celeba-attr-v1" and len(ex.sha256) == 64
    assert dom.eval_metrics(RunConfig().eval) == ("fid", "kid", "prdc")
    with pytest.raises(ConfigError, match="eval.metrics: classes does not apply to CelebA"):
        apply_overrides(RunConfig(), ["data.name=celeba", "model.name=dcgan64",
                                      "eval.metrics=classes"]).validate()


def test_face_run_gets_fid_in_training_and_eval(tmp_path, capsys):
    d = tiny_celeba(tmp_path / "celeba")
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--no-progress"]
    assert main(["train", "e6-faces", "--name", "faces", "--data-dir", str(d),
                 "--eval-every", "1", "--set", "train.epochs=1", "--set", "train.batch_size=8",
                 "--set", "eval.n=10", "--set", "eval.reference=train", "--no-plot",
                 *common]) == 0
    recs = [json.loads(x) for x in (runs / "faces" / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) == 1
    r = recs[0]
    assert set(r["metrics"]) == {"fid", "kid", "kid_std", "precision", "recall", "density",
                                 "coverage"}
    assert r["extractor"]["name"] == "celeba-attr-v1"
    assert (r["reference"]["dataset"], r["reference"]["split"]) == ("celeba", "train")
    assert r["n_real"] == 10 and r["n_fake"] == 10 and r["metrics"]["fid"] > 0
    capsys.readouterr()

    assert main(["eval", "faces", "-n", "10", "--json", *common]) == 0
    again = json.loads(capsys.readouterr().out)[0]
    assert again["metrics"]["fid"] == pytest.approx(r["metrics"]["fid"], rel=1e-6)

    assert main(["eval", "faces", "-n", "10", "--reference", "test", *common]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: CelebA in {d.resolve()} has no held-out test split (no "
                   f"{cb.PARTITION_FILE}): score against the training faces with --reference "
                   "train (eval.reference=train), or add the CelebA download's partition file\n")
    assert main(["eval", "faces", "-n", "10", "--metrics", "classes", *common]) == 2
    assert capsys.readouterr().err.startswith("error: --metrics classes does not apply to CelebA")


def test_a_run_that_cannot_be_scored_against_test_faces_fails_before_its_first_step(tmp_path,
                                                                                   capsys):
    """The reference is read at the first evaluation; a run evaluated only at its end once
    trained its whole budget (25 minutes) before it failed on the missing partition file."""
    d = tiny_celeba(tmp_path / "celeba")
    runs = tmp_path / "runs"
    assert main(["train", "e6-faces", "--name", "faces", "--data-dir", str(d), "--runs-dir",
                 str(runs), "--no-progress", "--no-plot", "--set", "train.epochs=3",
                 "--set", "train.batch_size=8", "--set", "eval.every=1000"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"error: CelebA in {d.resolve()} has no held-out test split (no {cb.PARTITION_FILE}): "
        "score against the training faces with --reference train (eval.reference=train), or "
        "add the CelebA download's partition file")
    events = runs / "faces" / "events.jsonl"
    assert not events.exists() or events.read_text() == ""  # not one step was trained
    assert not list((runs / "faces").glob("checkpoints/*.pt"))
