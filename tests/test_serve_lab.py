"""The live 2-D lab past one run: a drawn target, G's force arrows, the latent mesh, races of
runs in lockstep, speed and the scrubber -- on the server, through the API.

Runs train in background threads; the tests wait on the race's own state (its clock, its
lanes' events), never on time.
"""

from __future__ import annotations

import base64
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

with warnings.catch_warnings():  # starlette asks for httpx2, which is not packaged yet
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from ganscope.cli import main
from ganscope.data.points import read_points
from ganscope.losses import LOSSES
from ganscope.serve import create_app
from ganscope.serve.lab import ARROW_POINTS, MESH_LINES, SNAPSHOT_POINTS, RaceClock, point_forces
from ganscope.training.run import Run
from test_serve import wait_for

BASE = "http://127.0.0.1"


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


@pytest.fixture
def client(runs):
    runs.mkdir()
    with TestClient(create_app(runs, poll_s=0.05, lab_plots=False), base_url=BASE) as c:
        yield c


def err(resp) -> str:
    return resp.json()["error"]


# --- the forces -----------------------------------------------------------------------------------


class Bump(nn.Module):
    """A planted D: highest at the target's centre c, falling with the squared distance (for
    the probability losses squashed by a sigmoid, as their D ends in one)."""

    def __init__(self, c, sigmoid: bool) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float32))
        self.sigmoid = sigmoid

    def forward(self, x):
        s = 2.0 - ((x - self.c) ** 2).sum(1, keepdim=True)
        return torch.sigmoid(s) if self.sigmoid else s


# every loss whose G raises D's score (lsgan's G aims at D = 1 instead, and inside the bump,
# where D > 1, is rightly pushed outwards)
@pytest.mark.parametrize("loss_name", ["bce", "wgan", "wgan-gp", "minimax", "hinge"])
def test_the_arrows_push_generated_points_towards_the_target(loss_name):
    loss = LOSSES.get(loss_name)()
    c = np.array([1.5, -0.5], np.float32)
    D = Bump(c, loss.sigmoid)
    rng = np.random.default_rng(0)
    fake = (c + rng.uniform(-3, 3, size=(200, 2))).astype(np.float32)
    fake = fake[np.linalg.norm(fake - c, axis=1) > 0.2]  # the direction at c itself is moot
    arrows = point_forces(D, loss, fake)
    assert arrows.shape == fake.shape and np.isfinite(arrows).all()
    towards = c - fake
    cos = (arrows * towards).sum(1) / (np.linalg.norm(arrows, axis=1)
                                       * np.linalg.norm(towards, axis=1))
    # the planted D is radial: every arrow points straight at c (measured: cos > 0.99999)
    assert cos.min() > 0.999
    # and the arrows are each point's own gradient, not the batch mean's: one point alone
    # gets the same arrow as inside the batch
    one = point_forces(D, loss, fake[:1])
    np.testing.assert_allclose(one[0], arrows[0], rtol=1e-5, atol=1e-7)
    assert D.c.grad is None  # D's weights are not touched


# --- a drawn target -----------------------------------------------------------------------------


def drawing(n=120, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 2 * np.pi, n)
    return np.round(np.stack([2 * np.cos(a), np.sin(a)], 1), 4).tolist()


def test_a_drawn_target_becomes_the_runs_points_file(client, runs):
    pts = drawing()
    r = client.post("/api/lab/target", json={"points": pts})
    assert r.status_code == 200 and r.json()["n"] == len(pts)
    assert client.get("/api/lab/target").json()["points"] == r.json()["points"]
    r = client.post("/api/lab/start", json={"data": "drawn", "steps": 10, "n_points": 256,
                                            "paused": True})
    assert r.status_code == 200, r.text
    name = r.json()["run"]
    lab = client.app.state.lab
    lab.control("stop")
    assert lab.session.wait(60)
    run = Run(runs / name)
    f = run.path / "target.csv"
    assert run.config().data.name == f"points:{f.resolve()}"
    np.testing.assert_array_equal(read_points(f).points, np.asarray(pts, np.float32))
    assert run.meta()["status"] == "interrupted"


@pytest.mark.parametrize("points,message", [
    ([], "the drawn target holds no points: paint some on the canvas or drop a points file"),
    ([[0, 0]] * 5, "the drawn target holds only 5 points, at least 16 are needed; add more "
                   "points"),
    ([[0, 0]] * 20 + [[1, "a"]], "drawn point 20 is [1, 'a']: give [x, y] numbers"),
    ([[0, 0]] * 20 + [[1, 2, 3]], "drawn point 20 is [1, 2, 3]: give [x, y] numbers"),
    ([[0, 0]] * 20 + [[1e9, 0]], "drawn point 20 holds [1000000000.0, 0]: give finite numbers "
                                 "within ±1000"),
    ([[0, 0]] * 20001, "the drawn target holds 20001 points, at most 20000 are taken: clear "
                       "some or lower the density"),
])
def test_bad_drawings_are_one_line_errors(client, points, message):
    r = client.post("/api/lab/target", json={"points": points})
    assert (r.status_code, err(r)) == (400, message)


def test_a_dropped_points_file_is_read_by_the_points_reader(client):
    text = "x,y\n" + "".join(f"{x},{y}\n" for x, y in drawing(30))
    r = client.post("/api/lab/target/file",
                    json={"name": "mine.csv", "content": base64.b64encode(text.encode()).decode()})
    assert r.status_code == 200 and r.json()["n"] == 30
    np.testing.assert_allclose(r.json()["points"], drawing(30), atol=1e-4)
    bad = "x,y\n1,2\n3,nan\n"
    r = client.post("/api/lab/target/file",
                    json={"name": "bad.csv", "content": base64.b64encode(bad.encode()).decode()})
    assert (r.status_code, err(r)) == (400, "points file bad.csv: line 3 holds nan; fix or "
                                            "delete that point")
    r = client.post("/api/lab/target/file", json={"name": "a.png", "content": "AAAA"})
    assert (r.status_code, err(r)) == (400, "points file a.png: unknown suffix '.png'; save "
                                            "the points as .csv, .txt, .dat or .npy")
    r = client.post("/api/lab/target/file", json={"name": "a.csv", "content": "%%%"})
    assert (r.status_code, err(r)) == (400, "the dropped file's content is not base64")


# --- races, lockstep, speed, scrubbing ------------------------------------------------------------


def test_the_clock_settles_a_pause_when_every_lane_is_held_and_a_play_at_once():
    """The reply to pause / play waits for the lanes (RaceClock.settle). A played lane that
    the speed limit still holds (0.5 steps a second: up to 2 s) is no longer held by the
    pause, so a play settles at once, not when the lane's next step is due."""
    import threading
    import time

    clock = RaceClock(2, paused=True, speed=0.5)
    snaps = []

    def lane(k):  # finishes step 1, then waits for the clock, as a lane's on_step does
        clock.arrive(k, 1, lambda: snaps.append(k))

    threads = [threading.Thread(target=lane, args=(k,), daemon=True) for k in (0, 1)]
    for t in threads:
        t.start()
    assert clock.settle("pause", 30)  # both held, each after its pause snapshot
    assert clock.state()["held"] and sorted(snaps) == [0, 1]
    clock._last_advance = time.monotonic()  # the next step is due in 2 s
    clock.control("play")
    assert clock.settle("play", 1.0)  # not held, though the speed keeps them 2 s more
    assert not clock.state()["held"] and clock.state()["playing"]
    clock.control("stop")
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)


def test_a_race_steps_in_lockstep_and_its_runs_are_ordinary_runs(client, runs, capsys):
    r = client.post("/api/lab/start", json={
        "data": "ring8", "steps": 3000, "n_points": 2048, "seed": 4, "paused": True,
        "runs": [{"loss": "gan", "optim": "adam"}, {"loss": "wgan-gp", "optim": "adam"}]})
    assert r.status_code == 200, r.text
    s = r.json()
    names = s["race"]["runs"]
    assert len(names) == 2 and names[0].startswith("race-") and names[0].endswith("-gan-adam")
    assert [x["settings"]["loss"] for x in s["lanes"]] == ["bce", "wgan-gp"]
    assert len(s["scenes"]) == 2 and s["scenes"][0]["target"] == s["scenes"][1]["target"]
    state = lambda: client.get("/api/lab/state").json()  # noqa: E731

    def held():  # every lane held at a pause, with its pause snapshot
        x = state()
        return x["race"]["held"] and x["race"]["status"] == "paused" and x

    x = wait_for(held)
    assert x["race"]["steps"] == [1, 1]
    for _ in range(3):  # single steps: both lanes, exactly one each
        before = x["race"]["steps"][0]
        client.post("/api/lab/step", json={})
        x = wait_for(lambda b=before: (y := held()) and y["race"]["steps"][0] > b and y)
        assert x["race"]["steps"] == [before + 1] * 2
        assert [lane["snapshot"]["step"] for lane in x["lanes"]] == [before + 1] * 2
    for _ in range(3):  # play, then pause: equal step counts at every pause
        before = x["race"]["steps"][0]
        r = client.post("/api/lab/play", json={}).json()["race"]
        assert (r["status"], r["held"]) == ("running", False)  # the reply is the played state
        wait_for(lambda b=before: state()["race"]["steps"][0] > b + 20)
        r = client.post("/api/lab/pause", json={}).json()["race"]
        assert (r["status"], r["held"]) == ("paused", True)  # the reply is the held state
        x = wait_for(held)
        steps = x["race"]["steps"]
        assert steps[0] == steps[1] and [lane["step"] for lane in x["lanes"]] == steps
        assert [lane["snapshot"]["step"] for lane in x["lanes"]] == steps
        assert [len(lane["curve"]) for lane in client.get(
            "/api/lab/state", params={"since": 0}).json()["lanes"]] == steps
    snap = x["lanes"][0]["snapshot"]
    assert np.asarray(snap["fake"]).shape == (SNAPSHOT_POINTS, 2)
    assert np.asarray(snap["arrows"]).shape == (ARROW_POINTS, 2)
    assert np.asarray(snap["mesh"]).shape == (MESH_LINES, MESH_LINES, 2)
    live = x["lanes"][0]["live"]
    assert live["n_modes"] == 8 and 0 <= live["modes_covered"] <= 8 and live["sliced_wasserstein"] > 0

    # the scrubber: kept snapshots of every lane at the same steps
    hl = x["lanes"][0]["history_len"]
    first = client.get("/api/lab/frame", params={"index": 0}).json()
    assert first["step"] == 1 and first["index"] == 0 and first["history_len"] == hl
    assert [f["step"] for f in first["lanes"]] == [1, 1]
    mid_step = steps[0] // 2
    mid = client.get("/api/lab/frame", params={"step": mid_step}).json()
    assert 1 <= mid["step"] <= mid_step and [f["step"] for f in mid["lanes"]] == [mid["step"]] * 2
    last = client.get("/api/lab/frame", params={"index": -1}).json()
    assert last["step"] == steps[0] and last["lanes"][1]["fake"] == x["lanes"][1]["snapshot"]["fake"]
    r = client.get("/api/lab/frame", params={"index": hl})
    assert (r.status_code, err(r)) == (404, f"no snapshot there: the kept snapshots are 0 to "
                                            f"{hl - 1}")
    assert err(client.get("/api/lab/frame")) == "give index=I (a kept snapshot) or step=S"

    # speed: the clock takes it; bad values are one line
    assert client.post("/api/lab/speed", json={"speed": 5}).json()["speed"] == 5
    r = client.post("/api/lab/speed", json={"speed": 0})
    assert (r.status_code, err(r)) == (400, "speed 0.0 is out of range: give generator steps a "
                                            "second from 0.5 to 1000, or null for as fast as it "
                                            "goes")
    assert client.post("/api/lab/speed", json={"speed": None}).json()["speed"] is None

    # stop: both runs end at the paused step, as ordinary interrupted runs
    client.post("/api/lab/stop", json={})
    race = client.app.state.lab.race
    assert all(s.wait(30) for s in race.sessions)
    assert client.get("/api/lab/state").json()["race"]["status"] == "stopped"
    for name in names:
        run = Run(runs / name)
        assert run.meta()["status"] == "interrupted"
        assert [e["step"] for e in run.read_events()] == list(range(1, steps[0] + 1))
        assert run.config().tech.ema == 0.0  # a lane shows G as it trains, not its average


def test_a_finished_race_compares_with_ganscope_compare(client, runs, capsys):
    r = client.post("/api/lab/start", json={
        "data": "ring8", "steps": 20, "n_points": 512, "seed": 2,
        "runs": [{"loss": "gan", "optim": "adam"}, {"loss": "wgan", "optim": "rmsprop"}]})
    names = r.json()["race"]["runs"]
    race = client.app.state.lab.race
    assert all(s.wait(60) for s in race.sessions)
    assert [s.status for s in race.sessions] == ["completed", "completed"]
    # lanes of different n_critic have different lengths: the shorter one leaves the lockstep
    # and the other goes on alone to its own end
    assert [s.step for s in race.sessions] == [s.total_steps for s in race.sessions]
    capsys.readouterr()
    assert main(["compare", "--runs-dir", str(runs), *names, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "modes_covered" in json.dumps(out) and all(n in json.dumps(out) for n in names)
