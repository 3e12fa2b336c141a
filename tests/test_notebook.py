"""examples/quickstart.ipynb runs end to end in a real Jupyter kernel (nbclient + ipykernel) on
the tiny Fashion-MNIST files: what a student runs is what is tested, outputs included."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def _kernel_spec(root: Path) -> str:
    """A kernel spec that runs this very interpreter (the venv's python), not whatever
    ``python3`` a machine's Jupyter would find."""
    d = root / "kernels" / "ganscope-test"
    d.mkdir(parents=True)
    (d / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ganscope test", "language": "python"}))
    return "ganscope-test"


def test_quickstart_notebook_runs_and_shows_its_outputs(tmp_path, tiny_fmnist_dir, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = (f"EPOCHS = 2\nLIMIT = None\nN_EVAL = 64\n"
                     f"DATA_DIR = {str(tiny_fmnist_dir)!r}\n")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    name = _kernel_spec(tmp_path / "jupyter")
    work = tmp_path / "work"
    work.mkdir()
    client = nbclient.NotebookClient(nb, kernel_name=name, timeout=120,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError (with the cell's traceback) if a cell fails

    outputs = {i: c.get("outputs", []) for i, c in enumerate(nb.cells) if c.cell_type == "code"}

    def data_of(fragment: str, mime: str) -> list:
        cell = next(c for c in nb.cells if c.cell_type == "code" and fragment in c.source)
        return [o["data"][mime] for o in cell.outputs if mime in o.get("data", {})]

    # the run shows as HTML with its latest sample grid; the curves as two PNGs inline
    assert any("<img" in h and "completed, 2/2 epochs" in h for h in data_of("run = gs.train", "text/html"))
    curves = data_of("run.plot()", "text/html")
    assert curves and curves[0].count("<img") == 2
    # the generated images as one PNG grid of 8 28x28 images (4 x 30 + 2 wide at scale 2)
    png = data_of("images = run.generate", "image/png")
    assert len(png) == 1
    raw = base64.b64decode(png[0])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(raw[16:20], "big")
    assert width == (8 * 30 + 2) * 2
    assert data_of("images.shape", "text/plain") == ["(torch.Size([8, 1, 28, 28]), torch.uint8)"]
    # metrics as a table with the provenance line; the dict gives numbers
    table = data_of("metrics = run.evaluate", "text/html")
    assert table and "FID" in table[0] and "64 generated" in table[0]
    fid, classes = eval(data_of('round(metrics["fid"]', "text/plain")[0])  # a (float, int) tuple
    assert fid > 0 and 1 <= classes <= 10
    # the notebook's own nets trained, generated and were scored
    assert len(data_of("mine = gs.train", "image/png")) == 1
    runs = data_of("gs.runs()", "text/html")[0]
    assert runs.count("<tr>") == 3 and "modules" in runs  # header + two runs
    assert "course-nets" in data_of("gs.compare", "text/html")[0]
    # nothing went to stderr but the progress bars' text (no warnings, no tracebacks)
    for cell_outputs in outputs.values():
        for o in cell_outputs:
            assert o["output_type"] != "error"
            if o.get("name") == "stderr":
                assert "Warning" not in o["text"] and "Traceback" not in o["text"], o["text"]
    assert len(list(Path(os.environ["GANSCOPE_RUNS"]).iterdir())) == 2
    nbformat.write(nb, tmp_path / "executed.ipynb")  # to look at: pytest --basetemp=DIR
