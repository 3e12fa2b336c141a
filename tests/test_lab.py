"""`ganscope lab`: the seed lab end to end at toy size (tiny data, a few steps), its pages, the
honest labels of --quick, and E6 skipped with its reason when no CelebA folder is given."""

from __future__ import annotations

import json
import re

import pytest

from ganscope.cli import main
from ganscope.lab import EXPERIMENTS, LabOptions, Settings, run_lab, shortened

TOY = Settings(quick=True, seeds=[0, 1], e1_epochs=1, e1_limit=None, eval_n=64,
               e2_presets=("e1-mlp", "e2-tiny-cnn"), e2_epochs=1, e2_limit=128,
               probe_n_base=8, probe_n_null=8, probe_dims=list(range(6)), e5_steps=16,
               e5_seeds=[0, 1], e5_extra=["data.n_points=512", "eval.n=300"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_fmnist_dir):
    out = tmp_path_factory.mktemp("lab") / "lab"
    mp = pytest.MonkeyPatch()
    mp.setenv("GANSCOPE_CACHE", str(out.parent / "cache"))
    mp.delenv("GANSCOPE_CELEBA", raising=False)
    try:
        # E5 is the 2-D matrix (tested in test_lab2d.py); here it must say it was not run.
        index = run_lab(LabOptions(out=out, quick=True, data_dir=str(tiny_fmnist_dir),
                                   only=["e1", "e2", "e3", "e4", "e6"], workers=2,
                                   progress=False, settings=TOY))
    finally:
        mp.undo()
    return out, index


def test_the_lab_writes_an_index_and_a_page_per_experiment(lab):
    out, index = lab
    assert index == out / "index.html"
    assert {p.name for p in out.glob("*.html")} == {"index.html", *(f"{e}.html"
                                                                    for e in EXPERIMENTS)}
    doc = index.read_text()
    for e in EXPERIMENTS:
        assert f'href="{e}.html"' in doc
    for page in out.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"https?://", text), page.name
        assert all(s.startswith("data:image/") for s in re.findall(r'<img src="([^"]*)"', text))
    rec = json.loads((out / "lab.json").read_text())
    assert rec["quick"] is True and rec["seconds"] > 0
    assert rec["results"]["e5"]["status"] == "not run"
    assert rec["results"]["e6"]["status"] == "skipped"
    assert rec["failed_runs"] == {}
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "e1-mlp-s0", "e1-mlp-s1", "e2-mlp-s0", "e2-mlp-s1", "e2-tiny-cnn-s0", "e2-tiny-cnn-s1"]


def test_pages_hold_the_measured_numbers_and_say_what_was_shortened(lab):
    out, _ = lab
    from ganscope.experiments.compare import final_values
    from ganscope.training.run import Run

    e1 = (out / "e1.html").read_text()
    assert "Shortened (--quick):" in e1 and "<li>1 epoch instead of the preset&#x27;s 10</li>" in e1
    fids = [final_values(Run(out / "runs" / f"e1-mlp-s{s}"))["fid"] for s in (0, 1)]
    mean = sum(fids) / 2
    assert f'data-key="e1-mlp/fid/mean" data-value="{mean!r}">{mean:.2f}</td>' in e1
    e2 = (out / "e2.html").read_text()
    assert "e2-tiny-cnn" in e2 and "CNN vs MLP at equal epochs and data" in e2
    assert "data.limit=128: the first 128 training images instead of all 60,000" in e2
    e3 = (out / "e3.html").read_text()
    assert "the same images, byte for byte" in e3 and "seed 23231" in e3
    e4 = (out / "e4.html").read_text()
    assert "The seeds&#x27; claims" in e4 and "dims 0, 1, 2, 3, 4, 5 only, not all 100" in e4
    assert (out / "e4" / "probe" / "probe.json").is_file()
    assert (out / "e4" / "edit-seed000" / "edits.png").is_file()
    assert "E5 was not run in this lab (--only e1,e2,e3,e4,e6)" in (out / "e5.html").read_text()
    e6 = (out / "e6.html").read_text()
    assert "E6 was skipped:" in e6 and "--celeba-dir DIR or set $GANSCOPE_CELEBA" in e6


def test_started_again_the_lab_keeps_its_runs(lab, tiny_fmnist_dir, monkeypatch):
    out, _ = lab
    before = {p.name: (p / "events.jsonl").stat().st_mtime_ns for p in (out / "runs").iterdir()}
    monkeypatch.delenv("GANSCOPE_CELEBA", raising=False)
    run_lab(LabOptions(out=out, quick=True, data_dir=str(tiny_fmnist_dir), only=["e1"],
                       workers=2, progress=False, settings=TOY))
    assert {p.name: (p / "events.jsonl").stat().st_mtime_ns
            for p in (out / "runs").iterdir()} == before
    assert ("2 of its 2 E1/E2/E6 training runs had finished in an earlier start of this lab"
            in (out / "index.html").read_text())


def test_quick_labels_are_exact():
    q = Settings.quick_settings()
    assert shortened("e1", q) == [
        "seeds 0, 1 instead of 0, 1, 2", "5 epochs instead of the preset's 10",
        "evaluation with 2000 generated images vs 2000 test images instead of 10,000 vs "
        "10,000 (FID is biased upwards at small n: compare these numbers only with each other)"]
    assert shortened("e5", q) == ["a cap of 4000 generator steps per run instead of 60000",
                                  "seeds 0, 1 instead of 0, 1, 2"]
    assert shortened("e1", Settings.full()) == []


def test_lab_cli_rejects_unknown_experiments(capsys, tmp_path):
    assert main(["lab", "--only", "e1,e9", "--out", str(tmp_path / "lab")]) == 2
    assert capsys.readouterr().err == ("error: unknown experiment 'e9' in --only: choose from "
                                       "e1, e2, e3, e4, e5, e6\n")
