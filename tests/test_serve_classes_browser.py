"""The latent explorer's class selector in the page: chromium picks a class for a
conditional run and the image is requested and drawn for it."""

from __future__ import annotations

from ganscope.serve import create_app
from test_serve_browser import open_page, serve_app  # skips this module without chromium
from test_serve_classes import runs  # noqa: F401  (the tiny conditional runs, a fixture)


def test_the_explorer_picks_a_class(runs, tmp_path, browser):  # noqa: F811
    app = create_app(runs, poll_s=0.1, lab_plots=False)
    loads = "(+document.querySelector('#latent-img')?.dataset.loads || 0)"
    with serve_app(app) as base, open_page(browser, tmp_path, 900) as pg:
        pg.goto(base + "#/latent/cond")
        pg.wait_for_function(f"{loads} >= 1")
        assert pg.locator("#latent-class option").count() == 12
        assert pg.locator("#latent-class option").first.inner_text() == "any (from z)"
        assert pg.locator("#latent-class option").last.inner_text() == "all (one row each)"
        assert pg.locator(".slider-row[data-dim='0'] .sentence").inner_text().startswith(
            "dim 0 — the class")
        before = pg.get_attribute("#latent-img", "src")
        assert "class=" not in before
        n = int(pg.get_attribute("#latent-img", "data-loads"))
        with pg.expect_response(lambda r: "/latent/image" in r.url
                                and "class=3" in r.url) as resp:
            pg.select_option("#latent-class", "3")
        assert resp.value.status == 200
        pg.wait_for_function(f"{loads} > {n}")
        after = pg.get_attribute("#latent-img", "src")
        assert "class=3" in after and after != before
        assert pg.evaluate("document.querySelector('#latent-img').naturalWidth") > 0
        pg.screenshot(path=str(tmp_path / "latent-class.png"), full_page=True)
