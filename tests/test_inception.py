"""The FID Inception network: pytorch-fid's architecture key for key, its features on a seeded
stand-in weights file equal to pytorch-fid's own (a fixture computed once in a venv with
torchvision, see tests/data/make_inception_reference.py), and where the weights come from
(explicit file, environment, torch hub's cache, a download from a local HTTP server, and one
line when offline)."""

from __future__ import annotations

import hashlib
import http.server
import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import ganscope.metrics.inception as inc
from ganscope.errors import RunError

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from inception_standin import fixed_images, standin_state_dict  # noqa: E402

sys.path.remove(str(DATA))

REFERENCE = np.load(DATA / "inception_reference.npz")
# Measured: max |ganscope - pytorch-fid| = 2.9e-6 on features up to 8.4 (float32, the same
# ops in another torch build); 1e-4 leaves a 35x margin for other CPUs' kernels.
ATOL = 1e-4


def shapes_of(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def standin_file(tmp_path_factory) -> Path:
    """The seeded stand-in weights in the standard file format (a plain state dict)."""
    p = tmp_path_factory.mktemp("inception") / inc.WEIGHTS_FILE_NAME
    torch.save(standin_state_dict(shapes_of(inc.FIDInceptionV3())), p)
    return p


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """No explicit file, an empty torch hub, and a download address that refuses at once."""
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(inc.URL_ENV, "http://127.0.0.1:9/" + inc.WEIGHTS_FILE_NAME)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_state_dict_keys_and_shapes_match_pytorch_fid():
    want_keys = [str(k) for k in REFERENCE["keys"]]
    want_shapes = [tuple(s) for s in json.loads(str(REFERENCE["shapes"]))]
    got = shapes_of(inc.FIDInceptionV3())
    assert list(got) == want_keys  # same names, same order: the standard file loads strictly
    assert list(got.values()) == want_shapes
    assert len(got) == 566


def test_features_equal_pytorch_fid_on_the_standin(standin_file, no_weights):
    ex = inc.load_inception(standin_file)
    images = torch.from_numpy(fixed_images())
    feats, probs = ex.extract(images, batch_size=4)  # two batches, one partial
    ref = REFERENCE["features"]
    assert feats.shape == (6, 2048) and feats.dtype == np.float32 and probs.shape == (6, 0)
    assert np.abs(ref).max() > 1.0 and ref.std() > 0.5  # the stand-in gives real signal
    assert np.abs(feats - ref).max() < ATOL
    # grey as one channel = grey as three equal channels (pytorch-fid's PIL convert('RGB'))
    grey, _ = ex.extract(images[4:5, :1])
    assert np.abs(grey - ref[4:5]).max() < ATOL
    assert ex.name == "inception-v3-fid"
    assert ex.sha256 == hashlib.sha256(standin_file.read_bytes()).hexdigest()


def test_weights_from_flag_env_and_torch_hub(standin_file, no_weights, monkeypatch):
    assert inc.resolve_weights(standin_file) == standin_file
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(standin_file))
    assert inc.resolve_weights() == standin_file
    monkeypatch.delenv(inc.WEIGHTS_ENV)
    no_weights.mkdir(parents=True)
    (no_weights / inc.WEIGHTS_FILE_NAME).write_bytes(b"cached")
    assert inc.resolve_weights() == no_weights / inc.WEIGHTS_FILE_NAME
    assert inc.hub_checkpoints_dir() == no_weights


def test_missing_weights_offline_is_one_line(no_weights, tmp_path, monkeypatch):
    with pytest.raises(RunError) as e:
        inc.resolve_weights(progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"Inception weights {inc.WEIGHTS_FILE_NAME} are not in {no_weights} "
                          "and could not be downloaded (")
    assert msg.endswith(f"download {inc.WEIGHTS_URL} into {no_weights}, or pass "
                        f"--inception-weights FILE (or set ${inc.WEIGHTS_ENV}=FILE)")
    assert not any(no_weights.iterdir())  # nothing half-written
    with pytest.raises(RunError, match=r"^Inception weights .*nope.pth \(from "
                                       r"--inception-weights\) not found: give the path of "):
        inc.resolve_weights(tmp_path / "nope.pth")
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(tmp_path / "env.pth"))
    with pytest.raises(RunError, match=r"\(from \$GANSCOPE_INCEPTION_WEIGHTS\) not found"):
        inc.resolve_weights()


@pytest.fixture
def http_dir(tmp_path):
    """A local HTTP server (in a thread) serving the files of a folder."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_download_checks_the_hash_in_the_name(http_dir, no_weights, monkeypatch):
    root, base = http_dir
    payload = b"stand-in weights " * 1000
    sha = hashlib.sha256(payload).hexdigest()
    (root / f"pt_inception-test-{sha[:8]}.pth").write_bytes(payload)
    (root / "pt_inception-test-deadbeef.pth").write_bytes(payload)

    monkeypatch.setenv(inc.URL_ENV, f"{base}/pt_inception-test-deadbeef.pth")
    with pytest.raises(RunError) as e:
        inc.resolve_weights(progress=False)
    assert "\n" not in str(e.value) and "are damaged (SHA-256 " in str(e.value)
    assert not any(no_weights.iterdir())  # the bad download left nothing behind

    monkeypatch.setenv(inc.URL_ENV, f"{base}/pt_inception-test-{sha[:8]}.pth")
    got = inc.resolve_weights(progress=False)
    assert got == no_weights / inc.WEIGHTS_FILE_NAME and got.read_bytes() == payload
    assert [p.name for p in no_weights.iterdir()] == [inc.WEIGHTS_FILE_NAME]
    # and it is found in the cache from now on, even with the server gone
    monkeypatch.setenv(inc.URL_ENV, f"{base}/missing.pth")
    assert inc.resolve_weights(progress=False) == got


def test_a_file_of_another_network_fails_in_one_line(tmp_path, no_weights):
    p = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, p)
    with pytest.raises(RunError) as e:
        inc.load_inception(p)
    assert str(e.value) == (f"Inception weights {p} do not load (RuntimeError): it must be "
                            f"{inc.WEIGHTS_FILE_NAME} from {inc.WEIGHTS_URL}")
