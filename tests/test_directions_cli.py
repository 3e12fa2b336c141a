"""Walking and measuring directions: the measurement on a generator with a planted direction and
planted scores (the target's curve rises monotonically, a planted side effect appears with its
sign and size, the distance grows with |step|); the face presets; and `ganscope directions
find|walk|list` end to end on a tiny face run trained on a tiny synthetic CelebA folder, with
every expected failure one pinned line and exit code 2."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganscope.cli import main
from ganscope.config import RunConfig, load_config
from ganscope.directions.interfacegan import project_out
from ganscope.directions.measure import measure_walk, monotonicity, spearman, walk_latents
from ganscope.domains.faces.attributes import ATTRIBUTES
from ganscope.training.run import Run

Z = 16
STEPS = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


W = unit(np.random.default_rng(5).standard_normal(Z))  # the planted direction
P = unit(project_out(np.random.default_rng(6).standard_normal(Z), [W]))  # orthogonal to it


class LinearImageG(nn.Module):
    """x = reshape(M z), 3x4x4: every linear function of z is one of the image."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(Z, 48, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(
                np.random.default_rng(0).standard_normal((48, Z)) / 4))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z).view(-1, 3, 4, 4)


COLUMNS = ["Male", "Up", "Down", "Flat"]


def planted_scorer(G: LinearImageG):
    """Scores read off the images only (p = M (M^T M)^-1 w gives p.x = w.z):
    Male = sigmoid(3 w.z) (the target), Up = 0.1 (0.6 w + 0.8 p).z, Down = -0.2 w.z,
    Flat = p.z. Walking along w by s moves Up by 0.06 s, Down by -0.2 s, Flat not at all."""
    M = G.fc.weight.detach().double().numpy()

    def through(w):
        return M @ np.linalg.solve(M.T @ M, w)

    proj = torch.from_numpy(np.stack([through(W), through(0.6 * W + 0.8 * P), through(P)], 1))

    def score(x: torch.Tensor) -> torch.Tensor:
        v = x.reshape(x.shape[0], -1).double() @ proj
        return torch.stack([torch.sigmoid(3 * v[:, 0]), 0.1 * v[:, 1], -0.2 * v[:, 0], v[:, 2]],
                           1)

    return score


def flat_features(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


@pytest.fixture(scope="module")
def planted_walk():
    G = LinearImageG()
    z = torch.from_numpy(np.random.default_rng(1).standard_normal((400, Z))).float()
    return measure_walk(G, z, W * 7.0, STEPS, planted_scorer(G), COLUMNS, target="Male",
                        features=flat_features, n_strip=3)


def test_walk_latents_use_the_unit_direction():
    z = torch.zeros(2, Z)
    zs = walk_latents(z, W * 5, [-1.0, 2.0])
    assert zs.shape == (2, 2, Z)
    assert torch.allclose(zs[1, 0], torch.from_numpy(2 * W).float(), atol=1e-6)
    with pytest.raises(ValueError):
        walk_latents(z, np.zeros(Z), [1.0])


def test_target_curve_rises_monotonically(planted_walk):
    m = planted_walk
    male = m.curve[:, 0]
    assert np.all(np.diff(male) > 0)
    assert male[0] < 0.1 and male[-1] > 0.9  # sigmoid(3 (w.z - 3)) is mostly 0, then mostly 1
    mono = m.monotonicity
    assert mono["monotonic"] and mono["non_increasing_steps"] == 0
    assert mono["spearman"] == pytest.approx(1.0)
    assert m.monotone_share == 1.0  # every sample's own curve rises


def test_planted_side_effects_show_with_sign_and_size(planted_walk):
    se = planted_walk.side_effects()
    d = se["delta"]
    assert d["Up"] == pytest.approx(0.1 * 0.6 * 6, abs=1e-4)  # +0.36
    assert d["Down"] == pytest.approx(-0.2 * 6, abs=1e-4)  # -1.2
    assert d["Flat"] == pytest.approx(0.0, abs=1e-4)
    assert se["target_delta"] == pytest.approx(d["Male"]) and d["Male"] > 0.8
    assert se["largest"] == "Down" and se["largest_delta"] == pytest.approx(-1.2, abs=1e-4)
    # skipping a column (e.g. Yaw, in other units) leaves it out of "largest"
    assert planted_walk.side_effects(skip=("Down",))["largest"] == "Up"


def test_distance_grows_with_the_size_of_the_step(planted_walk):
    m = planted_walk
    steps = np.abs(np.array(STEPS))
    for dist in (m.pixel_rms, m.feature_dist):
        assert dist[STEPS.index(0.0)] == pytest.approx(0.0, abs=1e-4)
        # a linear G: the change is s M w, so the distance is exactly proportional to |s|
        one = dist[STEPS.index(1.0)]
        assert np.allclose(dist, steps * one, rtol=1e-4, atol=1e-4)
        assert dist[0] == pytest.approx(dist[-1], rel=1e-4)
    assert m.pixel_ref > 0 and m.feature_ref > 0


def test_walking_backwards_falls(planted_walk):
    G = LinearImageG()
    z = torch.from_numpy(np.random.default_rng(1).standard_normal((100, Z))).float()
    m = measure_walk(G, z, -W, STEPS, planted_scorer(G), COLUMNS, target="Male")
    mono = m.monotonicity
    assert not mono["monotonic"] and mono["non_increasing_steps"] == 6
    assert mono["spearman"] == pytest.approx(-1.0) and m.monotone_share == 0.0
    assert m.feature_dist is None and m.strip.numel() == 0


def test_strip_frames_and_json(planted_walk):
    m = planted_walk
    assert m.strip.shape == (7, 3, 3, 4, 4) and m.strip.dtype == torch.uint8
    js = m.to_json()
    assert js["curve"]["Male"] == [round(float(v), 6) for v in m.curve[:, 0]]
    assert js["side_effects"]["largest"] == "Down" and js["monotonicity"]["monotonic"]
    assert js["distance"]["pixel_rms_relative"][3] == 0.0
    json.dumps(js)  # serialisable


def test_monotonicity_and_spearman_by_hand():
    r = monotonicity([0, 1, 2, 3, 4], [0.1, 0.3, 0.3, 0.5, 0.4])
    assert r["non_increasing_steps"] == 2 and not r["monotonic"]
    assert r["smallest_rise"] == pytest.approx(-0.1)
    assert monotonicity([2, 0, 1], [0.9, 0.1, 0.5])["monotonic"]  # sorted by step first
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0
    assert spearman([1, 2, 3, 4], [1, 1, 2, 3]) == pytest.approx(0.9486832980505138)


def test_measure_rejects_an_unknown_target():
    G = LinearImageG()
    with pytest.raises(ValueError):
        measure_walk(G, torch.zeros(2, Z), W, [0, 1], planted_scorer(G), COLUMNS, target="Age")


# ----------------------------------------------------------------------------------------------
# The face presets


def test_face_presets():
    cpu, gpu = load_config("e6-faces").validate(), load_config("e6-faces-gpu").validate()
    for c, model, size in ((cpu, "dcgan32", 32), (gpu, "dcgan64", 64)):
        assert (c.data.name, c.data.image_size, c.data.crop) == ("celeba", size, 0.8)
        assert (c.model.name, c.model.init, c.loss.name) == (model, "dcgan", "bce")
        assert (c.optim.name, c.optim.lr, c.optim.betas) == ("adam", 2e-4, (0.5, 0.999))
    assert gpu.model.g_hidden == () and gpu.train.device == "auto"


def test_face_model_and_image_size_must_agree(tmp_path, capsys):
    rc = main(["train", "e6-faces", "--runs-dir", str(tmp_path / "runs"), "--set",
               "data.image_size=64", "--data-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == "error: bad config: model dcgan32 needs data.image_size=32, not 64\n"
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------------------------
# The CLI on a tiny face run

TINY = ["--set", "train.epochs=1", "--set", "train.batch_size=8", "--set", "train.n_samples=4",
        "--set", "model.g_hidden=[16, 8, 4]", "--set", "model.d_hidden=[4, 8, 16]"]


@pytest.fixture(scope="module")
def face_runs(tmp_path_factory):
    """A face run trained for 2 steps by `ganscope train e6-faces` on 16 synthetic CelebA
    images; the runs dir holds it as 'faces'."""
    from test_celeba import make_celeba

    root = tmp_path_factory.mktemp("faces")
    data = make_celeba(root / "celeba", n=16, size=(89, 109))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANSCOPE_CACHE", str(root / "cache"))
        mp.delenv("GANSCOPE_CELEBA", raising=False)
        rc = main(["train", "e6-faces", "--data-dir", str(data), "--runs-dir",
                   str(root / "runs"), "--name", "faces", "--no-progress", *TINY])
    assert rc == 0
    return root / "runs"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_plot_and_generate_a_face_run(face_runs, capsys, tmp_path):
    run = Run(face_runs / "faces")
    assert run.meta()["status"] == "completed" and len(run.read_events()) == 2
    grid = Image.open(run.sample_grid(1))
    assert grid.mode == "RGB" and grid.size == ((2 * 34 + 2) * 2,) * 2
    rc, out, _ = cli(capsys, "plot", "faces", "--runs-dir", str(face_runs))
    assert rc == 0 and "losses.png" in out
    rc, out, err = cli(capsys, "generate", "faces", "--runs-dir", str(face_runs), "-n", "4",
                       "--out", str(tmp_path / "g.png"))
    assert rc == 0, err
    assert Image.open(tmp_path / "g.png").mode == "RGB"


def test_find_list_and_walk(face_runs, capsys, tmp_path):
    runs = ["--runs-dir", str(face_runs), "--no-progress"]
    rc, out, err = cli(capsys, "directions", "find", "faces", "--method", "interfacegan",
                       "--attr", "male,Smiling", "-n", "200", *runs)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "METHOD", "ATTRIBUTE", "QUALITY", "CORR"]
    assert lines[1].startswith("male ") and "interfacegan" in lines[1] and "Male" in lines[1]
    assert "boundary acc" in lines[1] and lines[2].startswith("smiling ")
    assert "the 200 generated faces, labelled: Male " in out and "Yaw " in out
    d = face_runs / "faces" / "directions"
    assert {p.name for p in d.glob("*.json")} == {"male.json", "smiling.json"}
    male = json.loads((d / "male.json").read_text())
    assert male["method"] == "interfacegan" and male["attribute"] == "Male"
    assert male["z_dim"] == 100 and male["details"]["n_samples"] == 200

    for args in (["--method", "interfacegan-cond", "--attr", "Young", "--condition", "Male"],
                 ["--method", "mean", "--attr", "Young"],
                 ["--method", "sefa", "--attr", "Yaw", "--components", "3"],
                 ["--method", "ganspace", "--components", "2"]):
        rc, out, err = cli(capsys, "directions", "find", "faces", *args, "-n", "200", *runs)
        assert rc == 0, (args, err)
    names = {p.stem for p in d.glob("*.json")}
    assert names == {"male", "smiling", "young-without-male", "young-mean", "yaw-sefa-0",
                     "yaw-sefa-1", "yaw-sefa-2", "ganspace-0", "ganspace-1"}
    sefa = json.loads((d / "yaw-sefa-0.json").read_text())
    assert sefa["attribute"] == "Yaw" and sefa["details"]["attribute_correlation"] >= 0
    rc, out, _ = cli(capsys, "directions", "list", "faces", "--runs-dir", str(face_runs))
    assert rc == 0 and len(out.splitlines()) == 10

    out_dir = tmp_path / "walks"
    rc, out, err = cli(capsys, "directions", "walk", "faces", "--direction", "male,yaw-sefa-0",
                       "--steps", "-2:2:5", "-n", "2", "--measure-n", "16", "--out",
                       str(out_dir), *runs)
    assert rc == 0, err
    assert out.splitlines()[0].split()[:2] == ["DIRECTION", "METHOD"]
    assert out.splitlines()[1].startswith("male ") and "Male " in out.splitlines()[1]
    for name, target in (("male", "Male"), ("yaw-sefa-0", "Yaw")):
        folder = out_dir / name
        assert {p.name for p in folder.iterdir()} == {"strip.png", "walk.png", "walk.gif",
                                                      "curve.csv", "walk.json"}
        strip = Image.open(folder / "strip.png")
        assert strip.size == ((5 * 34 + 2) * 3, (2 * 34 + 2) * 3) and strip.mode == "RGB"
        gif = Image.open(folder / "walk.gif")
        assert gif.n_frames == 8  # 5 steps there, 3 back
        rows = list(csv.reader((folder / "curve.csv").open()))
        assert rows[0] == ["step", *ATTRIBUTES, "Yaw", "pixel_rms", "feature_l2"]
        assert [r[0] for r in rows[1:]] == ["-2", "-1", "0", "1", "2"]
        w = json.loads((folder / "walk.json").read_text())
        s = w["summary"]
        assert w["target"] == target == s["target"] and w["n"] == 16
        assert s["target_to"] == pytest.approx(w["curve"][target][-1], abs=1e-6)
        assert isinstance(s["monotonic"], bool) and -1 <= s["spearman"] <= 1
        assert w["distance"]["pixel_rms"][2] == 0.0  # step 0 is the unedited face
        assert w["distance"]["feature_l2"][2] == 0.0
        assert set(w["side_effects"]["delta"]) == set(ATTRIBUTES) | {"Yaw"}
        if target == "Male":  # Yaw is in other units: never the "largest side effect" here
            assert s["largest_side_effect"] in ATTRIBUTES and s["largest_side_effect"] != "Male"
    rows = list(csv.reader((out_dir / "side_effects.csv").open()))
    assert rows[0] == ["direction", "target", *ATTRIBUTES, "Yaw"]
    assert [r[:2] for r in rows[1:]] == [["male", "Male"], ["yaw-sefa-0", "Yaw"]]
    assert (out_dir / "side_effects.png").is_file()
    m = json.loads((out_dir / "side_effects.json").read_text())
    assert m["rows"][0]["delta"]["Male"] == pytest.approx(float(rows[1][2]), abs=1e-4)

    # the default folder, and --steps written with '='
    rc, _, err = cli(capsys, "directions", "walk", "faces", "--direction", "young-without-male",
                     "--steps=-1,0,1", "-n", "1", "--measure-n", "4", *runs)
    assert rc == 0, err
    assert (face_runs / "faces" / "figures" / "directions" / "young-without-male"
            / "walk.json").is_file()


@pytest.fixture
def bare_face_run(face_runs, tmp_path) -> Path:
    """A copy of the face run without directions, and a Fashion-MNIST run beside it."""
    runs = tmp_path / "runs"
    shutil.copytree(face_runs / "faces", runs / "faces",
                    ignore=shutil.ignore_patterns("directions"))
    Run.create(RunConfig(), runs, "fmnist")
    return runs


def err_cases(runs: Path) -> list[tuple[list[str], str]]:
    return [
        (["directions", "walk", "nope", "--direction", "male"],
         f"no run named 'nope' in {runs}: see `ganscope runs` for the list, or give the run's "
         "path (or --runs-dir)"),
        (["directions", "find", "fmnist", "--method", "interfacegan", "--attr", "Male"],
         "run 'fmnist' trains on fashion-mnist, not celeba: directions are found and measured "
         "with the CelebA attribute classifier, so they need a face run (e.g. `ganscope train "
         "e6-faces`)"),
        (["directions", "walk", "fmnist", "--direction", "male"],
         "run 'fmnist' trains on fashion-mnist, not celeba: directions are found and measured "
         "with the CelebA attribute classifier, so they need a face run (e.g. `ganscope train "
         "e6-faces`)"),
        (["directions", "walk", "faces", "--direction", "male"],
         "run 'faces' has no direction 'male' (has: none); find one with `ganscope directions "
         "find faces ...`"),
        (["directions", "walk", "faces", "--direction", "Male!"],
         "bad direction name 'Male!': use lower-case letters, digits, '-' and '_' (at most 64 "
         "characters), e.g. male or smiling-sefa"),
        (["directions", "walk", "faces", "--direction", "male", "--steps", "-3:3"],
         "--steps must be START:STOP:COUNT (e.g. -3:3:7) or numbers separated by commas, got "
         "'-3:3'"),
        (["directions", "walk", "faces", "--direction", "male", "--steps", "a:b:c"],
         "--steps must be START:STOP:COUNT (e.g. -3:3:7) or numbers separated by commas, got "
         "'a:b:c'"),
        (["directions", "walk", "faces", "--direction", "male", "--steps", "2"],
         "--steps must give at least 2 finite steps, e.g. -3:3:9"),
        (["directions", "walk", "faces", "--direction", "male", "--steps"],
         "--steps needs a value, e.g. --steps -3:3:9 or --steps=-3:3:9"),
        (["directions", "find", "faces", "--method", "pca", "--attr", "Male"],
         "unknown direction method 'pca': choose one of ganspace, interfacegan, "
         "interfacegan-cond, mean, sefa"),
        (["directions", "find", "faces", "--method", "interfacegan", "--attr", "Beard"],
         "unknown attribute 'Beard': choose from " + ", ".join(ATTRIBUTES) + ", Yaw"),
        (["directions", "find", "faces", "--method", "interfacegan"],
         "interfacegan needs --attr (e.g. --attr Male,Smiling,Young)"),
        (["directions", "find", "faces", "--method", "interfacegan", "--attr", "Male",
          "--condition", "Young"],
         "--condition applies to --method interfacegan-cond only"),
        (["directions", "find", "faces", "--method", "interfacegan-cond", "--attr", "Young"],
         "interfacegan-cond needs --condition (e.g. --attr Young --condition Male)"),
        (["directions", "find", "faces", "--method", "mean", "--attr", "Male,Young", "--name",
          "x"], "--name applies to one attribute at a time"),
        (["directions", "find", "faces", "--method", "sefa", "--epoch", "7"],
         "run 'faces' has no generator for epoch 7: available 1"),
        (["directions"],
         "give a subcommand: find, walk or list (see `ganscope directions --help`)"),
    ]


def test_expected_failures_are_one_line_exit_2(bare_face_run, capsys):
    for args, line in err_cases(bare_face_run):
        rc, out, err = cli(capsys, *args, *(["--runs-dir", str(bare_face_run)]
                                            if len(args) > 1 else []))
        assert (rc, err) == (2, f"error: {line}\n"), args
        assert out == ""
    assert not (bare_face_run / "faces" / "directions").exists()
