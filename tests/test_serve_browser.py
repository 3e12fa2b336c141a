"""The browser view in a real browser: Debian's headless Chromium driven by Playwright.

A real uvicorn server runs in a thread on a free port over a temporary runs dir (a tiny E1 MLP
run with a planted probe and direction, and a damaged run). The tests open the pages as a
person would: the run list with its error card, a run page whose curves grow while the run
trains, a latent slider that changes the image, and the live 2-D lab started, paused and
stepped. Screenshots go to the test's tmp dir and, for people to look at, to
``$GANSCOPE_UI_SHOTS`` when that is set (``GANSCOPE_UI_SHOTS=shots make test``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): `make browser` "
                "installs it as root", allow_module_level=True)
# Chromium is a system package (skipped above where absent); playwright is a dev dependency
# and uvicorn a required one: imported plainly, so a broken install fails instead of skipping.
import numpy as np  # noqa: E402
import playwright.sync_api  # noqa: E402, F401
import uvicorn  # noqa: E402

from ganscope.commands.serve import bind  # noqa: E402
from ganscope.directions.store import Direction, save_direction  # noqa: E402
from ganscope.serve import create_app  # noqa: E402
from ganscope.training.loop import train  # noqa: E402
from test_serve import make_image_run, plant_probe, tiny_images  # noqa: E402

SHOTS = Path(os.environ["GANSCOPE_UI_SHOTS"]) if os.environ.get("GANSCOPE_UI_SHOTS") else None
WAIT_MS = 30_000


class ReadyServer(uvicorn.Server):
    """uvicorn's server with an event set once it listens (startup has returned)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets=None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()  # also on failure: the fixture then sees started False at once


@contextlib.contextmanager
def serve_app(app):
    """``app`` served by uvicorn in a thread on a free port: yields its base URL; stopped after."""
    sock = bind("127.0.0.1", 0)
    srv = ReadyServer(uvicorn.Config(app, log_level="warning", access_log=False,
                                     timeout_graceful_shutdown=2))
    t = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    assert srv.ready.wait(30) and srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        srv.should_exit = True
        t.join(15)
        sock.close()


@contextlib.contextmanager
def open_page(browser, tmp_path: Path, height: int):
    """A fresh page (1280 x ``height``) that fails the test on any JavaScript error."""
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP forbids
    ctx = browser.new_context(viewport={"width": 1280, "height": height}, bypass_csp=True)
    pg = ctx.new_page()
    pg.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.shots = tmp_path  # type: ignore[attr-defined]
    yield pg
    ctx.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser") / "runs"
    img = make_image_run(root, "img", "seed=1")
    save_direction(img, Direction(name="bright", method="planted", attribute="Brightness",
                                  vector=np.eye(100)[3]))
    plant_probe(img)
    (root / "broken").mkdir()
    (root / "broken" / "config.yaml").write_text("::: not yaml [\n")
    app = create_app(root, poll_s=0.1, lab_plots=False)
    with serve_app(app) as url:
        yield url, root, app


@pytest.fixture
def page(browser, tmp_path):
    with open_page(browser, tmp_path, 900) as pg:
        yield pg


def shot(page, name: str) -> Path:
    path = page.shots / name
    page.screenshot(path=str(path), full_page=True)
    if SHOTS is None:
        return path
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / name)
    except OSError:
        pass  # the copies are for people; the test's own copy is enough
    return path


def attr_int(page, selector: str, name: str) -> int:
    v = page.get_attribute(selector, name)
    return int(v) if v else 0


def test_run_list_shows_runs_and_an_error_card(page, server):
    base, _, _ = server
    page.goto(base)
    page.wait_for_selector("table.runs")
    assert page.locator("a.run-link", has_text="img").count() == 1
    card = page.locator("tr.error-row .error-card")
    assert "does not hold a valid config" in card.inner_text()
    assert page.locator("tr[data-run=img] .badge").inner_text() == "completed"
    shot(page, "runs.png")


def test_a_run_page_scrubs_samples_and_its_curves_grow_while_it_trains(page, server):
    base, root, _ = server
    page.goto(base)
    page.click("a.run-link:text-is('img')")
    page.wait_for_selector("#sample-img")
    page.wait_for_function("document.querySelector('canvas.chart')?.dataset.points === '16'")
    assert "epoch-0002.png" in page.get_attribute("#sample-img", "src")
    page.focus("#sample-scrubber")
    page.keyboard.press("Home")
    page.wait_for_function("document.querySelector('#sample-img')?.src?.includes('epoch-0001')")
    assert page.inner_text("#sample-label").startswith("epoch 1 (1 of 2")
    shot(page, "run.png")

    # a run that trains while its page is open: events arrive over SSE, the curve grows
    from ganscope.config import RunConfig, apply_overrides
    from ganscope.training.run import Run

    cfg = apply_overrides(RunConfig(), ["train.epochs=4", "train.batch_size=32",
                                        "train.n_samples=16"]).validate()
    run = Run.create(cfg, root, "growing")
    # 8 steps an epoch; events reach the file at each epoch's end. The training thread holds
    # at the first step of epochs 2, 3 and 4 until the page has drawn the epochs before, so
    # the test sees every stage (8, 16, 24, then 32 points) by events, whatever the speed.
    holds = {9: threading.Event(), 17: threading.Event(), 25: threading.Event()}
    reached = {s: threading.Event() for s in holds}

    def hold(v):
        if v.step in holds:
            reached[v.step].set()
            holds[v.step].wait(60)

    t = threading.Thread(target=lambda: train(run, dataset=tiny_images(), progress=False,
                                              on_step=hold))
    t.start()
    try:
        assert reached[9].wait(60)
        page.goto(base + "#/run/growing")  # loaded once: what follows arrives over SSE
        for s in holds:
            assert reached[s].wait(60)
            page.wait_for_function(
                f"document.querySelector('canvas.chart')?.dataset.points === '{s - 1}'")
            holds[s].set()
        page.wait_for_function("document.querySelector('canvas.chart')?.dataset.points === '32'")
        page.wait_for_function("document.querySelector('h1 .badge')?.textContent === 'completed'")
    finally:
        for ev in holds.values():
            ev.set()
        t.join(60)
    assert page.url.endswith("#/run/growing")
    shot(page, "run-live.png")


def pixel_sum(page) -> int:
    return page.evaluate("""() => {
        const img = document.querySelector('#latent-img');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const x = c.getContext('2d'); x.drawImage(img, 0, 0);
        const d = x.getImageData(0, 0, c.width, c.height).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] * ((i >> 2) % 97 + 1);
        return s; }""")


def loads(page) -> int:
    return attr_int(page, "#latent-img", "data-loads")


def test_moving_a_latent_slider_changes_the_image(page, server):
    base, _, _ = server
    page.goto(base + "#/latent/img")
    page.wait_for_function("(+document.querySelector('#latent-img')?.dataset.loads || 0) >= 1")
    before_src, before = page.get_attribute("#latent-img", "src"), pixel_sum(page)
    assert page.locator(".slider-row[data-dim='3'] .sentence").inner_text().startswith(
        "dim 3: brightness +5.0 %/unit")
    n = loads(page)
    page.focus("#dim-3")
    page.keyboard.press("End")  # the slider's maximum, as a person would with the keyboard
    page.wait_for_function(f"(+document.querySelector('#latent-img')?.dataset.loads) > {n}")
    after_src = page.get_attribute("#latent-img", "src")
    assert "shift=3%3A10" in after_src and after_src != before_src
    assert pixel_sum(page) != before
    # the direction slider (planted as the unit vector of dim 3) moves the image too
    n = loads(page)
    page.focus("#dir-bright")
    page.keyboard.press("Home")
    page.wait_for_function(f"(+document.querySelector('#latent-img')?.dataset.loads) > {n}")
    assert "dirs=bright%3A-10" in page.get_attribute("#latent-img", "src")
    assert page.inner_text("#latency").startswith("last update ")
    shot(page, "latent.png")


def test_the_live_lab_starts_draws_and_pauses(page, server):
    base, root, app = server
    page.goto(base + "#/lab")
    page.wait_for_selector("#lab-start")
    # the most steps a lane takes: the pause below must come before the run ends (a run of
    # 4,000 steps once ended in CI before the pause was clicked, and the wait timed out)
    page.fill("#lab-steps", "20000")
    page.click("#lab-start")
    page.wait_for_function("+(document.querySelector('#lab-status')?.dataset.step || 0) > 60")
    page.wait_for_function("+(document.querySelector('#lab-canvas')?.dataset.step || 0) > 0")
    page.wait_for_function("+document.querySelector('canvas.chart')?.dataset.points > 60")
    shot(page, "lab-running.png")
    page.click("#lab-pause")
    page.wait_for_function("document.querySelector('#lab-status')?.dataset.status === 'paused'")
    step = attr_int(page, "#lab-status", "data-step")
    page.wait_for_function(f"+document.querySelector('canvas.chart')?.dataset.points === {step}")
    # Paused means no step: checked by events, not by sleeping and looking. "Step" lets exactly
    # one through (a step taken while paused would show as one too many), and "stop" while
    # paused takes none, so the run's events end at that step.
    page.click("#lab-step")
    page.wait_for_function(
        "(s => s?.dataset.status === 'paused' && +s.dataset.step > "
        f"{step})(document.querySelector('#lab-status'))")
    assert attr_int(page, "#lab-status", "data-step") == step + 1
    page.wait_for_function(
        f"+document.querySelector('canvas.chart')?.dataset.points === {step + 1}")
    shot(page, "lab-paused.png")
    page.click("#lab-stop")
    page.wait_for_function("document.querySelector('#lab-status')?.dataset.status === 'stopped'")
    session = app.state.lab.session
    assert session.wait(30) and session.step == step + 1
    from ganscope.training.run import Run

    run = Run(root / session.name)
    assert (run.path / "checkpoints" / "last.pt").is_file()
    assert [e["step"] for e in run.read_events()] == list(range(1, step + 2))
