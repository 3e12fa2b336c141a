"""Comparisons over seeds (grouping, statistics on known numbers, the note, `ganscope compare`)
and the HTML reports' content (self-contained, numbers from the run's files)."""

from __future__ import annotations

import json
import re

import pytest

from ganscope.cli import main
from ganscope.config import RunConfig, apply_overrides
from ganscope.experiments import compare as C
from ganscope.report import html as H
from ganscope.training.run import Run

REF = {"dataset": "fashion-mnist", "split": "test", "n": 64, "images_sha256": "ab" * 32}
EX = {"name": "fmnist-cnn-v1", "sha256": "cd" * 32}


def run_cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def fake_run(root, name, seed, fids, over=(), loss_d=1.0):
    """A run directory with hand-made events and metrics: FID per epoch as given."""
    cfg = apply_overrides(RunConfig(), [f"seed={seed}", f"train.epochs={len(fids)}", *over])
    run = Run.create(cfg, root, name)
    run.update_meta(status="completed", epochs_done=len(fids), d_output="probability")
    run.append_events([{"step": 2 * e + i + 1, "epoch": e + 1, "it": i, "loss_d": loss_d + i + 0.01 * seed,
                        "loss_g": 2.0, "d_x": 0.6, "d_g_z": 0.4}
                       for e in range(len(fids)) for i in range(2)])
    run.append_metrics([{"epoch": e + 1, "metrics": {"fid": f, "recall": 0.1 * seed,
                                                     "class_hist": [0.1] * 10},
                         "extractor": EX, "reference": REF, "n_real": 64, "n_fake": 64,
                         "seed": 0, "checkpoint": f"checkpoints/G-epoch-{e + 1:04d}.pt",
                         "time": "t"} for e, f in enumerate(fids)])
    return run


@pytest.fixture
def two_configs(tmp_path):
    root = tmp_path / "runs"
    a = [fake_run(root, f"a{s}", s, [50.0, f]) for s, f in zip((0, 1, 2), (10.0, 12.0, 14.0))]
    b = [fake_run(root, f"b{s}", s, [60.0, f], over=["optim.lr=1e-3"], loss_d=3.0)
         for s, f in zip((0, 1), (20.0, 22.0))]
    return root, a, b


def test_runs_group_by_config_apart_from_the_seed(two_configs):
    _, a, b = two_configs
    groups = C.group_runs([a[0], b[0], a[1], b[1], a[2]])
    assert [g.label for g in groups] == ["custom (optim.lr=0.0002)", "custom (optim.lr=0.001)"]
    assert [[r.name for r in g.runs] for g in groups] == [["a0", "a1", "a2"], ["b0", "b1"]]


def test_compare_statistics_on_known_numbers(two_configs):
    _, a, b = two_configs
    res = C.compare_groups(C.group_runs(a + b))
    ga, gb = res["groups"]
    fid = ga["metrics"]["fid"]
    # final FIDs 10, 12, 14: mean 12, sample std 2, t(0.975, 2) = 4.302652730,
    # half width 4.302652730 * 2 / sqrt(3) = 4.968275
    assert fid["values"] == [10.0, 12.0, 14.0]
    assert (fid["n"], fid["mean"], fid["std"]) == (3, 12.0, 2.0)
    assert fid["lo"] == pytest.approx(12 - 4.968275, abs=1e-6)
    assert fid["hi"] == pytest.approx(12 + 4.968275, abs=1e-6)
    # 20, 22: mean 21, std sqrt(2), t(0.975, 1) = 12.7062047 -> half width 12.7062047
    g = gb["metrics"]["fid"]
    assert (g["mean"], g["lo"], g["hi"]) == pytest.approx((21.0, 21 - 12.7062047,
                                                           21 + 12.7062047))
    assert ga["metrics"]["best_fid"]["values"] == [10.0, 12.0, 14.0]
    assert ga["metrics"]["loss_d"]["mean"] == pytest.approx(1.51)  # last epoch's events
    assert "class_hist" not in ga["metrics"]
    assert res["metrics"][:3] == ["fid", "best_fid", "recall"]
    pair = next(p for p in res["pairs"] if p["metric"] == "fid")
    assert pair["overlap"] is True  # [7.0, 17.0] and [8.3, 33.7]
    # Welch: t = -9 / sqrt(4/3 + 2/2) = -5.892, df = (7/3)^2 / ((4/3)^2/2 + 1) = 2.882
    assert pair["welch_p"] == pytest.approx(0.0109071, rel=1e-5)
    head, rows = C.table(res)
    assert head == ["METRIC", "CONFIG", "SEEDS", "MEAN ± STD [95% CI]"]
    assert rows[0] == ["FID", "custom (optim.lr=0.0002)", "3", "12.00 ± 2.00 [7.03, 16.97]"]
    notes = C.significance_notes(res)
    assert notes[0] == ("FID (lower is better): overlap, not distinguishable at this number of "
                        "seeds: custom (optim.lr=0.0002) ~ custom (optim.lr=0.001) "
                        "(Welch p=0.011)")
    loss = next(n for n in notes if n.startswith("loss D"))
    assert loss.startswith("loss D (last epoch): intervals disjoint: custom (optim.lr=0.0002) "
                           "< custom (optim.lr=0.001)")


def test_compare_cli_prints_runs_then_the_over_seeds_table(capsys, two_configs, tmp_path):
    root, _, _ = two_configs
    rc, out, err = run_cli(capsys, "compare", "a0", "a1", "a2", "b0", "b1", "--runs-dir",
                           str(root), "--plot", str(tmp_path / "cmp"))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["RUN", "PRESET", "EPOCH", "FID"]
    assert lines[1].split()[:4] == ["a0", "custom", "2", "10.00"]
    i = lines.index("over seeds (2 configurations with several seeds):")
    assert lines[i + 1].split()[:2] == ["METRIC", "CONFIG"]
    assert "12.00 ± 2.00 [7.03, 16.97]" in lines[i + 2]
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == {
        "summary.json", "table.csv", "bands_curves.png", "bands_metrics.png"}
    csv = (tmp_path / "cmp" / "table.csv").read_text().splitlines()
    assert csv[0] == "metric,config,seeds,mean,std,ci_lo,ci_hi"
    assert csv[1].startswith("fid,custom (optim.lr=0.0002),3,12.0,2.0,")
    # one run per config: the plain table only, and --plot says why it cannot band
    rc, out, err = run_cli(capsys, "compare", "a0", "b0", "--runs-dir", str(root))
    assert rc == 0 and "over seeds" not in out
    rc, _, err = run_cli(capsys, "compare", "a0", "b0", "--runs-dir", str(root), "--plot",
                         str(tmp_path / "x"))
    assert rc == 2 and err == ("error: --plot needs at least two runs of one configuration "
                               "(different seeds) or a sweep\n")


def test_compare_a_sweep_directory(capsys, tmp_path):
    """A hand-made sweep: sweep.json plus runs named after its cells."""
    from ganscope.experiments.sweep import make_spec

    spec = make_spec("e1-mlp", [], ["optim.lr=1e-4,1e-3"], "0-1")
    sw = tmp_path / "sw"
    sw.mkdir()
    (sw / "sweep.json").write_text(json.dumps(spec))
    fake_run(sw / "runs", "lr-1e-4-s0", 0, [30.0, 10.0], over=["optim.lr=1e-4"])
    fake_run(sw / "runs", "lr-1e-4-s1", 1, [30.0, 11.0], over=["optim.lr=1e-4"])
    fake_run(sw / "runs", "lr-1e-3-s0", 0, [30.0, 40.0], over=["optim.lr=1e-3"])
    rc, out, err = run_cli(capsys, "compare", str(sw))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "sw: 2 configurations, 3 runs (1 not started yet)"
    assert lines[2].split() == ["FID", "lr-1e-4", "2", "10.50", "±", "0.71", "[4.15,", "16.85]"]
    assert lines[3].split() == ["FID", "lr-1e-3", "1", "40.00", "(1", "seed)"]
    assert "  FID (lower is better): no verdict (one seed, or no spread over seeds): " \
           "lr-1e-4 / lr-1e-3" in lines
    assert lines[-1] == (f"wrote {sw / 'compare'}/: summary.json, table.csv, bands_curves.png, "
                         "bands_metrics.png")
    got = json.loads((sw / "compare" / "summary.json").read_text())
    assert got["groups"][0]["metrics"]["fid"]["values"] == [10.0, 11.0]
    assert got["groups"][1]["missing"] == ["lr-1e-3-s1"]
    rc, out, _ = run_cli(capsys, "compare", str(sw), "--json")
    assert json.loads(out)["groups"][0]["label"] == "lr-1e-4"
    rc, _, err = run_cli(capsys, "compare", str(sw), str(sw / "runs" / "lr-1e-4-s0"))
    assert rc == 2 and err == "error: give sweep directories or runs to compare, not both\n"


def test_run_report_is_self_contained_and_holds_the_files_numbers(capsys, two_configs, tmp_path):
    root, a, _ = two_configs
    rc, out, err = run_cli(capsys, "report", "a1", "--runs-dir", str(root))
    assert rc == 0, err
    path = a[1].path / "report.html"
    assert out.startswith(f"wrote {path} (")
    doc = path.read_text()
    assert not re.search(r"https?://", doc)
    assert "<script" not in doc and "<link" not in doc
    srcs = re.findall(r'<img src="([^"]*)"', doc)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    for rec in a[1].read_metrics():
        assert f'data-key="fid" data-value="{rec["metrics"]["fid"]!r}">' \
               f'{rec["metrics"]["fid"]:.2f}</td>' in doc
    assert "train:\n  epochs: 2" in doc  # the saved config.yaml, verbatim
    assert 'id="provenance"' in doc and 'id="diagnostics"' in doc
    rc, _, err = run_cli(capsys, "report", "a1", "--runs-dir", str(root), "--out", "x.txt")
    assert rc == 2 and err == ("error: --out x.txt: a report is one HTML file, give a name "
                               "ending in .html\n")
    rc, _, err = run_cli(capsys, "report", "ghost", "--runs-dir", str(root))
    assert rc == 2 and err.startswith("error: no run named 'ghost'")


def test_text_that_quotes_a_web_address_holds_no_url():
    assert H.esc("see https://example.org/x and HTTP://a") == (
        "see https&#58;//example.org/x and HTTP&#58;//a")
    with pytest.raises(ValueError):
        H.link("x", "https://example.org")
    table = H.table(["a", "b"], [[1.5, "x<y"]])
    assert '<td class="num" data-value="1.5">1.5</td><td>x&lt;y</td>' in table
