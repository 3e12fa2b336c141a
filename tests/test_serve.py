"""The browser view's API (``ganscope serve``), through FastAPI's TestClient on tiny real runs.

The runs are trained by the one loop in a temporary runs dir: an E1 MLP image run (with a
planted direction and a planted probe result), a 2-D point run, and damaged copies. The live
2-D lab trains real runs in a background thread; those tests wait on the session, not on time.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import torch

# fastapi is a required dependency and httpx (TestClient's transport) a dev one: imported
# plainly, so a broken install fails here instead of skipping the whole browser-view API.
with warnings.catch_warnings():  # starlette asks for httpx2, which is not packaged yet
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from ganscope.cli import main  # noqa: E402
from ganscope.config import RunConfig, apply_overrides  # noqa: E402
from ganscope.data import Dataset  # noqa: E402
from ganscope.directions.store import Direction, save_direction  # noqa: E402
from ganscope.io import atomic_write_text
from ganscope.latent.probe import DEFAULT_VALUES, EFFECT_NAMES, ProbeResult, default_probe_dir  # noqa: E402
from ganscope.metrics.labels import METRIC_LABELS  # noqa: E402
from ganscope.sampling import generate_images, latents_from_seed  # noqa: E402
from ganscope.serve import create_app  # noqa: E402
from ganscope.serve.lab import SNAPSHOT_POINTS, SURFACE_GRID  # noqa: E402
from ganscope.training.loop import train  # noqa: E402
from ganscope.training.run import Run, load_checkpoint, load_generator

BASE = "http://127.0.0.1"


def tiny_images(n: int = 256, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return Dataset(images=imgs, labels=None, source={"synthetic": True})


def make_image_run(root: Path, name: str, *overrides: str) -> Run:
    cfg = apply_overrides(RunConfig(), ["train.epochs=2", "train.batch_size=32",
                                        "train.n_samples=16", *overrides]).validate()
    return train(Run.create(cfg, root, name), dataset=tiny_images(), progress=False)


def plant_probe(run: Run, strong_dim: int = 3) -> None:
    """A probe result in which only ``strong_dim`` does something (brightness up)."""
    rng = np.random.default_rng(0)
    dims, values, effects = list(range(10)), list(DEFAULT_VALUES), list(EFFECT_NAMES)
    curves = rng.normal(0, 1e-4, (len(dims), len(values), len(effects)))
    curves[strong_dim, :, effects.index("brightness")] += 0.05 * np.asarray(values)
    null = rng.normal(0, 1e-3, (32, len(values), len(effects)))
    res = ProbeResult(dims=dims, values=values, effects=effects, curves=curves,
                      null_curves=null, baseline_pixel_distance=0.3, z_dim=100,
                      info={"epoch": 2, "n_base": 16})
    out = default_probe_dir(run)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "probe.json", json.dumps(res.to_json()))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve") / "runs"
    img = make_image_run(root, "img", "seed=1")
    save_direction(img, Direction(name="bright", method="planted", attribute="Brightness",
                                  vector=np.eye(100)[3]))
    plant_probe(img)
    pts = apply_overrides(RunConfig(), [
        "data.name=ring8", "data.n_points=256", "model.name=mlp2d", "model.z_dim=2",
        "train.epochs=2", "train.batch_size=64", "train.n_samples=100", "eval.every=1",
        "eval.n=100", "train.save_generators=false"]).validate()
    train(Run.create(pts, root, "pts"), progress=False)
    (root / "broken").mkdir()
    (root / "broken" / "config.yaml").write_text("::: not yaml [\n")
    shutil.copytree(root / "img", root / "badmeta")
    (root / "badmeta" / "meta.json").write_text("{not json")
    shutil.copytree(root / "img", root / "badmetrics")
    (root / "badmetrics" / "metrics.jsonl").write_text("{}\nnot json\n")
    shutil.copytree(root / "img", root / "nan")
    with open(root / "nan" / "events.jsonl", "a") as f:
        f.write(json.dumps({"step": 17, "epoch": 2, "it": 8, "loss_d": float("nan"),
                            "loss_g": float("inf"), "d_x": 0.5, "d_g_z": 0.5}) + "\n")
    return root


@pytest.fixture
def client(runs):
    with TestClient(create_app(runs, poll_s=0.05, lab_plots=False), base_url=BASE) as c:
        yield c


def err(resp) -> str:
    return resp.json()["error"]


# --- runs -------------------------------------------------------------------------------------


def test_run_list_shows_every_run_and_damaged_ones_with_their_error_line(client, runs):
    r = client.get("/api/runs")
    assert r.status_code == 200
    rows = {row["name"]: row for row in r.json()["runs"]}
    assert set(rows) == {"img", "pts", "broken", "badmeta", "badmetrics", "nan"}
    assert rows["img"]["status"] == "completed" and rows["img"]["kind"] == "images"
    assert (rows["img"]["epochs_done"], rows["img"]["epochs_planned"]) == (2, 2)
    assert rows["pts"]["kind"] == "points" and "modes_covered" in rows["pts"]["latest_metrics"]
    assert rows["broken"]["status"] == "damaged"
    assert rows["broken"]["error"].startswith(f"{runs / 'broken' / 'config.yaml'} does not hold "
                                              "a valid config")
    assert rows["badmeta"]["status"] == "damaged"
    assert rows["badmeta"]["error"] == (f"cannot read {runs / 'badmeta' / 'meta.json'}: the run "
                                        "directory is damaged")
    assert rows["nan"]["last"]["loss_d"] is not None  # meta's numbers are fine there
    assert [f["code"] for f in rows["nan"]["flags"]] == ["diverged"]


def test_run_detail_has_config_samples_generators_and_metrics(client):
    d = client.get("/api/runs/img").json()
    assert d["config"]["model"]["name"] == "mlp" and d["meta"]["seed"] == 1
    assert d["samples"] == [1, 2] and d["generators"] == [1, 2] and d["has_last"]
    assert d["directions"] == [{"name": "bright", "method": "planted", "attribute": "Brightness"}]
    assert d["probe"] is True and "error" not in d
    p = client.get("/api/runs/pts").json()
    assert [m["epoch"] for m in p["metrics"]] == [1, 2]
    assert {"modes_covered", "sliced_wasserstein"} <= set(p["metrics"][0]["metrics"])
    assert p["generators"] == [] and p["kind"] == "points"


def test_a_damaged_part_is_an_error_line_and_the_rest_still_shows(client, runs):
    d = client.get("/api/runs/badmetrics")
    assert d.status_code == 200
    body = d.json()
    assert body["error"] == (f"{runs / 'badmetrics' / 'metrics.jsonl'} line 2 is not JSON: delete "
                             "the line (or the file) and evaluate again with `ganscope eval`")
    assert body["samples"] == [1, 2] and body["config"]["model"]["name"] == "mlp"
    b = client.get("/api/runs/broken").json()
    assert b["status"] == "damaged" and b["config"] is None and "valid config" in b["error"]
    assert client.get("/api/runs/broken/events").status_code == 200  # events are still readable


@pytest.mark.parametrize("name", ["..", ".hidden", "a" * 101, "x y", "-dash"])
def test_bad_run_names_are_refused_with_one_line(client, name):
    r = client.get("/api/runs/" + quote(name, safe="").replace(".", "%2E"))  # no dot-segments
    assert r.status_code == 400
    assert err(r) == (f"bad run name {name[:100]!r}: a run name has letters, digits, '.', '_' and '-' "
                      "(at most 100), as the run list shows it")


def test_unknown_runs_and_paths_outside_the_runs_dir_are_not_served(client, runs, tmp_path):
    r = client.get("/api/runs/nope")
    assert r.status_code == 404
    assert err(r) == (f"no run named 'nope' in {runs}: pick one from the run list "
                      f"(`ganscope runs --runs-dir {runs}`)")
    for path in ("/api/runs/../../etc/passwd", "/api/runs/img/../../x",
                 "/api/runs/img/samples/..%2Fconfig.yaml", "/api/runs/img/samples/config.yaml",
                 "/api/runs/img/checkpoints/last.pt", "/api/runs/img/figures/x.txt",
                 "/api/runs/img/samples/epoch-0009.png"):
        assert client.get(path).status_code == 404, path
    # a link inside the run that points outside it, and a run dir that is a link to elsewhere
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    leak = runs / "img" / "figures" / "leak.png"
    outside = tmp_path / "outside-run"
    try:
        leak.symlink_to(secret)
        shutil.copytree(runs / "img", outside, symlinks=True)
        (runs / "linked").symlink_to(outside)
        r = client.get("/api/runs/img/figures/leak.png")
        assert r.status_code == 404 and b"secret" not in r.content
        assert client.get("/api/runs/linked").status_code == 404
        rows = {row["name"]: row for row in client.get("/api/runs").json()["runs"]}
        assert rows["linked"]["status"] == "damaged"
    finally:
        leak.unlink(missing_ok=True)
        (runs / "linked").unlink(missing_ok=True)


def test_whitelisted_files_are_served_byte_for_byte(client, runs):
    r = client.get("/api/runs/img/samples/epoch-0002.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (runs / "img" / "samples" / "epoch-0002.png").read_bytes()


def test_events_as_columns_after_a_step_and_nan_as_null(client):
    cols = client.get("/api/runs/img/events").json()
    assert cols["step"] == list(range(1, 17)) and len(cols["loss_d"]) == 16
    assert cols["epoch"][0] == 1 and cols["epoch"][-1] == 2 and cols["last_step"] == 16
    tail = client.get("/api/runs/img/events", params={"after": 12}).json()
    assert tail["step"] == [13, 14, 15, 16] and tail["d_x"] == cols["d_x"][12:]
    thin = client.get("/api/runs/img/events", params={"max_points": 10}).json()
    assert thin["step"][-1] == 16 and len(thin["step"]) <= 10 and thin["stride"] == 2
    nan = client.get("/api/runs/nan/events", params={"after": 16}).json()
    assert nan["loss_d"] == [None] and nan["loss_g"] == [None] and nan["d_x"] == [0.5]
    r = client.get("/api/runs/img/events", params={"after": "x"})
    assert r.status_code == 400 and err(r) == ("bad after 'x': give a whole number from 0 to "
                                               "1000000000000")


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if not ln.startswith(":")]
        if not lines:
            continue
        ev = next(ln[7:] for ln in lines if ln.startswith("event: "))
        data = next(ln[6:] for ln in lines if ln.startswith("data: "))
        out.append((ev, json.loads(data)))
    return out


def test_the_stream_of_a_finished_run_sends_its_events_and_ends(client):
    with client.stream("GET", "/api/runs/img/stream", params={"after": 10}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        evs = sse_events("".join(r.iter_text()))
    names = [e for e, _ in evs]
    assert names == ["events", "status", "end"]
    assert evs[0][1]["step"] == [11, 12, 13, 14, 15, 16]
    assert evs[1][1]["samples"] == [1, 2] and evs[2][1]["status"] == "completed"


def test_the_stream_follows_a_training_run_until_it_ends(client, runs):
    cfg = apply_overrides(RunConfig(), ["train.epochs=3", "train.batch_size=32",
                                        "train.n_samples=16"]).validate()
    run = Run.create(cfg, runs, "live-stream")
    started, hold = threading.Event(), threading.Event()

    def watch(v):
        started.set()
        if v.step == 12:  # mid epoch 2: epoch 1's events are flushed; hold until streamed
            hold.wait(20)

    t = threading.Thread(target=lambda: train(run, dataset=tiny_images(), progress=False,
                                              on_step=watch))
    t.start()
    try:
        assert started.wait(30)
        evs = []
        with client.stream("GET", "/api/runs/live-stream/stream") as r:
            buf = ""
            for text in r.iter_text():
                buf += text
                while "\n\n" in buf:
                    block, buf = buf.split("\n\n", 1)
                    for ev, data in sse_events(block + "\n\n"):
                        evs.append((ev, data))
                        if ev == "events":
                            hold.set()  # the first points arrived while the run was running
    finally:
        hold.set()
        t.join(60)
    chunks = [d["step"] for e, d in evs if e == "events"]
    statuses = [d["status"] for e, d in evs if e == "status"]
    assert sum(chunks, []) == list(range(1, 25))
    assert chunks[0] == list(range(1, 9)) and len(chunks) >= 2  # epoch 1 first, while running
    assert statuses[0] == "running" and statuses[-1] == "completed"
    assert evs[-1] == ("end", {"status": "completed", "last_step": 24})
    shutil.rmtree(run.path)


# --- latent explorer ----------------------------------------------------------------------------


def png_array(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


def test_latent_info_lists_checkpoints_directions_and_probe_sentences(client):
    info = client.get("/api/runs/img/latent").json()
    assert (info["z_dim"], info["epochs"], info["has_last"]) == (100, [1, 2], True)
    assert [d["name"] for d in info["directions"]] == ["bright"]
    assert info["probe"]["ranked"][0] == 3
    assert info["probe"]["sentences"]["3"].startswith("dim 3: brightness +5.0 %/unit")
    assert info["probe"]["sentences"]["0"].startswith("dim 0: nothing above the null")
    r = client.get("/api/runs/pts/latent")
    assert r.status_code == 400 and err(r) == (
        "run 'pts' generates 2-D points, not images: the latent explorer is for image runs; "
        "watch point runs on their run page or in the live 2-D lab")


def test_the_latent_image_is_what_ganscope_generate_makes(client, runs):
    run = Run(runs / "img")
    r = client.get("/api/runs/img/latent/image",
                   params={"seed": 23231, "n": 4, "shift": "20:2.5,7:-1", "epoch": 1})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    got = png_array(r.content)
    assert got.shape == (28, 4 * 28 + 3 * 2)
    z = latents_from_seed(23231, 4, 100)
    z[:, 20] += 2.5
    z[:, 7] -= 1
    want = generate_images(load_generator(run, 1), z)
    for i in range(4):
        assert np.array_equal(got[:, i * 30:i * 30 + 28], want[i])
    plain = png_array(client.get("/api/runs/img/latent/image", params={"seed": 23231}).content)
    assert plain.shape == (28, 28)
    assert np.array_equal(plain, generate_images(load_generator(run), latents_from_seed(23231, 1))[0])
    moved = client.get("/api/runs/img/latent/image", params={"seed": 23231, "shift": "20:5"})
    assert not np.array_equal(png_array(moved.content), plain)


def test_a_direction_slider_moves_z_along_its_unit_vector(client):
    # the planted direction is the unit vector of dim 3, so both must give the same image
    a = client.get("/api/runs/img/latent/image", params={"seed": 5, "dirs": "bright:3"})
    b = client.get("/api/runs/img/latent/image", params={"seed": 5, "shift": "3:3"})
    assert a.status_code == b.status_code == 200 and a.content == b.content


@pytest.mark.parametrize("params,status,message", [
    ({"shift": "20:11"}, 400, "dim 20 value 11 is out of range: |value| must be at most 10"),
    ({"shift": "20:nan"}, 400, "dim 20 value nan is out of range: |value| must be at most 10"),
    ({"shift": ",".join(f"{d}:1" for d in range(33))}, 400,
     "too many dims in one request (33): at most 32"),
    ({"shift": "100:1"}, 400, "dim 100 is out of range: this run's z has 100 dims (0..99)"),
    ({"shift": "20"}, 400, "bad dim '20': use DIM:VALUE pairs separated by commas, e.g. "
                           "20:1.5,50:-3"),
    ({"shift": "1:1,1:2"}, 400, "dim 1 is given twice: give each once"),
    ({"seed": "-1"}, 400, "seed -1 is out of range: give a whole number from 0 to 2147483647"),
    ({"n": "17"}, 400, "n 17 is out of range: give a whole number from 1 to 16"),
    ({"dirs": "male:1"}, 400, "run 'img' has no direction 'male' (has: bright)"),
    ({"epoch": "9"}, 400, "run 'img' has no generator for epoch 9: available 1, 2"),
    ({"epoch": "x"}, 400, "bad epoch 'x': give an epoch number or 'last'"),
])
def test_latent_requests_are_bounded(client, params, status, message):
    r = client.get("/api/runs/img/latent/image", params=params)
    assert (r.status_code, err(r)) == (status, message)


def test_loaded_generators_are_cached_and_reloaded_when_the_checkpoint_changes(client, runs):
    cache = client.app.state.cache
    before = cache.info()["loads"]
    for v in range(3):
        assert client.get("/api/runs/img/latent/image",
                          params={"epoch": 2, "shift": f"1:{v}"}).status_code == 200
    assert cache.info()["loads"] == before + 1
    ck = Run(runs / "img").generator_checkpoint(2)
    st = ck.stat()
    os.utime(ck, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    client.get("/api/runs/img/latent/image", params={"epoch": 2})
    assert cache.info()["loads"] == before + 2


# --- guards -----------------------------------------------------------------------------------


def test_a_token_is_required_on_the_api_when_set(runs):
    with TestClient(create_app(runs, token="s3cret-token"), base_url="http://10.1.2.3") as c:
        r = c.get("/api/runs")
        assert r.status_code == 401 and err(r) == (
            "missing or wrong token: open the URL that `ganscope serve` printed (it ends in "
            "?token=...)")
        assert c.get("/api/runs", params={"token": "wrong"}).status_code == 401
        assert c.get("/api/runs", params={"token": "s3cret-token"}).status_code == 200
        ok = c.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        img = c.get("/api/runs/img/samples/epoch-0001.png")
        assert img.status_code == 401
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200


def test_host_body_query_and_content_type_guards(client):
    r = client.get("/api/runs", headers={"Host": "evil.example:8765"})
    assert r.status_code == 403 and err(r).startswith("host 'evil.example' refused")
    assert client.get("/api/runs", headers={"Host": "localhost:8765"}).status_code == 200
    big = client.post("/api/lab/start", content=b"{" + b" " * 20000 + b"}",
                      headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and err(big) == "request body too large: at most 16384 bytes"
    form = client.post("/api/lab/stop", content=b"a=1",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and err(form) == "send the request body as application/json"
    long = client.get("/api/runs/img/events", params={"x": "a" * 5000})
    assert long.status_code == 414
    page = client.get("/")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-content-type-options"] == "nosniff"


def test_the_page_loads_nothing_from_the_network():
    import ganscope.serve

    static = Path(ganscope.serve.__file__).parent / "static"
    names = sorted(p.name for p in static.iterdir())
    assert names == ["app.js", "index.html", "style.css"]
    for p in static.iterdir():
        text = p.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, p.name


def test_the_metric_labels_are_the_one_table_the_cli_and_reports_use(client, runs):
    r = client.get("/api/metrics/labels")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    rows = r.json()["metrics"]
    assert [row["key"] for row in rows] == list(METRIC_LABELS)  # the standard order
    assert rows == [row.to_json() for row in METRIC_LABELS.values()]
    by = {row["key"]: row for row in rows}
    assert (by["fid"]["label"], by["fid"]["column"], by["fid"]["fmt"]) == ("FID", "FID", ".2f")
    assert by["fid"]["lower_is_better"] is True and by["recall"]["lower_is_better"] is False
    assert by["confidence"]["lower_is_better"] is None and by["fid"]["kind"] == "images"
    assert by["classes_covered"]["column_fmt"] == "d" and by["classes_covered"]["fmt"] == ".2f"
    assert by["hq_fraction"]["short"] == "% HQ" and by["hq_fraction"]["unit"] == "%"
    assert (by["hq_fraction"]["scale"], by["hq_fraction"]["web_decimals"]) == (100.0, 1)
    assert by["modes_covered"]["web_of"] == "n_modes" and by["modes_covered"]["kind"] == "points"
    # the page's metric columns, in order
    assert [(row["key"], row["web"]) for row in rows if row["web"]] == [
        ("fid", "FID"), ("kid", "KID"), ("precision", "prec"), ("recall", "recall"),
        ("density", "density"), ("coverage", "cover"), ("classes_covered", "classes"),
        ("class_match", "match"), ("intra_fid", "intra-FID"), ("modes_covered", "modes"), ("hq_fraction", "% HQ"), ("reverse_kl", "rev. KL"),
        ("sliced_wasserstein", "sliced W1"), ("energy_distance", "energy"), ("mmd_rbf", "MMD²")]
    with TestClient(create_app(runs, token="s3cret-token"), base_url="http://10.1.2.3") as c:
        assert c.get("/api/metrics/labels").status_code == 401  # an API route like the others
        assert c.get("/api/metrics/labels", params={"token": "s3cret-token"}).json() == r.json()


# --- live 2-D lab -------------------------------------------------------------------------------


def wait_for(fn, timeout: float = 60.0, every: float = 0.02):
    """Poll ``fn`` until it returns something true (the server's state, not a fixed sleep)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError("timed out")


def test_the_live_lab_trains_a_real_run_and_pauses_steps_and_stops(client, runs):
    r = client.post("/api/lab/start", json={"data": "ring8", "loss": "wgan-gp", "optim": "adam",
                                            "steps": 3000, "n_points": 4096, "paused": True,
                                            "lr_g": 2e-4, "n_critic": 2})
    assert r.status_code == 200
    s = r.json()
    name = s["run"]
    assert name.startswith("live-wgan-gp-adam-") and (runs / name / "config.yaml").is_file()
    assert s["settings"]["lr_g"] == 2e-4 and s["settings"]["lr_d"] == 1e-4
    assert s["settings"]["n_critic"] == 2 and len(s["target"]) == 1000 and len(s["extent"]) == 4
    state = lambda: client.get("/api/lab/state").json()  # noqa: E731
    # "It does not advance while paused" is checked by events, not by sleeping and looking:
    # the step counter is read before and after a request that lets exactly one step through
    # (a step taken while paused would show as one step too many), and at the end "stop"
    # while paused takes no step, so the run's events end at the step the pause showed.
    # paused from the start: exactly one step, then it waits
    st = wait_for(lambda: (x := state())["status"] == "paused" and x["snapshot"] and x)
    assert st["step"] == 1 and st["snapshot"]["step"] == 1
    v = st["version"]
    client.post("/api/lab/step", json={})
    st = wait_for(lambda: (x := state())["status"] == "paused" and x["version"] > v
                  and x["step"] >= 2 and x)
    assert st["step"] == 2 and st["snapshot"]["step"] == 2
    assert len(client.get("/api/lab/state", params={"since": 0}).json()["curve"]) == 2
    # play, then pause: it advanced, and then it stops advancing
    client.post("/api/lab/play", json={})
    wait_for(lambda: state()["step"] > 40)
    client.post("/api/lab/pause", json={})
    st = wait_for(lambda: (x := state())["status"] == "paused" and x)
    st2 = client.get("/api/lab/state", params={"since": 0}).json()
    assert st2["step"] == st["step"] and len(st2["curve"]) == st["step"]
    assert [row[0] for row in st2["curve"]] == list(range(1, st["step"] + 1))
    snap = st2["snapshot"]
    assert snap["step"] == st["step"]
    assert np.asarray(snap["fake"]).shape == (SNAPSHOT_POINTS, 2)
    assert np.asarray(snap["surface"]).shape == (SURFACE_GRID, SURFACE_GRID)
    # stop: the loop checkpoints and the session ends; the run is an ordinary, interrupted run
    client.post("/api/lab/stop", json={})
    assert client.app.state.lab.session.wait(30)
    end = state()
    assert end["status"] == "stopped"
    assert end["step"] == st["step"]  # no step between the pause and the stop
    run = Run(runs / name)
    assert run.meta()["status"] == "interrupted" and load_checkpoint(run.last_checkpoint)
    assert [e["step"] for e in run.read_events()] == list(range(1, end["step"] + 1))
    rows = {row["name"]: row for row in client.get("/api/runs").json()["runs"]}
    assert rows[name]["status"] == "interrupted"
    r = client.post("/api/lab/step", json={})
    assert r.status_code == 409 and err(r) == (f"the live run {name} has ended (stopped): start "
                                               "a new one")
    shutil.rmtree(run.path)


def test_a_live_run_trains_exactly_the_weights_of_a_plain_run(client, runs):
    r = client.post("/api/lab/start", json={"loss": "gan", "optim": "adam", "steps": 40,
                                            "n_points": 512, "seed": 3})
    name = r.json()["run"]
    lab = client.app.state.lab
    assert lab.session.wait(60) and lab.session.status == "completed"
    assert lab.session.metrics and "modes_covered" in lab.session.metrics[-1]["metrics"]
    live = Run(runs / name)
    plain = Run.create(live.config(), runs, "plain-copy")
    train(plain, progress=False, verbose=False)
    a, b = load_checkpoint(live.last_checkpoint), load_checkpoint(plain.last_checkpoint)
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"
    # the lab's stream replays the finished session and ends
    with client.stream("GET", "/api/lab/stream") as s:
        evs = sse_events("".join(s.iter_text()))
    assert evs[0][0] == "scene" and evs[-1] == ("end", {"run": name, "status": "completed"})
    rows = sum((d["lanes"][0]["curve"] for e, d in evs if e == "update"), [])
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1)) and len(rows) == 40
    shutil.rmtree(live.path)
    shutil.rmtree(plain.path)


@pytest.mark.parametrize("body,message", [
    ({"loss": "gan-x"}, "unknown loss 'gan-x': choose one of gan, wgan, wgan-gp"),
    ({"data": "points:/etc/passwd"}, "unknown data 'points:/etc/passwd': choose one of circles, "
                                     "grid25, moons, ring8, spiral, swissroll, drawn"),
    ({"lr_g": 1.0}, "lr_g 1.0 is out of range: give a learning rate from 1e-06 to 0.1"),
    ({"steps": 0}, "steps 0 is out of range: give a whole number from 10 to 20000"),
    ({"n_critic": 2.5}, "lab setting n_critic must be a whole number"),
    ({"speeed": 3}, "unknown lab setting 'speeed': use data, loss, lr_d, lr_g, n_critic, "
                    "n_points, optim, paused, seed, speed, steps"),
    ({"speed": 0.1}, "speed 0.1 is out of range: give generator steps a second from 0.5 to "
                     "1000, or null for as fast as it goes"),
    ({"data": "drawn"}, "no drawn target on this server: draw one (or drop a points file) on "
                        "the lab page first"),
    ({"runs": [{"loss": "gan", "optim": "adam", "seed": 1}]},
     "unknown race run setting 'seed': use loss, lr_d, lr_g, n_critic, optim"),
    ({"runs": []}, "runs must be a list of 1 to 4 runs, each {loss, optim, lr_g, lr_d, "
                   "n_critic}"),
])
def test_bad_lab_settings_are_one_line_errors(client, runs, body, message):
    before = sorted(p.name for p in runs.iterdir())
    r = client.post("/api/lab/start", json=body)
    assert (r.status_code, err(r)) == (400, message)
    assert sorted(p.name for p in runs.iterdir()) == before  # no run was created


def test_lab_controls_without_a_session_say_what_to_do(runs):
    with TestClient(create_app(runs), base_url=BASE) as c:
        r = c.post("/api/lab/pause", json={})
        assert (r.status_code, err(r)) == (404, "no live 2-D lab run on this server: start one "
                                                "on the lab page")
        opts = c.get("/api/lab/options").json()
        assert opts["cells"]["wgan-rmsprop"] == {"lr_g": 5e-05, "lr_d": 5e-05, "n_critic": 5,
                                                 "betas": [0.9, 0.999], "loss": "wgan"}


# --- the command ------------------------------------------------------------------------------


def http_get(url: str, timeout: float = 30):
    """(status, headers, body) of a GET, HTTP errors included."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.mark.timeout(120)
def test_ganscope_serve_for_real_answers_and_stops_on_ctrl_c(runs):
    """The real command in its own process on a free loopback port: it prints its address,
    answers the run list and the page, and stops cleanly on Ctrl-C (SIGINT)."""
    import re
    import signal
    import subprocess
    import sys
    import urllib.error

    # Ctrl-C's default action in the server, as from a terminal: a child inherits an ignored
    # SIGINT (a pytest-xdist worker's may be), and the Ctrl-C below would be lost
    proc = subprocess.Popen([sys.executable, "-m", "ganscope", "serve", "--runs", str(runs),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()  # printed once the port is bound, before serving
        m = re.fullmatch(r"ganscope serve: (http://127\.0\.0\.1:(\d+)/)  \(runs: (.+); "
                         r"Ctrl-C to stop\)\n", line)
        assert m, (line, proc.poll() is not None and proc.stderr.read())
        base, port = m.group(1), int(m.group(2))
        assert m.group(3) == str(runs) and port > 0  # --port 0: a free one, no token on localhost
        # Until uvicorn listens, connections are refused: retry on exactly that, a bounded
        # number of times; each wait is a wait on the process (it returns early if it died).
        for _ in range(600):
            try:
                status, _, body = http_get(base + "api/runs")
                break
            except urllib.error.URLError as e:
                if not isinstance(e.reason, ConnectionRefusedError):
                    raise
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        else:
            pytest.fail("ganscope serve did not answer")
        assert status == 200
        names = {r["name"] for r in json.loads(body)["runs"]}
        assert {"img", "pts", "broken"} <= names
        status, headers, page = http_get(base)
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b"app.js" in page
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err_ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert "Traceback" not in err_, err_
    assert proc.returncode == 130 and err_.endswith("aborted\n"), (proc.returncode, err_)
    with pytest.raises(urllib.error.URLError):  # the port is closed
        http_get(base + "api/runs", timeout=5)


def test_serve_beyond_localhost_warns_and_wants_a_token(monkeypatch, capsys, runs):
    """The 0.0.0.0 case with uvicorn's run mocked (a test should not listen on every
    interface); the real server on 127.0.0.1 is the test above."""
    import uvicorn

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # keep this process's threads
    served = []
    monkeypatch.setattr(uvicorn.Server, "run",
                        lambda self, sockets=None: served.append(sockets[0].getsockname()))
    assert main(["serve", "--runs", str(runs), "--port", "0", "--host", "0.0.0.0"]) == 0
    assert served[0][0] == "0.0.0.0"
    out, err_ = capsys.readouterr()
    assert "?token=" in out and len(out.split("?token=")[1].split()[0]) >= 32
    assert err_.startswith("warning: listening on 0.0.0.0 makes ganscope reachable from other "
                           "machines")


def test_the_listening_socket_is_tcp_so_replies_are_not_delayed():
    import socket

    from ganscope.commands.serve import bind

    # asyncio sets TCP_NODELAY on accepted connections only when the listening socket says it
    # is TCP; with proto 0 every kept-alive reply waited ~40 ms for a delayed ACK (measured)
    with bind("127.0.0.1", 0) as s:
        assert s.proto == socket.IPPROTO_TCP


def test_serve_on_a_taken_port_is_one_line(capsys, runs):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--runs", str(runs), "--port", str(port)]) == 2
    _, err_ = capsys.readouterr()
    assert err_ == (f"error: cannot listen on 127.0.0.1:{port} (Address already in use): pick "
                    "another --port, or stop what uses it\n")
