"""The live 2-D lab in a real browser (Debian's headless Chromium, Playwright): a target drawn
with mouse events arrives at the server point for point, G's force arrows and the latent mesh
are on the page, a race of two runs pauses at equal step counts, and the scrubber shows kept
snapshots. Waits are on the page's own data attributes, never on time. Screenshots go to the
test's tmp dir and to ``$GANSCOPE_UI_SHOTS`` when set.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_serve_browser import CHROMIUM, open_page, serve_app, shot

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)", allow_module_level=True)

from ganscope.data.points import read_points  # noqa: E402
from ganscope.serve import create_app  # noqa: E402
from ganscope.serve.lab import ARROW_POINTS, MESH_LINES  # noqa: E402
from ganscope.training.run import Run  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("labbrowser") / "runs"
    root.mkdir()
    app = create_app(root, poll_s=0.1, lab_plots=False)
    with serve_app(app) as url:
        yield url, root, app


@pytest.fixture
def page(browser, tmp_path):
    with open_page(browser, tmp_path, 1000) as pg:
        yield pg


def status(page) -> dict:
    return page.eval_on_selector("#lab-status", "e => ({...e.dataset})")


def wait_running_past(page, step: int) -> None:
    """Until the page shows the race it started running past ``step``. The page opens on the
    server's last race, which an earlier test stopped at some step: a wait on the step alone
    could be met by that one (it was, once, in the late-reply test)."""
    page.wait_for_function("(e => e && e.dataset.status === 'running' && +e.dataset.step > "
                           f"{step})(document.querySelector('#lab-status'))")


def stop_race(page, app):
    page.click("#lab-stop")
    page.wait_for_function("document.querySelector('#lab-status')?.dataset.status === 'stopped'")
    assert all(s.wait(30) for s in app.state.lab.race.sessions)


def test_a_target_drawn_with_the_mouse_is_what_the_server_trains_on(page, server):
    base, root, app = server
    page.goto(base + "#/lab")
    page.wait_for_selector("#lab-start")
    page.select_option("#lab-data", "drawn")
    box = page.locator("#draw-canvas").bounding_box()
    assert box is not None
    # two strokes: a horizontal bar and a diagonal one; then one more, undone
    page.mouse.move(box["x"] + 80, box["y"] + 120)
    page.mouse.down()
    for i in range(1, 25):
        page.mouse.move(box["x"] + 80 + 10 * i, box["y"] + 120)
    page.mouse.up()
    page.mouse.move(box["x"] + 100, box["y"] + 300)
    page.mouse.down()
    for i in range(1, 20):
        page.mouse.move(box["x"] + 100 + 10 * i, box["y"] + 300 - 8 * i)
    page.mouse.up()
    n = int(page.get_attribute("#draw-count", "data-n"))
    drawn = page.evaluate("window.ganscope.drawn")
    assert n == len(drawn) == 25 * 5 + 20 * 5  # a dab of `density` (5) points per mouse event
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 320, box["y"] + 320)
    page.mouse.up()
    assert int(page.get_attribute("#draw-count", "data-n")) == n + 10
    page.click("#draw-undo")
    assert int(page.get_attribute("#draw-count", "data-n")) == n
    # the points lie where the mouse went: within the brush (0.25) of the two strokes
    x0, x1, y0, y1 = -4, 4, -4, 4
    pts = np.asarray(drawn)
    to_data = lambda px, py: (x0 + px / box["width"] * (x1 - x0),  # noqa: E731
                              y0 + (1 - py / box["height"]) * (y1 - y0))
    # brush 0.25, plus one pixel (0.02): the page sees the mouse at whole pixels of a box
    # that may sit at fractional ones
    tol = 0.25 + 0.02
    bar, diag = pts[:125], pts[125:]  # in stroke order
    (bx0, by), (bx1, _) = to_data(80, 120), to_data(320, 120)
    assert (np.abs(bar[:, 1] - by) <= tol).all()
    assert (bar[:, 0] >= bx0 - tol).all() and (bar[:, 0] <= bx1 + tol).all()
    (dx0, dy0), (dx1, dy1) = to_data(100, 300), to_data(290, 148)
    d = np.array([dx1 - dx0, dy1 - dy0])
    t = np.clip(((diag - [dx0, dy0]) @ d) / (d @ d), 0, 1)
    assert (np.linalg.norm(diag - ([dx0, dy0] + t[:, None] * d), axis=1) <= tol).all()
    shot(page, "lab-drawn-target.png")
    page.fill("#lab-steps", "4000")
    page.click("#lab-start")
    page.wait_for_function("+(document.querySelector('#lab-canvas')?.dataset.step || 0) > 0")
    # the server got exactly these points, and the run trains on them from its own file
    np.testing.assert_array_equal(app.state.lab.drawn, pts.astype(np.float32))
    run = Run(root / app.state.lab.session.name)
    np.testing.assert_array_equal(read_points(run.path / "target.csv").points,
                                  pts.astype(np.float32))
    assert run.config().data.name.endswith("/target.csv")
    shot(page, "lab-drawn-running.png")
    stop_race(page, app)


def test_the_arrows_and_the_latent_mesh_are_drawn_and_toggle(page, server):
    base, root, app = server
    page.goto(base + "#/lab")
    page.wait_for_selector("#lab-start")
    # 20,000 steps (100 s at 200 steps/s): on a loaded machine the page can first see step > 60
    # thousands of steps late, and a 4,000-step race then ended before the pause was clicked
    page.fill("#lab-steps", "20000")
    page.select_option("#lab-speed", "200")
    page.click("#lab-start")
    wait_running_past(page, 60)
    page.click("#lab-pause")
    page.wait_for_function("document.querySelector('#lab-status')?.dataset.status === 'paused'")
    step = int(status(page)["step"])
    page.wait_for_function(f"+document.querySelector('#lab-canvas').dataset.step === {step}")
    assert int(page.get_attribute("#lab-canvas", "data-arrows")) == ARROW_POINTS
    assert int(page.get_attribute("#lab-canvas", "data-mesh-lines")) == 2 * MESH_LINES
    shot(page, "lab-arrows-mesh.png")
    page.uncheck("#layer-arrows")
    page.uncheck("#layer-mesh")
    assert page.get_attribute("#lab-canvas", "data-arrows") == "0"
    assert page.get_attribute("#lab-canvas", "data-mesh-lines") == "0"
    page.check("#layer-arrows")
    assert int(page.get_attribute("#lab-canvas", "data-arrows")) == ARROW_POINTS
    stop_race(page, app)


def test_a_late_reply_to_pause_does_not_undo_the_paused_state_the_stream_showed(page, server):
    """The order CI once met under load: the stream says "paused", then the pause request's
    own reply, holding an older "running" state, arrives. A paused race sends nothing more,
    so a page that took the reply stayed "running" for good."""
    base, root, app = server
    page.goto(base + "#/lab")
    page.wait_for_selector("#lab-start")
    page.fill("#lab-steps", "20000")
    page.click("#lab-start")
    wait_running_past(page, 5)
    stale = page.evaluate("fetch('/api/lab/state').then((r) => r.json())")
    assert stale["race"]["status"] == "running"
    held = []

    def hold(route):  # the pause reaches the server; its reply is held back
        route.fetch()
        held.append(route)

    page.route("**/api/lab/pause", hold)
    page.click("#lab-pause")
    page.wait_for_function("document.querySelector('#lab-status')?.dataset.status === 'paused'")
    assert len(held) == 1 and app.state.lab.race.clock.state()["held"]
    held[0].fulfill(json=stale)  # now the old reply arrives
    page.wait_for_function("document.querySelector('#lab-status')?.dataset.replies === '1'")
    assert status(page)["status"] == "paused"
    assert page.is_enabled("#lab-play") and not page.is_enabled("#lab-pause")
    page.unroute("**/api/lab/pause")
    stop_race(page, app)


def test_a_race_of_two_runs_pauses_in_lockstep_and_scrubs(page, server):
    base, root, app = server
    page.goto(base + "#/lab")
    page.wait_for_selector("#lab-start")
    page.fill("#lab-steps", "20000")  # not over before the third pause on a loaded machine
    page.click("#lab-add-lane")
    page.select_option("#lab-loss-1", "wgan-gp")
    page.click("#lab-start")
    page.wait_for_selector("#lab-canvas-1")
    for _ in range(2):
        page.wait_for_function("+(document.querySelector('#lab-status')?.dataset.step || 0) > "
                               f"{int(status(page).get('step') or 0) + 40}")
        page.click("#lab-pause")
        page.wait_for_function(
            "document.querySelector('#lab-status')?.dataset.status === 'paused'")
        st = status(page)
        steps = [int(x) for x in st["steps"].split(",")]
        assert len(steps) == 2 and steps[0] == steps[1]  # equal step counts at the pause
        assert app.state.lab.race.clock.state()["steps"] == steps  # and the server agrees
        for sel in ("#lab-canvas", "#lab-canvas-1"):
            page.wait_for_function(f"+document.querySelector('{sel}').dataset.step === "
                                   f"{steps[0]}")
        page.click("#lab-play")
        page.wait_for_function(
            "document.querySelector('#lab-status')?.dataset.status === 'running'")
    page.click("#lab-pause")
    page.wait_for_function("document.querySelector('#lab-status')?.dataset.status === 'paused'")
    rows = page.locator("#lab-race-table tbody tr")
    assert rows.count() == 2
    shot(page, "lab-race.png")
    # the scrubber: back to the first kept snapshot (step 1 of both runs), then live again
    page.eval_on_selector("#lab-scrub", "e => { e.value = 0; e.dispatchEvent(new Event('input')); }")
    page.wait_for_function("document.querySelector('#lab-scrub-label').dataset.step === '1'")
    assert page.get_attribute("#lab-canvas", "data-step") == "1"
    assert page.get_attribute("#lab-canvas-1", "data-step") == "1"
    mid = page.eval_on_selector("#lab-scrub", "e => Math.floor(+e.max / 2)")
    page.eval_on_selector("#lab-scrub", f"e => {{ e.value = {mid}; e.dispatchEvent(new Event('input')); }}")
    page.wait_for_function("+document.querySelector('#lab-scrub-label').dataset.step > 1")
    frame_step = int(page.get_attribute("#lab-scrub-label", "data-step"))
    kept = app.state.lab.race.sessions[0].history_steps
    assert frame_step == kept[mid]
    assert page.get_attribute("#lab-canvas-1", "data-step") == str(frame_step)
    shot(page, "lab-race-scrubbed.png")
    page.click("#lab-live")
    now = int(status(page)["step"])
    page.wait_for_function(f"+document.querySelector('#lab-canvas').dataset.step === {now}")
    stop_race(page, app)
