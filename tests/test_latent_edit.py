"""E4 latent edits, interpolation and class walks: exact semantics on hand-built generators whose
behaviour is known, and the `latent` subcommands end to end on a tiny trained run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganscope.cli import build_parser, main
from ganscope.commands.latent import run_latent
from ganscope.config import load_config
from ganscope.errors import RunError, UserError
from ganscope.latent.edit import (
    SEED_EDITS,
    change_stats,
    edit_figure,
    edit_latents,
    generate_edits,
    preset_edit,
    row_label,
)
from ganscope.latent.interpolate import (
    class_direction,
    find_class_direction,
    interpolation_latents,
    interpolation_strip,
    lerp,
    resolve_class,
    slerp,
    walk,
)
from ganscope.latent.values import parse_steps
from ganscope.sampling import generate_images, latents_from_seed
from ganscope.training.run import Run, load_generator

# --- hand-built generators and a fake classifier ----------------------------------------------


class HalvesG(nn.Module):
    """Top half of the image = tanh(z[:, 0]), bottom half = tanh(z[:, 1] / 3); nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))  # generate_images reads the device from here

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        top = torch.tanh(z[:, 0] + self.w).view(-1, 1, 1, 1).expand(-1, 1, 14, 28)
        bottom = torch.tanh(z[:, 1] / 3).view(-1, 1, 1, 1).expand(-1, 1, 14, 28)
        return torch.cat([top, bottom], dim=2)


class LinearG(nn.Module):
    """A fixed random linear map to 28x28 through tanh: every dim matters a little."""

    def __init__(self, z_dim: int = 100) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lin = nn.Linear(z_dim, 784)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(784, z_dim, generator=g) * 0.1)
            self.lin.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(z)).view(-1, 1, 28, 28)


class BrightnessClassifier:
    """The Extractor interface; class B (index ``b``) when the top-left pixel is >= threshold,
    else A: with HalvesG that is the sign of z[:, 0] (threshold 128) or a rarer tail."""

    def __init__(self, a: int = 6, b: int = 1, threshold: int = 128) -> None:
        self.a, self.b, self.threshold = a, b, threshold

    def extract(self, images: torch.Tensor, batch_size: int = 1000, progress: bool = False):
        assert images.dtype == torch.uint8
        x = images.reshape(images.shape[0], -1)
        is_b = (x[:, 0] >= self.threshold).numpy()
        probs = np.zeros((images.shape[0], 10), dtype=np.float32)
        probs[is_b, self.b] = 1.0
        probs[~is_b, self.a] = 1.0
        return np.zeros((images.shape[0], 128), dtype=np.float32), probs


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_fmnist_dir):
    """A tiny e1-mlp run (1 epoch on 256 IDX images, ~1 s) for the end-to-end tests."""
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", "e1-mlp", "--runs-dir", str(runs), "--data-dir", str(tiny_fmnist_dir),
                 "--name", "tiny", "--seed", "1", "--set", "train.epochs=1",
                 "--set", "train.batch_size=32", "--no-progress", "--no-plot"]) == 0
    return runs, Run(runs / "tiny")


@pytest.fixture(scope="module")
def parser():
    """The real `ganscope` parser: `latent` is wired into cli.build_parser."""
    return build_parser()


def latent(parser, *args: str) -> int:
    return run_latent(parser.parse_args(["latent", *args]))


def user_error(parser, *args: str) -> str:
    with pytest.raises(UserError) as e:
        latent(parser, *args)
    return str(e.value)


# --- edit_latents -----------------------------------------------------------------------------


def test_edit_latents_changes_only_the_chosen_dim_shift_and_set():
    z = latents_from_seed(23231, 8)
    dims, values = [20, 50, 90], [-10.0, 0.0, 10.0]
    for mode in ("shift", "set"):
        e = edit_latents(z, dims, values, mode)
        assert e.shape == (3, 3, 8, 100) and e.dtype == z.dtype
        for i, d in enumerate(dims):
            others = [k for k in range(100) if k != d]
            for j, v in enumerate(values):
                assert torch.equal(e[i, j][:, others], z[:, others])  # exactly untouched
                expect = z[:, d] + v if mode == "shift" else torch.full((8,), v)
                assert torch.equal(e[i, j][:, d], expect)
    assert torch.equal(edit_latents(z, [20], [0.0], "shift")[0, 0], z)  # shift 0 = z itself


def test_edit_latents_together_is_seed_001s_code():
    z = latents_from_seed(23231, 8)
    mylist1, mychange = [0, 20, 40, 60, 80], [-1, 5, 10]
    e = edit_latents(z, mylist1, mychange, "set", together=True)
    assert e.shape == (1, 3, 8, 100)
    for j, change in enumerate(mychange):  # the seed's loop, on a copy: temp = z aliased z
        temp = z.clone()
        for i in range(0, 8):
            temp[i][mylist1] = change
        assert torch.equal(e[0, j], temp)
    shifted = edit_latents(z, [3, 4], [2.0], "shift", together=True)[0, 0]
    assert torch.equal(shifted[:, [3, 4]], z[:, [3, 4]] + 2)
    assert torch.equal(shifted[:, 5:], z[:, 5:])


def test_edit_latents_leaves_its_input_alone():
    z = latents_from_seed(1, 4)
    before = z.clone()
    edit_latents(z, [0, 1], [7.0], "set")
    edit_latents(z, [0, 1], [7.0], "set", together=True)
    assert torch.equal(z, before)


@pytest.mark.parametrize(("dims", "values", "mode", "message"), [
    ([120], [1.0], "shift", "dim 120 is out of range for z of size 100 (0..99)"),
    ([-1], [1.0], "shift", "dim -1 is out of range for z of size 100 (0..99)"),
    ([20, 20], [1.0], "shift", "dim 20 is listed twice: give each dim once"),
    ([], [1.0], "set", "give at least one latent dim to edit, e.g. --dims 20,50"),
    ([1.5], [1.0], "set", "dim 1.5 is not an integer: dims are indices into z"),
    ([1], [], "set", "give at least one value to shift or set the dims to, e.g. -10,0,10"),
    ([1], [math.nan], "set", "edit value nan is not a finite number: use ordinary numbers"),
    ([1], [1.0], "scale", "edit mode must be 'shift' or 'set', got 'scale'"),
])
def test_edit_latents_rejects_bad_input_in_one_line(dims, values, mode, message):
    with pytest.raises(UserError) as e:
        edit_latents(latents_from_seed(0, 2), dims, values, mode)
    assert str(e.value) == message


def test_edits_on_a_known_generator_change_exactly_what_they_should():
    G = HalvesG().eval()
    z = latents_from_seed(23231, 8)
    original = generate_images(G, z)
    images = generate_edits(G, edit_latents(z, [0, 1, 5], [-3.0, 0.0, 3.0], "shift"))
    assert images.shape == (3, 3, 8, 28, 28) and images.dtype == np.uint8
    mean, changed = change_stats(images, original)
    assert mean.shape == changed.shape == (3, 3)
    assert np.array_equal(images[:, 1], np.broadcast_to(original, (3, 8, 28, 28)))  # +0 rows
    assert (mean[:, 1] == 0).all() and (changed[:, 1] == 0).all()
    assert (mean[2] == 0).all() and (changed[2] == 0).all()  # dim 5 does nothing here
    assert (changed[0, [0, 2]] == 8).all() and (changed[1, [0, 2]] == 8).all()
    # dim 0 moves only the top half, dim 1 only the bottom half
    assert np.array_equal(images[0, 2, :, 14:], original[:, 14:])
    assert not np.array_equal(images[0, 2, :, :14], original[:, :14])
    assert np.array_equal(images[1, 0, :, :14], original[:, :14])
    # shift up brightens (tanh is increasing), shift down darkens
    assert (images[0, 2, :, 0, 0] >= original[:, 0, 0]).all()
    assert (images[0, 0, :, 0, 0] <= original[:, 0, 0]).all()


def test_row_labels():
    assert row_label([20], -10.0, "shift") == "z[20] - 10"
    assert row_label([20], 0.0, "shift") == "z[20] + 0"
    assert row_label([20], 2.5, "shift") == "z[20] + 2.5"
    assert row_label([20], 5.0, "set") == "z[20] = 5"
    assert row_label([0, 20, 40], -1.0, "set") == "z[0,20,40] = -1"


def test_edit_figure_has_a_labelled_panel_per_dim():
    imgs = np.zeros((2, 3, 8, 28, 28), dtype=np.uint8)
    fig = edit_figure(imgs, [20, 50], [-10, 0, 10], "shift", "title", np.ones((2, 3)))
    axes = [ax for ax in fig.axes if ax.get_images()]
    assert len(axes) == 2
    assert [t.get_text() for t in axes[0].get_yticklabels()] == [
        "z[20] - 10", "z[20] + 0", "z[20] + 10"]
    assert axes[1].get_title(loc="left") == "dim 50 (shift)"
    with pytest.raises(ValueError):
        edit_figure(imgs[:1], [20, 50], [-10, 0, 10], "shift", "title")


# --- the seeds' choices -----------------------------------------------------------------------


def test_seed_edits_are_the_lab_specs_e4_choices():
    want = {  # lab-spec E4
        "seed000": ([20, 50, 60, 70, 90], [-10, 0, 10], "shift", False),
        "seed001": ([0, 20, 40, 60, 80], [-1, 5, 10], "set", False),
        "seed001-together": ([0, 20, 40, 60, 80], [-1, 5, 10], "set", True),
        "seed002": ([1, 20, 40, 60, 80], [-2, 0, 2], "shift", False),
        "seed003": ([5, 25, 45, 65, 85], [-3, 0, 3], "set", False),
    }
    assert set(SEED_EDITS) == set(want)
    for name, (dims, values, mode, together) in want.items():
        p = preset_edit(name)
        assert (p["dims"], p["values"], p["mode"], p["together"]) == (dims, values, mode,
                                                                       together)
        assert p["seed"] == 23231 and p["n"] == 8
    # seed 002's "15 (random vectors) x 8 (images per vector) = 120 images": 15 edited
    # vectors (5 dims x 3 shifts) of 8 samples each
    p = preset_edit("seed002")
    e = edit_latents(latents_from_seed(p["seed"], p["n"]), p["dims"], p["values"], p["mode"])
    assert e.shape[0] * e.shape[1] == 15 and e[..., 0].numel() == 120
    p["dims"].append(1)  # a copy: the table itself stays as it was
    assert SEED_EDITS["seed002"]["dims"] == [1, 20, 40, 60, 80]
    with pytest.raises(UserError, match="^unknown edit preset 'seed9': choose one of seed000, "):
        preset_edit("seed9")


def test_default_latents_are_the_seeds_exact_z():
    torch.manual_seed(23231)
    z = torch.randn(8, 100)  # seed 001's code
    assert torch.equal(latents_from_seed(23231, 8, 100), z)


# --- interpolation ----------------------------------------------------------------------------


def test_lerp_and_slerp_endpoints_are_exact_and_lerp_midpoint():
    z0, z1 = latents_from_seed(1, 1)[0], latents_from_seed(2, 1)[0]
    for f in (lerp, slerp):
        path = f(z0, z1, np.linspace(0, 1, 5))
        assert path.shape == (5, 100) and path.dtype == z0.dtype
        assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
        assert f(z0, z1, 0.5).shape == (100,)
    assert torch.allclose(lerp(z0, z1, 0.5), (z0 + z1) / 2, atol=1e-6)


def test_slerp_keeps_unit_vectors_on_the_sphere_and_lerp_does_not():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 100, generator=g)
    a, b = a / a.norm(), b / b.norm()
    t = np.linspace(0, 1, 11)
    assert torch.allclose(slerp(a, b, t).norm(dim=1), torch.ones(11), atol=1e-5)
    assert lerp(a, b, t)[5].norm() < 0.8  # the chord dips inside the sphere
    # equal angle steps: consecutive points are equally far apart
    p = slerp(a, b, t)
    gaps = (p[1:] - p[:-1]).norm(dim=1)
    assert torch.allclose(gaps, gaps.mean().expand(10), atol=1e-5)
    # rows of (N, Z) pairs are interpolated independently
    pairs = slerp(torch.stack([a, b]), torch.stack([b, a]), t)
    assert pairs.shape == (11, 2, 100) and torch.allclose(pairs[:, 0], p, atol=1e-6)


def test_slerp_falls_back_to_lerp_for_parallel_opposite_and_zero_vectors():
    a = torch.tensor([1.0, 2.0, 3.0])
    t = np.array([0.0, 0.25, 0.5, 1.0])
    for b in (3 * a, -a, torch.zeros(3)):
        got = slerp(a, b, t)
        assert torch.isfinite(got).all()
        assert torch.allclose(got, lerp(a, b, t), atol=1e-6)


def assert_same_images(a: np.ndarray, b: np.ndarray) -> None:
    """Images of the same latents generated in batches of other sizes: the GEMM kernel (and so
    the float rounding) depends on the batch size, and a pixel whose float value lies on a
    rounding boundary of to_uint8 can move by one level; nothing else may differ. (Measured on
    an Intel Xeon, 39 latent pairs, batches of 6/12 against 1/3: 0 of 122,304 pixels moved.)"""
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.01


def test_interpolation_strip_shapes_and_end_images():
    G = LinearG().eval()
    z0, z1 = latents_from_seed(1, 3), latents_from_seed(2, 3)
    one = interpolation_strip(G, z0[0], z1[0], 6, "slerp")
    assert one.shape == (6, 28, 28) and one.dtype == np.uint8
    # the strip's ends are exactly z0 and z1, and its images are G of its latents (one batch)
    lat = interpolation_latents(z0[0], z1[0], 6, "slerp")
    assert torch.equal(lat[0].float(), z0[0]) and torch.equal(lat[-1].float(), z1[0])
    assert np.array_equal(one, generate_images(G, lat.float()))
    # so the end images are G(z0) and G(z1) generated alone, to float rounding
    assert_same_images(one[0], generate_images(G, z0[:1])[0])
    assert_same_images(one[-1], generate_images(G, z1[:1])[0])
    many = interpolation_strip(G, z0, z1, 4, "lerp")
    assert many.shape == (3, 4, 28, 28)
    lat = interpolation_latents(z0, z1, 4, "lerp")
    assert torch.equal(lat[0].float(), z0) and torch.equal(lat[-1].float(), z1)
    assert_same_images(many[:, 0], generate_images(G, z0))
    assert_same_images(many[:, -1], generate_images(G, z1))
    with pytest.raises(UserError, match=r"^--steps must be at least 2 \(the two end points\)"):
        interpolation_strip(G, z0[0], z1[0], 1)
    with pytest.raises(UserError, match="^interpolation method must be slerp or lerp, got 'x'$"):
        interpolation_strip(G, z0[0], z1[0], 3, "x")


# --- class directions and walks ---------------------------------------------------------------


def test_resolve_class_names_and_indices():
    assert resolve_class("shirt") == 6 and resolve_class("Shirt") == 6  # not T-shirt/top
    assert resolve_class("trouser") == 1 and resolve_class("Trousers") == 1
    assert resolve_class("T-shirt/top") == 0 and resolve_class("t-shirt") == 0
    assert resolve_class("ankle boot") == 9 and resolve_class("Ankle-Boot") == 9
    assert resolve_class(3) == 3 and resolve_class("7") == 7
    with pytest.raises(UserError) as e:
        resolve_class("hat")
    assert str(e.value) == ("unknown class 'hat': use one of T-shirt/top, Trouser, Pullover, "
                            "Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot (any case) or "
                            "an index 0..9")
    with pytest.raises(UserError, match=r"^class index 10 is out of range"):
        resolve_class("10")


def test_class_direction_points_along_the_dim_the_classifier_reads():
    G = HalvesG().eval()
    d = class_direction(G, 100, BrightnessClassifier(), "shirt", "trouser", n=2048, seed=0)
    assert d.shape == (100,)
    # B = z0 >= 0, A = z0 < 0: mean difference on dim 0 ~ 2 * E|z| = 1.6, the rest is noise
    assert 1.45 < d[0] < 1.75
    assert d[1:].abs().max() < 0.25
    z = latents_from_seed(0, 2048)  # exactly: the difference of the two halves' means
    expect = z[z[:, 0] >= 0].mean(0) - z[z[:, 0] < 0].mean(0)
    assert torch.allclose(d, expect, atol=1e-6)
    back = class_direction(G, 100, BrightnessClassifier(), "trouser", "shirt", n=2048, seed=0)
    assert torch.allclose(back, -d, atol=1e-6)


def test_class_direction_says_when_a_class_is_too_rare():
    G = HalvesG().eval()
    thr = 252  # tanh(z0) >= ~0.976: z0 > ~2.2, about 1.4 % of samples
    k = int((generate_images(G, latents_from_seed(0, 400))[:, 0, 0] >= thr).sum())
    assert 0 < k < 10
    with pytest.raises(UserError) as e:
        find_class_direction(G, 100, BrightnessClassifier(threshold=thr), "shirt", "trouser",
                             n=400)
    more = max(1600, math.ceil(20 / (k / 400)))
    assert str(e.value) == (
        f"only {k} of 400 generated samples are classified as Trouser (need at least 10): "
        f"sample more latents (--direction-n {more}) or use a better-trained generator")
    with pytest.raises(UserError, match=r"^the two classes are the same \(Shirt\)"):
        find_class_direction(G, 100, BrightnessClassifier(), "shirt", 6)


def test_walk_shapes_and_step_zero_is_the_original():
    G = HalvesG().eval()
    z = latents_from_seed(23231, 8)
    d = torch.zeros(100)
    d[0] = 1.0
    imgs = walk(G, z, d, [-2.0, 0.0, 2.0])
    assert imgs.shape == (3, 8, 28, 28) and imgs.dtype == np.uint8
    assert np.array_equal(imgs[1], generate_images(G, z))
    assert (imgs[2, :, 0, 0] >= imgs[1, :, 0, 0]).all()  # + direction brightens the top
    assert np.array_equal(imgs[0, :, 14:], imgs[2, :, 14:])  # the bottom never moves
    assert walk(G, z[0], d, [1.0]).shape == (1, 1, 28, 28)


def test_parse_steps():
    assert parse_steps("-3:3:7") == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    assert parse_steps("0,0.5,2") == [0.0, 0.5, 2.0]
    for bad in ("a:b:c", "1:2", "1:2:0", "x,y"):
        with pytest.raises(UserError) as e:
            parse_steps(bad)
        assert str(e.value) == ("--steps must be START:STOP:COUNT (e.g. -3:3:7) or numbers "
                                f"separated by commas, got '{bad}'")


# --- the `latent` command end to end ----------------------------------------------------------


def test_cli_edit_preset_writes_figures_images_and_record(parser, trained, capsys, tmp_path):
    runs, run = trained
    out = tmp_path / "e4"
    assert latent(parser, "edit", "tiny", "--runs-dir", str(runs), "--preset", "seed000",
                  "--out", str(out)) == 0
    printed = capsys.readouterr().out
    names = ["edits.png"] + [f"dim-{d:03d}.png" for d in (20, 50, 60, 70, 90)]
    for name in [*names, "edits.npy", "z.npy", "edits.json"]:
        assert (out / name).is_file(), name
    assert printed.splitlines()[0] == (f"wrote {out}/: {', '.join(names)}, edits.npy, z.npy, "
                                       "edits.json")
    assert printed.splitlines()[1].split() == ["DIMS", "EDIT", "MEAN_ABS_CHANGE", "CHANGED"]
    assert "20    z[20] + 0   0.00             0/8" in printed
    w, h = Image.open(out / "edits.png").size
    assert 700 < w < 1300 and 1200 < h < 2000  # 5 panels of 3 x 8 images, ~80 px each
    w1, h1 = Image.open(out / "dim-020.png").size
    assert w1 == w and 250 < h1 < 500

    rec = json.loads((out / "edits.json").read_text())
    assert rec["dims"] == [20, 50, 60, 70, 90] and rec["values"] == [-10.0, 0.0, 10.0]
    assert rec["mode"] == "shift" and rec["together"] is False
    assert rec["run"] == "tiny" and rec["epoch"] is None and rec["epochs_done"] == 1
    assert rec["z"] == {"source": "seed", "seed": 23231, "n": 8,
                        "code": "torch.manual_seed(23231); torch.randn(8, 100)"}
    assert rec["z_shape"] == [8, 100] and rec["images"]["shape"] == [5, 3, 8, 28, 28]
    assert len(rec["rows"]) == 15
    zero = [r for r in rec["rows"] if r["value"] == 0]
    assert all(r["mean_abs_change"] == 0 and r["changed"] == 0 for r in zero)
    assert all(r["changed"] > 0 for r in rec["rows"] if r["value"] != 0)

    # the pixels are G(edited z) for the seeds' z, and the +0 rows are G(z) bit for bit
    images = np.load(out / "edits.npy")
    G = load_generator(run)
    z = torch.from_numpy(np.load(out / "z.npy"))
    torch.manual_seed(23231)
    assert torch.equal(z, torch.randn(8, 100))
    original = generate_images(G, z)
    assert np.array_equal(images[:, 1], np.broadcast_to(original, images[:, 1].shape))
    edited = z.clone()
    edited[:, 60] += 10
    assert np.array_equal(images[2, 2], generate_images(G, edited))


def test_cli_edit_set_together_default_folder_and_z_file(parser, trained, capsys, tmp_path):
    runs, run = trained
    assert latent(parser, "edit", "tiny", "--runs-dir", str(runs), "--dims", "0,20",
                  "--set=-1,5", "--together", "-n", "3", "--seed", "7") == 0
    out = run.figures / "latent-edit-set-together-0-20"
    assert sorted(p.name for p in out.iterdir()) == ["edits.json", "edits.npy", "edits.png",
                                                     "z.npy"]
    assert np.load(out / "edits.npy").shape == (1, 2, 3, 28, 28)
    assert "0,20  z[0,20] = -1" in capsys.readouterr().out
    zf = tmp_path / "z.npy"
    np.save(zf, latents_from_seed(5, 2).numpy())
    assert latent(parser, "edit", "tiny", "--runs-dir", str(runs), "--dims", "3",
                  "--shift", "1", "--z", str(zf), "--out", str(tmp_path / "zf")) == 0
    rec = json.loads((tmp_path / "zf" / "edits.json").read_text())
    assert rec["z"]["source"] == "file" and rec["z_shape"] == [2, 100]


def test_cli_edit_errors_are_one_line(parser, trained, tmp_path):
    runs, _ = trained
    base = ("edit", "tiny", "--runs-dir", str(runs))
    assert user_error(parser, *base, "--dims", "20", "--shift=a,b") == (
        "--shift must be numbers separated by commas, got 'a,b'")
    assert user_error(parser, *base, "--dims", "20,x", "--set=1") == (
        "--dims must be integers separated by commas, got '20,x'")
    assert user_error(parser, *base, "--dims", "120", "--shift=1") == (
        "dim 120 is out of range for z of size 100 (0..99)")
    assert user_error(parser, *base, "--dims", "1", "--shift=1", "--set=2") == (
        "argument --set: not allowed with argument --shift "
        "(see `ganscope latent edit --help`)")
    assert user_error(parser, *base, "--dims", "1") == (
        "give --shift V,... or --set V,... (e.g. --shift -10,0,10), or --preset NAME")
    assert user_error(parser, *base, "--dims", "1", "--shift") == (
        "--shift needs a value, e.g. --shift -10,0,10 or --shift=-10,0,10")
    assert user_error(parser, *base, "--preset", "seed000", "--dims", "1") == (
        "--preset sets dims, values, mode and --together: do not combine it with --dims, "
        "--shift, --set or --together")
    assert user_error(parser, *base, "--preset", "seed7").startswith(
        "unknown edit preset 'seed7'")
    assert user_error(parser, *base, "--dims", "1", "--set=1", "--z", "z.npy", "-n", "2") == (
        "give --z FILE.npy or --seed/-n, not both")
    assert user_error(parser, "edit", "nope", "--runs-dir", str(runs), "--dims", "1",
                      "--set=1").startswith("no run named 'nope'")
    assert user_error(parser, *base, "--dims", "1", "--set=1", "--out", "e.png") == (
        "--out e.png must be a folder: the edit writes edits.png, dim-NNN.png, edits.npy, "
        "z.npy and edits.json into it")
    assert user_error(parser, *base, "--dims", "1", "--set=1", "--epoch", "7") == (
        "run 'tiny' has no generator for epoch 7: available 1")
    assert user_error(parser) == (
        "give a subcommand: edit, interp, walk, probe or check (see `ganscope latent --help`)")
    # a run that has not finished an epoch: the generator loader's own RunError
    Run.create(load_config("e1-mlp"), runs, "empty")
    with pytest.raises(RunError, match="^run 'empty' has no checkpoint yet"):
        latent(parser, "edit", "empty", "--runs-dir", str(runs), "--dims", "1", "--set=1",
               "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_cli_interp_and_walk(parser, trained, capsys, tmp_path, monkeypatch):
    runs, run = trained
    png = tmp_path / "interp.png"
    assert latent(parser, "interp", "tiny", "--runs-dir", str(runs), "--from-seed", "1",
                  "--to-seed", "2", "--steps", "5", "-n", "2", "--out", str(png)) == 0
    assert capsys.readouterr().out.strip() == (
        f"wrote {png} (2 strips of 5 images, slerp seed 1 -> seed 2)")
    w, h = Image.open(png).size
    assert 500 < w < 800 and 200 < h < 400
    assert user_error(parser, "interp", "tiny", "--runs-dir", str(runs), "--from-seed", "1",
                      "--to-seed", "2", "--out", str(tmp_path / "a.jpg")) == (
        f"--out must be a .png file, got {tmp_path / 'a.jpg'}")

    # the real classifier would find no trousers in a 1-epoch generator: use one that
    # splits the samples by their pixel sum's parity, so both classes are common
    class Parity:
        def extract(self, images, batch_size=1000, progress=False):
            odd = (images.reshape(len(images), -1).long().sum(1) % 2 == 1).numpy()
            probs = np.zeros((len(images), 10), dtype=np.float32)
            probs[odd, 1], probs[~odd, 6] = 1.0, 1.0
            return np.zeros((len(images), 128), dtype=np.float32), probs

    import ganscope.latent.interpolate as interpolate

    monkeypatch.setattr(interpolate, "load_extractor", lambda device="cpu": Parity())
    assert latent(parser, "walk", "tiny", "--runs-dir", str(runs), "--from", "shirt", "--to",
                  "Trouser", "--steps=-1:1:3", "-n", "4", "--direction-n", "256") == 0
    out = capsys.readouterr().out.splitlines()
    path = run.figures / "latent-walk-shirt-trouser.png"
    assert out[0] == f"wrote {path}" and path.is_file()
    assert out[1].startswith("direction Shirt -> Trouser: class-mean distance ")
    assert out[2].split() == ["STEP", "%SHIRT", "%TROUSER"]
    assert [r.split()[0] for r in out[3:]] == ["-1", "+0", "+1"]
    assert user_error(parser, "walk", "tiny", "--runs-dir", str(runs), "--from", "hat",
                      "--to", "shirt").startswith("unknown class 'hat'")
    assert user_error(parser, "walk", "tiny", "--runs-dir", str(runs), "--from", "shirt",
                      "--to", "trouser", "--steps") == (
        "--steps needs a value, e.g. --steps -3:3:7 or --steps=-3:3:7")
