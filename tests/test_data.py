"""The Fashion-MNIST IDX reader: round trip, search order, corrupt files, download, real data."""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import struct
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

import ganscope.data.fashion_mnist as fm
from ganscope.data.fashion_mnist import FILES, load_fashion_mnist, write_idx_gz
from ganscope.errors import DataError

FIX = "replace it with the original .gz file"
TRAIN_IMG, TRAIN_LBL = FILES[("train", "images")], FILES[("train", "labels")]


def copy_dir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def load_error(d: Path, split: str = "train") -> str:
    with pytest.raises(DataError) as excinfo:
        load_fashion_mnist(split, data_dir=d, download=False)
    return str(excinfo.value)


# --------------------------------------------------------------------------------------------
# Round trip


@pytest.mark.parametrize("split", ["train", "test"])
def test_round_trip_values_and_dtypes(tiny_fmnist_dir, tiny_fmnist_arrays, split):
    images, labels = tiny_fmnist_arrays[split]
    ds = load_fashion_mnist(split, data_dir=tiny_fmnist_dir, download=False)
    assert len(ds) == len(images) == {"train": 256, "test": 64}[split]
    assert ds.split == split
    assert ds.images.dtype == torch.uint8
    assert ds.images.shape == (len(images), 28, 28)
    assert ds.labels.dtype == torch.int64
    assert ds.labels.shape == (len(images),)
    assert np.array_equal(ds.images.numpy(), images)
    assert np.array_equal(ds.labels.numpy(), labels.astype(np.int64))
    assert ds.labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_write_idx_gz_is_the_real_format(tmp_path):
    imgs = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 256
    write_idx_gz(tmp_path / "i.gz", imgs)
    write_idx_gz(tmp_path / "l.gz", np.array([3, 7]))
    raw_i = gzip.decompress((tmp_path / "i.gz").read_bytes())
    raw_l = gzip.decompress((tmp_path / "l.gz").read_bytes())
    assert raw_i[:16] == struct.pack(">IIII", 0x803, 2, 28, 28)
    assert raw_i[16:] == imgs.astype(np.uint8).tobytes()
    assert raw_l == struct.pack(">II", 0x801, 2) + bytes([3, 7])
    with pytest.raises(ValueError):
        write_idx_gz(tmp_path / "x.gz", np.zeros((2, 2, 2, 2)))


def test_as_float_range_and_exact_endpoints(tiny_fmnist_dir):
    ds = load_fashion_mnist("train", data_dir=tiny_fmnist_dir, download=False)
    x = ds.as_float()
    assert x.shape == (256, 1, 28, 28)
    assert x.dtype == torch.float32
    assert torch.all(x[0] == -1.0)  # pixel 0
    assert torch.all(x[1] == 1.0)  # pixel 255
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    expected = ds.images.double().unsqueeze(1) / 127.5 - 1.0
    assert torch.allclose(x.double(), expected, atol=1e-6)
    # A pixel of 51 maps to 51 / 127.5 - 1 = -0.6.
    ds.images[2, 0, 0] = 51
    assert ds.as_float()[2, 0, 0, 0].item() == pytest.approx(-0.6, abs=1e-6)
    # Scaling must not touch the stored uint8 images.
    assert ds.images.dtype == torch.uint8 and ds.images[1].max().item() == 255


def test_limit_keeps_the_first_n(tiny_fmnist_dir, tiny_fmnist_arrays):
    ds = load_fashion_mnist("train", data_dir=tiny_fmnist_dir, download=False, limit=10)
    assert len(ds) == 10
    assert ds.source["n"] == 10
    assert np.array_equal(ds.images.numpy(), tiny_fmnist_arrays["train"][0][:10])
    assert ds.labels.tolist() == list(range(10))


def test_unknown_split():
    with pytest.raises(DataError) as excinfo:
        load_fashion_mnist("valid")
    assert str(excinfo.value) == "unknown Fashion-MNIST split 'valid': use 'train' or 'test'"


def test_synthetic_files_are_unverified(tiny_fmnist_dir):
    ds = load_fashion_mnist("train", data_dir=tiny_fmnist_dir, download=False)
    assert ds.source == {
        "dir": str(tiny_fmnist_dir),
        "found_by": "--data-dir",
        "checksums": {TRAIN_IMG: "unverified", TRAIN_LBL: "unverified"},
        "verified": False,
        "n": 256,
    }


# --------------------------------------------------------------------------------------------
# Search order


def test_data_dir_beats_env_beats_cache(tmp_path, monkeypatch, make_fmnist):
    explicit = make_fmnist(tmp_path / "explicit", n_train=11, n_test=5)
    env = make_fmnist(tmp_path / "env", n_train=12, n_test=5)
    cache = make_fmnist(fm.cache_dir(), n_train=13, n_test=5)
    assert cache == tmp_path / "cache" / "fashion-mnist"
    debian = make_fmnist(tmp_path / "debian", n_train=14, n_test=5)
    monkeypatch.setattr(fm, "DEBIAN_DIR", debian)
    monkeypatch.setenv("GANSCOPE_DATA", str(env))

    ds = load_fashion_mnist("train", data_dir=explicit, download=False)
    assert (len(ds), ds.source["found_by"], ds.source["dir"]) == (11, "--data-dir", str(explicit))
    ds = load_fashion_mnist("train", download=False)
    assert (len(ds), ds.source["found_by"], ds.source["dir"]) == (12, "GANSCOPE_DATA", str(env))
    monkeypatch.delenv("GANSCOPE_DATA")
    ds = load_fashion_mnist("train", download=False)
    assert (len(ds), ds.source["found_by"], ds.source["dir"]) == (13, "cache", str(cache))
    shutil.rmtree(cache)
    ds = load_fashion_mnist("train", download=False)
    assert (len(ds), ds.source["found_by"], ds.source["dir"]) == (14, "debian", str(debian))


def test_env_dir_without_the_files_is_skipped(tmp_path, monkeypatch, make_fmnist):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("GANSCOPE_DATA", str(tmp_path / "empty"))
    cache = make_fmnist(fm.cache_dir(), n_train=7, n_test=3)
    ds = load_fashion_mnist("test", download=False)
    assert (len(ds), ds.source["found_by"]) == (3, "cache")
    assert ds.source["dir"] == str(cache)


def test_explicit_dir_missing_files_raises_and_does_not_fall_back(tmp_path, monkeypatch,
                                                                  make_fmnist):
    # Data is available elsewhere, but an explicit folder must not silently be replaced.
    monkeypatch.setenv("GANSCOPE_DATA", str(make_fmnist(tmp_path / "env")))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_error(empty) == (
        f"Fashion-MNIST train files missing in {empty}: "
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz; "
        "put the original .gz files there or drop --data-dir to search the usual places"
    )
    half = make_fmnist(tmp_path / "half")
    (half / FILES[("test", "labels")]).unlink()
    assert load_error(half, "test") == (
        f"Fashion-MNIST test files missing in {half}: t10k-labels-idx1-ubyte.gz; "
        "put the original .gz files there or drop --data-dir to search the usual places"
    )
    # The train split in the same folder is complete and still loads.
    assert len(load_fashion_mnist("train", data_dir=half, download=False)) == 256


def test_not_found_anywhere_without_download(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_fashion_mnist("train", download=False)
    cache = tmp_path / "cache" / "fashion-mnist"
    debian = tmp_path / "no-debian-fashion-mnist"
    assert str(excinfo.value) == (
        f"Fashion-MNIST not found in {cache}, {debian}: pass --data-dir DIR with the four .gz "
        "files, or `apt-get install dataset-fashion-mnist`"
    )


# --------------------------------------------------------------------------------------------
# Corrupt files: one pinned line each


@pytest.fixture
def broken(tmp_path, tiny_fmnist_dir) -> Path:
    return copy_dir(tiny_fmnist_dir, tmp_path / "broken")


def write_gz_raw(path: Path, raw: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(raw)


def test_not_gzip(broken):
    p = broken / TRAIN_IMG
    p.write_bytes(b"hello, this is not gzip")
    assert load_error(broken) == (
        f"corrupt Fashion-MNIST file {p}: not a readable gzip file "
        f"(Not a gzipped file (b'he')); {FIX}"
    )


def test_truncated_gzip_stream(broken):
    p = broken / TRAIN_LBL
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert load_error(broken) == (
        f"corrupt Fashion-MNIST file {p}: not a readable gzip file "
        f"(Compressed file ended before the end-of-stream marker was reached); {FIX}"
    )


def test_wrong_magic(broken):
    p = broken / TRAIN_IMG
    shutil.copy(broken / TRAIN_LBL, p)  # a labels file where the images belong
    assert load_error(broken) == (
        f"corrupt Fashion-MNIST file {p}: magic number 0x00000801, expected 0x00000803 "
        f"(images); {FIX}"
    )


def test_truncated_data(broken, tiny_fmnist_arrays):
    p = broken / TRAIN_IMG
    images = tiny_fmnist_arrays["train"][0]
    write_gz_raw(p, struct.pack(">IIII", 0x803, 256, 28, 28) + images.tobytes()[:-100])
    assert load_error(broken) == (
        f"corrupt Fashion-MNIST file {p}: 200604 data bytes for 256 items, expected 200704; {FIX}"
    )


def test_truncated_header(broken):
    p = broken / TRAIN_LBL
    write_gz_raw(p, struct.pack(">I", 0x801))
    assert load_error(broken) == f"corrupt Fashion-MNIST file {p}: truncated header; {FIX}"


def test_32x32_images(broken):
    p = broken / TRAIN_IMG
    write_idx_gz(p, np.zeros((256, 32, 32), dtype=np.uint8))
    assert load_error(broken) == (
        f"corrupt Fashion-MNIST file {p}: images are 32x32, expected 28x28; {FIX}"
    )


def test_label_out_of_range(broken):
    p = broken / TRAIN_LBL
    labels = np.arange(256) % 10
    labels[100] = 12
    write_idx_gz(p, labels)
    assert load_error(broken) == (
        f"corrupt Fashion-MNIST file {p}: label 12 outside 0..9; {FIX}"
    )


def test_images_labels_count_mismatch(broken):
    write_idx_gz(broken / TRAIN_LBL, np.arange(255) % 10)
    assert load_error(broken) == (
        f"Fashion-MNIST train files in {broken} disagree: 256 images but 255 labels; "
        "replace them with the original .gz files"
    )


# --------------------------------------------------------------------------------------------
# Download against a local HTTP server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def serve(monkeypatch):
    """serve(folder) -> base URL of a local HTTP server for that folder (stopped afterwards)."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    servers = []

    def start(folder: Path) -> str:
        httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_into_cache_then_load(tmp_path, monkeypatch, make_fmnist, serve,
                                       tiny_fmnist_arrays):
    served = make_fmnist(tmp_path / "served")
    monkeypatch.setattr(fm, "OFFICIAL_MD5", {n: md5_of(served / n) for n in FILES.values()})
    # The served files stand in for the official ones, so their sizes are "official" too.
    monkeypatch.setattr(fm, "SIZES", {"train": 256, "test": 64})
    monkeypatch.setenv("GANSCOPE_FASHION_MNIST_URL", serve(served))
    cache = tmp_path / "cache" / "fashion-mnist"
    assert not cache.exists()

    ds = load_fashion_mnist("train")
    assert ds.source["found_by"] == "download"
    assert ds.source["dir"] == str(cache)
    assert ds.source["verified"] is True
    assert ds.source["checksums"] == {TRAIN_IMG: "official-md5", TRAIN_LBL: "official-md5"}
    assert sorted(p.name for p in cache.iterdir()) == sorted([TRAIN_IMG, TRAIN_LBL])
    assert (cache / TRAIN_IMG).read_bytes() == (served / TRAIN_IMG).read_bytes()
    assert np.array_equal(ds.images.numpy(), tiny_fmnist_arrays["train"][0])

    # The second load finds the cached copy and does not download again.
    monkeypatch.setenv("GANSCOPE_FASHION_MNIST_URL", "http://127.0.0.1:1/")
    again = load_fashion_mnist("train")
    assert again.source["found_by"] == "cache"


def test_download_md5_mismatch_leaves_nothing(tmp_path, monkeypatch, make_fmnist, serve):
    good = make_fmnist(tmp_path / "good", seed=0)
    bad = make_fmnist(tmp_path / "bad", seed=5)  # same format, other content
    expected = md5_of(good / TRAIN_IMG)
    got = md5_of(bad / TRAIN_IMG)
    assert expected != got
    monkeypatch.setattr(fm, "OFFICIAL_MD5", {n: md5_of(good / n) for n in FILES.values()})
    monkeypatch.setenv("GANSCOPE_FASHION_MNIST_URL", serve(bad))

    with pytest.raises(DataError) as excinfo:
        load_fashion_mnist("train")
    assert str(excinfo.value) == (
        f"downloaded {TRAIN_IMG} has MD5 {got}, expected {expected}: the download was "
        "corrupted or the server changed; try again, or pass --data-dir"
    )
    cache = tmp_path / "cache" / "fashion-mnist"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_unreachable_server(tmp_path, monkeypatch, serve):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GANSCOPE_FASHION_MNIST_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(DataError) as excinfo:
        load_fashion_mnist("train")
    refused = ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
    assert str(excinfo.value) == (
        f"could not download http://127.0.0.1:{port}/{TRAIN_IMG} ({refused}); put the four "
        "Fashion-MNIST .gz files in a folder and pass --data-dir, or "
        "`apt-get install dataset-fashion-mnist`"
    )
    cache = tmp_path / "cache" / "fashion-mnist"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_connection_reset_mid_transfer(tmp_path):
    """A server that sends headers and part of the body, then resets the connection."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def handle():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST, not FIN

    th = threading.Thread(target=handle, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{port}/"
    try:
        with pytest.raises(DataError) as excinfo:
            fm.download_file(TRAIN_LBL, tmp_path / "dest", base_url=base)
    finally:
        th.join(5)
        srv.close()
    reset = ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
    assert str(excinfo.value) == (
        f"could not download {base}{TRAIN_LBL} ({reset}); put the four Fashion-MNIST .gz files "
        "in a folder and pass --data-dir, or `apt-get install dataset-fashion-mnist`"
    )
    assert list((tmp_path / "dest").iterdir()) == []


def test_download_404_gives_the_could_not_download_line(tmp_path, serve):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = serve(empty)
    with pytest.raises(DataError) as excinfo:
        fm.download_file(TRAIN_LBL, tmp_path / "dest", base_url=base)
    # The reason is the server's own reason phrase (http.server says "File not found").
    assert str(excinfo.value) == (
        f"could not download {base}{TRAIN_LBL} (File not found); put the four Fashion-MNIST "
        ".gz files in a folder and pass --data-dir, or `apt-get install dataset-fashion-mnist`"
    )
    assert list((tmp_path / "dest").iterdir()) == []


# --------------------------------------------------------------------------------------------
# The real data set (Debian's dataset-fashion-mnist)


_REAL: dict[str, fm.FashionMNIST] = {}  # each real split is read once per session


def real_split(path: Path, split: str) -> fm.FashionMNIST:
    if split not in _REAL:
        _REAL[split] = load_fashion_mnist(split, data_dir=path, download=False)
    return _REAL[split]


@pytest.mark.realdata
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_real_sizes_and_verification(real_fmnist, split, n):
    ds = real_split(real_fmnist, split)
    assert len(ds) == n
    assert ds.images.shape == (n, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.source["verified"] is True
    assert ds.source["checksums"] == {
        FILES[(split, "images")]: "official-payload-sha256",
        FILES[(split, "labels")]: "official-payload-sha256",
    }
    assert sorted(ds.labels.unique().tolist()) == list(range(10))
    assert torch.bincount(ds.labels).tolist() == [n // 10] * 10


@pytest.mark.realdata
def test_real_train_first_labels_and_pixel_mean(real_fmnist):
    ds = real_split(real_fmnist, "train")
    assert ds.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert round(ds.images.double().mean().item(), 2) == 72.94
