"""Frames per second of the live 2-D lab for 1, 2 and 4 racing runs, as a page receives them.

Starts the real app on a real uvicorn server (a child process, as ``ganscope serve`` is: the
client's JSON parsing here must not take the server's GIL; a free port on 127.0.0.1) over a
temporary runs dir, starts a race of N lanes (gan-adam, wgan-gp-adam, wgan-rmsprop,
gan-rmsprop; ring8, as fast as it goes) and reads the lab's SSE stream over HTTP as the page
does, parsing every event. After a warm-up it counts, for ``--seconds``:

* **fps**: frames: update events in which every lane carries a snapshot, all of one step, and
  that step is later than the last frame's (every panel new and of the same moment: what the
  page redraws from server state, all panels at once). Events whose snapshots are of different
  steps, or repeat a step, are counted apart (``mixed``, ``stale``; both should be 0);
* **lane fps**: snapshots received per lane per second (mean over lanes);
* **steps/s**: generator steps per second of each lane (they are in lockstep);
* **kB/frame**: all the stream's bytes (every event) over the frames.

The issue's target: at least 10 frames a second for 2 runs on 2 cores. Run on 2 cores with
``taskset -c 0,1``. Prints a table, writes JSON (``--out``, default
benchmarks/results/lab_fps.json); asserts nothing.

    .venv/bin/python benchmarks/lab_fps.py [--lanes 1,2,4] [--seconds 8] [--warmup 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "lab_fps.json"
CELLS = [("gan", "adam"), ("wgan-gp", "adam"), ("wgan", "rmsprop"), ("gan", "rmsprop")]


def _serve(root: str, conn) -> None:
    """The child process: the app on uvicorn on a free port (sent back through ``conn``)."""
    import threading

    import uvicorn
    from tqdm import tqdm

    from ganscope.commands.serve import bind
    from ganscope.serve import create_app

    # tqdm's default lock is a multiprocessing one, which a terminated child leaves to the
    # parent's resource tracker ("leaked semaphore" at exit); a thread lock is all it needs here
    tqdm.set_lock(threading.RLock())
    app = create_app(Path(root), lab_plots=False)
    sock = bind("127.0.0.1", 0)
    conn.send(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                  timeout_graceful_shutdown=2)).run(sockets=[sock])


def measure(port: int, lanes: int, seconds: float, warmup: float) -> dict:
    body = {"data": "ring8", "steps": 20000, "seed": 0,
            "runs": [{"loss": loss, "optim": optim} for loss, optim in CELLS[:lanes]]}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/api/lab/start", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.read()
    r.read()
    c.close()
    s = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    s.request("GET", "/api/lab/stream")
    resp = s.getresponse()
    t_start = time.monotonic()
    frames = lane_snaps = nbytes = mixed = stale = 0
    last_step = -1
    steps0 = steps1 = None
    t0 = t1 = None
    event = None
    while True:
        line = resp.readline()
        now = time.monotonic()
        if not line:
            break
        if line.startswith(b"event: "):
            event = line[7:].strip().decode()
        elif line.startswith(b"data: ") and event == "update":
            d = json.loads(line[6:])
            snap_steps = [lane["snapshot"]["step"] for lane in d["lanes"] if lane.get("snapshot")]
            if snap_steps and len(snap_steps) == lanes and len(set(snap_steps)) == 1:
                new_step = snap_steps[0] > last_step
                last_step = max(last_step, snap_steps[0])
            else:
                new_step = False
            if now - t_start < warmup:
                continue
            if t0 is None:
                t0, steps0 = now, d["race"]["steps"][0]
                continue
            lane_snaps += len(snap_steps)
            if len(snap_steps) == lanes:
                frames += new_step
                stale += not new_step and len(set(snap_steps)) == 1
                mixed += len(set(snap_steps)) > 1
            elif snap_steps:
                mixed += 1  # some panels new, others not
            nbytes += len(line)
            t1, steps1 = now, d["race"]["steps"][0]
            if now - t0 >= seconds:
                break
    s.close()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/api/lab/stop", "{}", {"Content-Type": "application/json"})
    c.getresponse().read()
    c.close()
    dt = (t1 - t0) if t0 is not None and t1 is not None else float("nan")
    return {"lanes": lanes, "seconds": round(dt, 2), "fps": round(frames / dt, 1),
            "lane_fps": round(lane_snaps / lanes / dt, 1),
            "steps_per_s": round((steps1 - steps0) / dt, 1),
            "kb_per_frame": round(nbytes / 1024 / max(frames, 1), 1),
            "frames": frames, "mixed": mixed, "stale": stale}


def _wait_ready(port: int, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/lab/options")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lab-fps-")) / "runs"
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(str(root), there), daemon=True)
    server.start()
    assert here.poll(60), "the server did not start"
    port = here.recv()
    _wait_ready(port)
    load0 = os.getloadavg()
    try:
        rows = [measure(port, int(n), a.seconds, a.warmup) for n in a.lanes.split(",")]
    finally:
        server.terminate()  # SIGTERM: uvicorn shuts down, the lab's runs checkpoint and end
        server.join(30)
    cores = len(os.sched_getaffinity(0))
    result = {"benchmark": "lab_fps", "cores": cores, "torch": torch.__version__,
              "torch_threads": torch.get_num_threads(), "cpu": platform.processor()
              or platform.machine(), "load_avg_before": load0, "load_avg": os.getloadavg(),
              "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"live 2-D lab, {cores} cores (affinity), load avg (1 min) {load0[0]:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"{'RUNS':>4}  {'FPS':>6}  {'LANE FPS':>8}  {'STEPS/S':>8}  {'KB/FRAME':>8}  "
          f"{'MIXED':>5}  {'STALE':>5}")
    for r in rows:
        print(f"{r['lanes']:>4}  {r['fps']:>6}  {r['lane_fps']:>8}  {r['steps_per_s']:>8}  "
              f"{r['kb_per_frame']:>8}  {r['mixed']:>5}  {r['stale']:>5}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
