"""Reports in a real browser: Debian's headless Chromium, driven by Playwright, opens the HTML
of a tiny real run and of a tiny sweep from file:// and checks that every figure loaded, that
nothing was fetched from anywhere, and that the tables hold the numbers of the runs' own files.
Screenshots go to the test's tmp dir and, when ``$GANSCOPE_UI_SHOTS`` is set, there too."""

from __future__ import annotations

import os
import shutil
import statistics
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): `make browser` "
                "installs it as root", allow_module_level=True)
import playwright.sync_api  # noqa: E402,F401  - a [dev] dependency: missing is a failure

from ganscope.config import apply_overrides, load_config  # noqa: E402
from ganscope.experiments.sweep import make_spec, run_sweep  # noqa: E402
from ganscope.report.run import write_run_report  # noqa: E402
from ganscope.report.sweep import write_sweep_report  # noqa: E402
from ganscope.training.loop import train  # noqa: E402
from ganscope.training.run import Run  # noqa: E402

SHOTS = Path(os.environ["GANSCOPE_UI_SHOTS"]) if os.environ.get("GANSCOPE_UI_SHOTS") else None
TINY_2D = ["data.n_points=256", "train.epochs=2", "eval.every=1", "eval.n=100",
           "train.n_samples=100"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory, tiny_fmnist_dir):
    root = tmp_path_factory.mktemp("reports")
    mp = pytest.MonkeyPatch()
    mp.setenv("GANSCOPE_CACHE", str(root / "cache"))
    try:
        cfg = apply_overrides(load_config("e1-mlp"), [
            "train.epochs=2", "train.batch_size=32", "train.n_samples=16", "eval.every=1",
            "eval.n=64", "seed=3"]).validate()
        cfg.data.dir = str(tiny_fmnist_dir)
        run = train(Run.create(cfg, root / "runs", "tiny-e1"), progress=False, verbose=False)
        from ganscope.viz.curves import plot_run

        plot_run(run)
        run_html = write_run_report(run, root / "run.html")
        spec = make_spec("e5-gan-adam", TINY_2D, ["loss=bce,wgan-gp"], "0-1")
        sweep_dir = root / "sweep"
        run_sweep(sweep_dir, spec, workers=2, progress=False, plots=False)  # it draws its own
        sweep_html = write_sweep_report(sweep_dir)
    finally:
        mp.undo()
    return {"run": run, "run_html": run_html, "sweep": sweep_dir, "sweep_html": sweep_html}


def open_page(browser, path: Path, shots: Path):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url)
            if not r.url.startswith(("file:", "data:")) else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    name = path.stem + ".png"
    page.screenshot(path=str(shots / name), full_page=True)
    if SHOTS is not None:
        try:
            SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(shots / name, SHOTS / name)
        except OSError:
            pass
    return ctx, page, fetched, errors


def images_loaded(page) -> tuple[int, int]:
    return page.evaluate("""() => { const imgs = Array.from(document.images);
        return [imgs.length, imgs.filter(i => i.complete && i.naturalWidth > 0).length]; }""")


def test_run_report_in_chromium(browser, reports, tmp_path):
    ctx, page, fetched, errors = open_page(browser, reports["run_html"], tmp_path)
    try:
        n, ok = images_loaded(page)
        assert n >= 5 and ok == n  # losses, D outputs, metrics, 2 sample grids
        run = reports["run"]
        records = run.read_metrics()
        cells = page.locator("table.metrics td[data-key=fid]").all_inner_texts()
        assert cells == [f"{r['metrics']['fid']:.2f}" for r in records]
        covered = page.locator("table.metrics td[data-key=classes_covered]").all_inner_texts()
        assert covered == [str(r["metrics"]["classes_covered"]) for r in records]
        last = run.meta()["last"]
        row = page.locator("#summary tr", has_text="last loss D / G").inner_text()
        assert f"{last['loss_d']:.4f} / {last['loss_g']:.4f}" in row
        assert "epoch 1" in page.locator("#samples").inner_text()
        assert fetched == [] and errors == []
    finally:
        ctx.close()


def test_sweep_report_in_chromium(browser, reports, tmp_path):
    ctx, page, fetched, errors = open_page(browser, reports["sweep_html"], tmp_path)
    try:
        n, ok = images_loaded(page)
        assert n >= 2 + 4 * 2 and ok == n  # two band figures, curves and samples per run
        runs = sorted((reports["sweep"] / "runs").iterdir())
        assert len(runs) == 4
        for cell in ("loss-bce", "loss-wgan-gp"):
            finals = [Run(p).read_metrics()[-1]["metrics"]["sliced_wasserstein"]
                      for p in runs if p.name.startswith(cell + "-s")]
            got = page.locator(f'td[data-key="{cell}/sliced_wasserstein/mean"]').inner_text()
            assert got == format(statistics.fmean(finals), ".3g")
            sd = page.locator(f'td[data-key="{cell}/sliced_wasserstein/std"]').inner_text()
            assert sd == format(statistics.stdev(finals), ".3g")
        for p in runs:  # the run list links to each run's section on the same page
            page.click(f"a[href='#run-{p.name}']")
            assert page.evaluate("location.hash") == f"#run-{p.name}"
            assert page.locator(f"#run-{p.name} h2").inner_text() == f"Run {p.name}"
        assert "Significance note" in page.inner_text("#comparison")
        assert fetched == [] and errors == []
    finally:
        ctx.close()
