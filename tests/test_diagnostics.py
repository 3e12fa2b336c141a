"""Diagnostics: each flag fires on the pattern it names, at the right steps, and not on noise."""

from __future__ import annotations

import json
import math

import numpy as np

from ganscope.diagnostics import (
    check_collapse,
    check_d_wins,
    check_diverged,
    check_early_best,
    diagnose,
)
from ganscope.training.run import Run


def events(d_x, d_g_z, loss_d=None):
    n = len(d_x)
    loss_d = loss_d if loss_d is not None else [0.5] * n
    return [{"step": i + 1, "epoch": 1, "it": i, "loss_d": loss_d[i], "loss_g": 1.0,
             "d_x": float(d_x[i]), "d_g_z": float(d_g_z[i])} for i in range(n)]


def test_d_wins_flags_the_stretch_where_d_separates_outright():
    # 40 healthy steps, then D wins for the remaining 160 (as the seeds' DCGAN does).
    d_x = [0.6] * 40 + [0.9995] * 160
    d_g = [0.4] * 40 + [0.0005] * 160
    f = check_d_wins(events(d_x, d_g), "probability")
    assert f is not None and f.code == "d-wins"
    # Running median over 10 steps: the stretch starts once half the window has crossed.
    assert 41 <= f.start_step <= 51 and f.end_step == 200
    assert "D wins outright" in f.message and "model.init=dcgan" in f.message


def test_d_wins_ignores_short_spikes_critics_and_healthy_runs():
    rng = np.random.default_rng(0)
    healthy = events(0.6 + 0.05 * rng.standard_normal(300), 0.4 + 0.05 * rng.standard_normal(300))
    assert check_d_wins(healthy, "probability") is None
    # 30 winning steps in 300: too short to matter.
    d_x = [0.6] * 100 + [0.9999] * 30 + [0.6] * 170
    d_g = [0.4] * 100 + [0.0001] * 30 + [0.4] * 170
    assert check_d_wins(events(d_x, d_g), "probability") is None
    # A single good batch inside a long win does not split the stretch (smoothing).
    d_x = [0.9999] * 300
    d_g = [0.0001] * 150 + [0.3] + [0.0001] * 149
    f = check_d_wins(events(d_x, d_g), "probability")
    assert f is not None and f.end_step - f.start_step + 1 >= 250
    # Brief recoveries (here 15 steps where G scores) do not end the stretch ...
    d_g = [0.4] * 20 + [0.0001] * 100 + [0.3] * 15 + [0.0001] * 165
    f = check_d_wins(events([0.9999] * 300, d_g), "probability")
    assert f.start_step <= 30 and f.end_step == 300
    # ... but a real one (60 steps) does: the longest stretch is then the later one.
    d_g = [0.4] * 20 + [0.0001] * 80 + [0.3] * 60 + [0.0001] * 140
    f = check_d_wins(events([0.9999] * 300, d_g), "probability")
    assert 160 <= f.start_step <= 170 and f.end_step == 300
    # Critic scores have no 'outright' level.
    assert check_d_wins(events([5.0] * 300, [-5.0] * 300), "raw critic score") is None


def test_diverged():
    ev = events([0.5] * 10, [0.5] * 10, loss_d=[0.5] * 6 + [math.nan] * 4)
    f = check_diverged(ev)
    assert f.code == "diverged" and f.start_step == 7 and "loss_d became nan at step 7" in f.message
    assert check_diverged(events([0.5] * 10, [0.5] * 10)) is None


def rec(epoch, fid, classes=10, recall=0.5, n=1000):
    return {"epoch": epoch, "time": f"t{epoch}", "checkpoint": f"checkpoints/G-epoch-{epoch:04d}.pt",
            "n_fake": n, "extractor": {"name": "e", "sha256": "s"},
            "reference": {"images_sha256": "r"},
            "metrics": {"fid": fid, "classes_covered": classes, "recall": recall}}


def test_collapse_from_classes_or_recall():
    ok = [rec(1, 30, 9, 0.3), rec(2, 20, 10, 0.4), rec(3, 18, 10, 0.42)]
    assert check_collapse(ok) is None
    fewer = ok + [rec(4, 25, 7, 0.4)]
    f = check_collapse(fewer)
    assert f.code == "collapse"
    assert f.message.startswith("mode collapse: classes covered fell from 10 (epoch 2) to 7 "
                                "(epoch 4)")
    narrower = ok + [rec(4, 25, 10, 0.15)]
    assert "recall fell from 0.420 (epoch 3) to 0.150 (epoch 4)" in check_collapse(narrower).message
    # Records on another scale (other n) are not mixed into the series.
    mixed = [rec(1, 30, 10, 0.9, n=50)] + ok
    assert check_collapse(mixed) is None


def test_early_best():
    recs = [rec(e, f) for e, f in ((1, 40), (2, 15), (3, 16), (4, 19), (5, 22))]
    f = check_early_best(recs)
    assert f.code == "early-best"
    assert f.message == ("best FID 15.00 at epoch 2 of 5; the last is 22.00 (+47%): use "
                         "checkpoints/G-epoch-0002.pt")
    improving = [rec(e, 40 - 5 * e) for e in range(1, 6)]
    assert check_early_best(improving) is None
    assert check_early_best(recs[:2]) is None  # too few evaluations to say


def test_diagnose_reads_the_run_directory(tmp_path):
    run = Run(tmp_path / "r")
    run.path.mkdir()
    run.update_meta(d_output="probability")
    run.append_events(events([0.9999] * 200, [0.0001] * 200))
    run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in
                                        [rec(1, 10), rec(2, 20), rec(3, 30)]))
    assert [f.code for f in diagnose(run)] == ["d-wins", "early-best"]
