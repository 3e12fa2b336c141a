"""Training-curve figures: smoothing maths, figure structure, PNG output, a real tiny run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganscope.config import RunConfig, apply_overrides
from ganscope.data import Dataset
from ganscope.errors import RunError
from ganscope.training.loop import train
from ganscope.training.run import Run
from ganscope.viz import curves
from ganscope.viz.curves import (
    CRITIC_LABEL,
    PROB_LABEL,
    d_output_label,
    default_window,
    epoch_starts,
    load_curves,
    make_d_outputs_figure,
    make_losses_figure,
    plot_d_outputs,
    plot_losses,
    plot_run,
    smooth,
)

# --- helpers ----------------------------------------------------------------------------------


def make_run(tmp_path, n_epochs: int = 3, steps_per_epoch: int = 40, d_output: str = "probability",
             name: str = "r", seed: int = 0) -> Run:
    """A hand-made run: events with known shapes, meta as the training loop writes it."""
    run = Run.create(RunConfig(), runs_dir=tmp_path, name=name)
    rng = np.random.default_rng(seed)
    rows = []
    step = 0
    for e in range(n_epochs):
        for it in range(steps_per_epoch):
            step += 1
            rows.append({
                "step": step, "epoch": e + 1, "it": it,
                "loss_d": 1.4 - 0.001 * step + 0.05 * rng.standard_normal(),
                "loss_g": 0.7 + 0.001 * step + 0.05 * rng.standard_normal(),
                "d_x": 0.8 + 0.02 * rng.standard_normal(),
                "d_g_z": 0.3 + 0.02 * rng.standard_normal(),
            })
    write_events(run, rows)
    run.update_meta(preset="custom", steps_per_epoch=steps_per_epoch, d_output=d_output,
                    epochs_planned=n_epochs, epochs_done=n_epochs)
    return run


def write_events(run: Run, rows: list[dict]) -> None:
    run.events_path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def top_epoch_ticks(ax) -> list[float]:
    """Tick positions of the secondary 'epoch' x axis attached to ``ax``."""
    secs = [c for c in ax.child_axes if c.get_xlabel() == "epoch"]
    assert len(secs) == 1
    return [float(t) for t in secs[0].get_xticks()]


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


# --- smooth -----------------------------------------------------------------------------------


def test_smooth_constant_is_constant():
    x = np.full(101, 3.25)
    for w in (1, 2, 5, 50, 1000):
        np.testing.assert_allclose(smooth(x, w), x)


def test_smooth_preserves_length_and_dtype():
    for n in (0, 1, 2, 7, 1000):
        y = smooth(np.arange(n, dtype=np.float32), 9)
        assert y.shape == (n,)
        assert y.dtype == np.float64


def test_smooth_window_one_is_identity():
    x = np.random.default_rng(0).standard_normal(50)
    np.testing.assert_allclose(smooth(x, 1), x)


def test_smooth_linear_ramp_is_unchanged():
    """A centred (symmetrically shrinking) window reproduces a linear trend: no lag."""
    x = 2.0 * np.arange(200) - 7.0
    y = smooth(x, 21)
    np.testing.assert_allclose(y, x, atol=1e-9)  # interior and both ends


def test_smooth_step_is_monotone_and_centred():
    n, at = 200, 100
    x = np.where(np.arange(n) >= at, 1.0, 0.0)
    y = smooth(x, 21)
    assert np.all(np.diff(y) >= -1e-12)
    # symmetric about the step: the half-way crossing stays between steps at-1 and at
    assert y[at - 1] < 0.5 < y[at]
    np.testing.assert_allclose(y[at - 1] + y[at], 1.0)
    np.testing.assert_allclose(y[: at - 10], 0.0)
    np.testing.assert_allclose(y[at + 10:], 1.0)


def test_smooth_interior_is_the_centred_moving_average():
    x = np.random.default_rng(2).standard_normal(3000)
    y = smooth(x, 41)
    np.testing.assert_allclose(y[20:-20], np.convolve(x, np.ones(41) / 41, mode="valid"),
                               atol=1e-10)


def test_smooth_ends_are_smoothed_without_lag():
    """The endpoints are neither raw (noisy hook) nor dragged back towards the past (lag)."""
    rng = np.random.default_rng(3)
    trials = np.array([smooth(rng.standard_normal(1000) + 0.01 * np.arange(1000), 41)[[0, -1]]
                       for _ in range(400)])
    errors = trials - np.array([0.0, 9.99])
    assert np.all(np.abs(errors.mean(axis=0)) < 0.1)  # unbiased on a trend
    assert np.all(errors.std(axis=0) < 0.6)  # raw would be 1.0


def test_smooth_reduces_noise():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(5000)
    y = smooth(x, default_window(x.size))
    assert y[200:-200].std() < 0.25 * x.std()


def test_smooth_skips_nonfinite_values():
    x = np.ones(30)
    x[10] = np.nan
    x[20] = np.inf
    y = smooth(x, 5)
    np.testing.assert_allclose(y, 1.0)
    assert np.isnan(smooth(np.array([np.nan, np.nan]), 3)).all()


def test_default_window_scales_with_points():
    assert default_window(1) == 1
    assert default_window(10) == 1
    assert default_window(1000) == 21
    assert default_window(20000) == 401
    assert all(default_window(n) % 2 == 1 for n in range(1, 500))


# --- reading events ---------------------------------------------------------------------------


def test_no_events_raises_run_error_with_exact_message(tmp_path):
    run = Run.create(RunConfig(), runs_dir=tmp_path, name="empty")
    msg = "run 'empty' has no training events yet: train it first (ganscope train ...)"
    for fn in (plot_run, plot_losses, plot_d_outputs):
        with pytest.raises(RunError) as ei:
            fn(run)
        assert str(ei.value) == msg
    run.events_path.write_text("")  # an empty file is no better
    with pytest.raises(RunError, match="no training events yet"):
        plot_run(run)
    assert list(run.figures.iterdir()) == []


def test_epoch_starts_from_events(tmp_path):
    run = make_run(tmp_path, n_epochs=3, steps_per_epoch=40)
    c = load_curves(run)
    starts, nums = epoch_starts(c.steps, c.epochs)
    assert starts.tolist() == [1, 41, 81]
    assert nums.tolist() == [1, 2, 3]


def test_epoch_starts_of_a_partial_epoch():
    """An interrupted run: the last epoch is short; its first logged step is still the tick."""
    steps = np.arange(1, 26, dtype=float)
    epochs = np.array([1] * 10 + [2] * 10 + [3] * 5, dtype=float)
    starts, nums = epoch_starts(steps, epochs)
    assert starts.tolist() == [1, 11, 21]
    assert nums.tolist() == [1, 2, 3]


def test_torn_last_line_is_ignored(tmp_path):
    run = make_run(tmp_path, n_epochs=1, steps_per_epoch=10)
    with open(run.events_path, "a") as f:
        f.write('{"step": 11, "epoch": 2, "loss_')
    assert len(load_curves(run)) == 10
    assert len(plot_run(run)) == 2


# --- figure structure -------------------------------------------------------------------------


def test_losses_figure_structure(tmp_path):
    run = make_run(tmp_path, n_epochs=3, steps_per_epoch=40)
    fig = make_losses_figure(run)
    ax_d, ax_g = fig.axes[:2]
    assert ax_d.get_ylabel() == "D loss"
    assert ax_g.get_ylabel() == "G loss"
    assert ax_g.get_xlabel() == "generator step"
    assert ax_d.get_shared_x_axes().joined(ax_d, ax_g)
    assert "r" in ax_d.get_title() and "custom" in ax_d.get_title()
    n = 120
    win = default_window(n)
    for ax in (ax_d, ax_g):
        raw, sm = ax.lines  # no per-point markers, just two lines
        assert raw.get_alpha() == pytest.approx(0.25)
        assert raw.get_linewidth() < sm.get_linewidth()
        assert raw.get_marker() in ("None", None, "")
        assert len(raw.get_xdata()) == n and len(sm.get_xdata()) == n
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "raw", f"smoothed (window {win})"]
        # light vertical lines at the boundaries of epochs 2 and 3
        vl = ax.collections[0].get_segments()
        assert sorted(s[0][0] for s in vl) == [41, 81]
    assert top_epoch_ticks(ax_d) == [1, 41, 81]


def test_losses_ylim_ignores_one_exploding_step(tmp_path):
    run = make_run(tmp_path, n_epochs=2, steps_per_epoch=200)
    rows = run.read_events()
    rows[150]["loss_d"] = 1e6
    write_events(run, rows)
    ax_d = make_losses_figure(run).axes[0]
    lo, hi = ax_d.get_ylim()
    assert hi < 10  # the bulk of the curve is still readable
    assert [t.get_text() for t in ax_d.texts] == ["1 step value off-scale (range 0.905 to 1e+06)"]
    ax_g = make_losses_figure(run).axes[1]
    assert len(ax_g.texts) == 0  # plain noise: everything shown, no note
    raw = ax_g.lines[0].get_ydata()
    assert ax_g.get_ylim()[0] < raw.min() and raw.max() < ax_g.get_ylim()[1]


def test_d_outputs_probability_axis(tmp_path):
    run = make_run(tmp_path, d_output="probability")
    fig = make_d_outputs_figure(run)
    ax = fig.axes[0]
    assert ax.get_ylabel() == PROB_LABEL == "mean D output (probability)"
    assert ax.get_ylim() == (0.0, 1.0)
    ref = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(ref) == 1 and list(ref[0].get_ydata()) == [0.5, 0.5]
    assert len(ax.lines) == 5  # raw + smoothed for D(x) and D(G(z)), and the 0.5 line
    colours = {ln.get_color() for ln in ax.lines if ln.get_linestyle() != "--"}
    assert len(colours) == 2
    assert top_epoch_ticks(ax) == [1, 41, 81]
    assert "D outputs" in ax.get_title()


def test_d_outputs_critic_axis(tmp_path):
    run = make_run(tmp_path, d_output="raw critic score")
    rows = run.read_events()
    for r in rows:  # critic scores are unbounded
        r["d_x"] *= 40.0
        r["d_g_z"] *= -40.0
    write_events(run, rows)
    ax = make_d_outputs_figure(run).axes[0]
    assert ax.get_ylabel() == CRITIC_LABEL == "mean critic score"
    assert len(ax.lines) == 4  # no equilibrium line for a critic
    lo, hi = ax.get_ylim()
    assert lo < -10 and hi > 30  # autoscaled to the data, not [0, 1]


def test_d_output_label():
    assert d_output_label("probability") == PROB_LABEL
    assert d_output_label("raw critic score") == CRITIC_LABEL
    assert d_output_label(None) == CRITIC_LABEL


def test_d_output_kind_falls_back_to_config(tmp_path):
    run = make_run(tmp_path)
    (run.path / "meta.json").unlink()  # a hand-made run without meta: BCE (default) -> sigmoid
    assert make_d_outputs_figure(run).axes[0].get_ylabel() == PROB_LABEL


def test_many_epochs_thin_labels_keep_ticks(tmp_path):
    run = make_run(tmp_path, n_epochs=100, steps_per_epoch=5)
    ax = make_d_outputs_figure(run).axes[0]
    sec = next(c for c in ax.child_axes if c.get_xlabel() == "epoch")
    assert len(sec.get_xticks()) == 100
    labels = [t.get_text() for t in sec.get_xticklabels()]
    assert 0 < sum(bool(s) for s in labels) <= curves.MAX_EPOCH_LABELS
    assert labels[0] == "1"


# --- PNG output -------------------------------------------------------------------------------


def test_plot_run_writes_valid_pngs(tmp_path):
    run = make_run(tmp_path)
    paths = plot_run(run)
    assert paths == [run.figures / "losses.png", run.figures / "d_outputs.png"]
    assert png_size(paths[0]) == (1100, 660)  # (10, 6) in at 110 dpi
    assert png_size(paths[1]) == (1100, 440)  # (10, 4) in at 110 dpi
    # atomic writes leave no temp files behind
    assert sorted(p.name for p in run.figures.iterdir()) == ["d_outputs.png", "losses.png"]
    # re-plotting replaces the files in place
    assert plot_run(run) == paths


def test_plot_handles_20k_points(tmp_path):
    # Behaviour only: how fast this is belongs in benchmarks/, not in a wall-clock assertion
    # that a loaded CI core can fail.
    run = make_run(tmp_path, n_epochs=20, steps_per_epoch=1000)
    paths = plot_run(run)
    assert paths == [run.figures / "losses.png", run.figures / "d_outputs.png"]
    assert [png_size(p) for p in paths] == [(1100, 660), (1100, 440)]
    assert all(p.stat().st_size > 10_000 for p in paths)


# --- a real tiny training run -----------------------------------------------------------------


def test_real_tiny_run(tmp_path):
    torch.manual_seed(0)
    ds = Dataset(images=torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8),
                 labels=None, source={})
    cfg = apply_overrides(RunConfig(), ["train.epochs=2", "train.batch_size=32",
                                        "train.n_samples=4"])
    run = Run.create(cfg, runs_dir=tmp_path, name="tiny")
    train(run, dataset=ds, progress=False)
    paths = plot_run(run)
    assert [png_size(p) for p in paths] == [(1100, 660), (1100, 440)]
    c = load_curves(run)
    assert len(c) == 16
    ax_d = make_losses_figure(run).axes[0]
    assert top_epoch_ticks(ax_d) == [1, 9]
    ax = make_d_outputs_figure(run).axes[0]
    assert top_epoch_ticks(ax) == [1, 9]
    assert ax.get_ylabel() == PROB_LABEL  # the default loss is BCE
    assert ax.get_ylim() == (0.0, 1.0)
