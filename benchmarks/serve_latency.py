"""How long one latent-slider update takes in ``ganscope serve``, through HTTP and in a browser.

Starts the real app on a real uvicorn server (a thread, a free port on 127.0.0.1) over the
directory of an E1 MLP run (``--run``, default: the newest mlp run in $GANSCOPE_RUNS or ./runs;
else a freshly initialised E1 generator in a temporary run, whose cost is the same) and times:

* **http**: one GET of ``/api/runs/RUN/latent/image`` per slider position (a new shift each
  time, so no cache answers), over one keep-alive connection, request to last byte; with 1 and
  with 8 images per update (the page's default is 8). ``server`` is the app's own time for the
  same requests (its Server-Timing header): generation and PNG encoding.
* **browser** (when /usr/bin/chromium and playwright are there): the latent page in headless
  Chromium; the slider is moved with the keyboard (one step per key press) and the page's own
  measurement is read back: from the input event's timestamp to the new image's load event.

The issue's target: under 100 ms per update on CPU. Prints a table, writes JSON (``--out``,
default benchmarks/results/serve_latency.json); asserts nothing.

    .venv/bin/python benchmarks/serve_latency.py [--run RUN] [--updates 200] [--no-browser]
"""

from __future__ import annotations

import argparse
import http.client
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "serve_latency.json"
CHROMIUM = Path("/usr/bin/chromium")
sys.path.insert(0, str(HERE))

from ganscope.training.run import Run, resolve_run  # noqa: E402
from train_speed import OtherLoad, atomic_write_json, cpu_model, newest_mlp_run  # noqa: E402


def fresh_run(root: Path) -> Run:
    """An E1 run whose only checkpoint is a freshly initialised generator."""
    from ganscope.config import load_config
    from ganscope.io import atomic_torch_save
    from ganscope.models import build_models
    from ganscope.training.run import CHECKPOINT_FORMAT

    cfg = load_config("e1-mlp")
    run = Run.create(cfg, root, "e1-fresh")
    torch.manual_seed(0)
    G, _ = build_models("mlp", cfg.model.z_dim)
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "G": G.state_dict(), "epoch": 1,
                       "model": "mlp", "z_dim": cfg.model.z_dim}, run.generator_checkpoint(1))
    return run


def start_server(root: Path):
    import uvicorn

    from ganscope.commands.serve import bind
    from ganscope.serve import create_app

    sock = bind("127.0.0.1", 0)
    srv = uvicorn.Server(uvicorn.Config(create_app(root), log_level="warning", access_log=False,
                                        timeout_graceful_shutdown=2))
    t = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    end = time.monotonic() + 30
    while not srv.started and time.monotonic() < end:
        time.sleep(0.02)
    if not srv.started:
        raise SystemExit("uvicorn did not start")
    return srv, t, sock.getsockname()[1]


def summary(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"n": len(s), "median_ms": round(statistics.median(s), 2),
            "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))], 2),
            "min_ms": round(s[0], 2), "max_ms": round(s[-1], 2)}


def positions(n: int) -> list[float]:
    """n distinct slider values in -10..10 (new URLs: the browser cache never answers)."""
    return [round(-10 + 20 * i / max(1, n - 1), 4) for i in range(n)]


def time_http(port: int, name: str, n_images: int, updates: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    total, server = [], []
    for i, v in enumerate([0.123, 0.456, *positions(updates)]):  # two warm-up requests
        path = f"/api/runs/{name}/latent/image?seed=23231&n={n_images}&shift=20:{v}"
        t0 = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        dt = 1000 * (time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"GET {path}: {r.status} {body[:200]!r}")
        if i >= 2:
            total.append(dt)
            st = r.getheader("Server-Timing", "")
            if "dur=" in st:
                server.append(float(st.split("dur=")[1]))
    conn.close()
    return {"images_per_update": n_images, "http": summary(total), "server": summary(server),
            "png_bytes": len(body)}


def time_browser(port: int, name: str, n_images: int, updates: int) -> dict | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        ctx = b.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page = ctx.new_page()
        page.goto(f"http://127.0.0.1:{port}/#/latent/{name}")
        page.wait_for_function("(+document.querySelector('#latent-img')?.dataset.loads || 0) >= 1")
        loads = "(+document.querySelector('#latent-img')?.dataset.loads || 0)"
        if page.input_value("#latent-n") != str(n_images):
            page.select_option("#latent-n", str(n_images))
            page.wait_for_function(f"{loads} >= 2")
        before = page.evaluate(loads)
        page.locator("input.slider").first.focus()
        page.keyboard.press("Home")
        page.wait_for_function(f"{loads} > {before}")
        page.evaluate("window.ganscope.latencies = []")
        for i in range(updates):
            page.keyboard.press("ArrowRight")  # 0.1 per press: a new value, a new request
            page.wait_for_function(f"window.ganscope.latencies.length > {i}")
        ms = page.evaluate("window.ganscope.latencies")
        b.close()
    return {"images_per_update": n_images, "browser": summary(ms)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="an E1 run (default: the newest mlp run in $GANSCOPE_RUNS)")
    ap.add_argument("--updates", type=int, default=200, help="slider updates per measurement")
    ap.add_argument("--browser-updates", type=int, default=100)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads first (default 1, as ganscope serve sets)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)

    tmp = None
    run = resolve_run(a.run) if a.run else newest_mlp_run()
    source = run.name if run else "fresh E1 generator (no mlp run found)"
    if run is None:
        tmp = tempfile.TemporaryDirectory()
        run = fresh_run(Path(tmp.name))
    srv, thread, port = start_server(run.path.parent)
    rows = []
    try:
        for n in (1, 8):
            with OtherLoad() as load:
                res = time_http(port, run.name, n, a.updates)
            res["other_load"] = round(load.fraction, 3)
            rows.append(res)
        if not a.no_browser and CHROMIUM.exists():
            for n in (1, 8):
                with OtherLoad() as load:
                    res = time_browser(port, run.name, n, a.browser_updates)
                if res is None:
                    print("playwright is not installed: no browser numbers", file=sys.stderr)
                    break
                res["other_load_incl_chromium"] = round(load.fraction, 3)
                rows.append(res)
    finally:
        srv.should_exit = True
        thread.join(10)
        if tmp is not None:
            tmp.cleanup()

    out = {"benchmark": "serve_latency", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "machine": {"cpu": cpu_model(), "threads": torch.get_num_threads(),
                       "python": platform.python_version(), "torch": torch.__version__},
           "run": source, "target_ms": 100, "results": rows}
    atomic_write_json(a.out, out)
    print(f"run: {source}; torch threads {torch.get_num_threads()}; {cpu_model()}")
    print(f"{'path':<30}{'imgs':>5}{'n':>6}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}")
    for r in rows:
        for key, label in (("http", "HTTP (request to last byte)"),
                           ("server", "  of which in the app"),
                           ("browser", "browser (input to image load)")):
            if key in r:
                s = r[key]
                print(f"{label:<30}{r['images_per_update']:>5}{s['n']:>6}{s['median_ms']:>11.2f}"
                      f"{s['p95_ms']:>9.2f}{s['max_ms']:>9.2f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
