"""Inception-v3 pool features for FID, KID and PRDC on any images, as the standard FID code does.

Numbers in Inception features only compare with published ones when they are computed the way
everyone computes them: pytorch-fid's "FID Inception" (the TensorFlow Inception-v3 graph of
2015-12-05 ported to PyTorch, whose pooling differs from torchvision's in three blocks) with the
standard weights file ``pt_inception-2015-12-05-6726825d.pth``, images as RGB in [0, 1] resized
bilinearly to 299x299 and scaled to [-1, 1], and the 2048-d output of the final average pool.
This module rebuilds that network without torchvision (which cannot be installed beside every
torch), with module names and shapes equal to torchvision's ``Inception3``, so the standard
file loads with a strict ``load_state_dict``; tests check the keys and shapes against
pytorch-fid's own network and the features against pytorch-fid's own code.

The weights are large (~92 MB) and not shipped. :func:`resolve_weights` looks, in order, at a
file named explicitly (``--inception-weights FILE`` or ``$GANSCOPE_INCEPTION_WEIGHTS``), at the
file in torch hub's checkpoints folder (where pytorch-fid and torchvision cache it, so a machine
that ever ran pytorch-fid already has it), and otherwise downloads it there from pytorch-fid's
release (``$GANSCOPE_INCEPTION_URL`` overrides the address), checking the SHA-256 prefix in the
file name as torch hub does. Offline and missing, it fails with one line naming the file and
where to put it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ganscope.errors import RunError
from ganscope.io import file_sha256

EXTRACTOR_NAME = "inception-v3-fid"
WEIGHTS_FILE_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILE_NAME)
WEIGHTS_ENV = "GANSCOPE_INCEPTION_WEIGHTS"
URL_ENV = "GANSCOPE_INCEPTION_URL"
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the TensorFlow graph's classifier: not used for features, kept to load
INPUT_SIZE = 299
FORWARD_CHUNK = 32  # images per forward pass (299x299 activations: ~0.4 GB per 32 images)
DOWNLOAD_TIMEOUT_S = 30


# --- the network: torchvision's Inception3 layout with pytorch-fid's FID patches ------------------


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool leaves the zero padding out of the mean (pytorch-fid's patch)
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """Mixed_5b..5d (FID variant: average pool without the padding)."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Mixed_6a (as torchvision's)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """Mixed_6b..6e (FID variant: average pool without the padding)."""

    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Mixed_7a (as torchvision's)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b (FID variant: average pool without the padding) and Mixed_7c (FID variant:
    a max pool where the paper has an average pool; a quirk of the TensorFlow graph that FID
    numbers depend on, so it is kept)."""

    def __init__(self, c_in: int, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pool = (F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool
                else _avg_pool(x))
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pool)], 1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's ``fid_inception_v3()`` network (torchvision's ``Inception3`` with
    ``num_classes=1008, aux_logits=False`` and the FID blocks), whose :meth:`features` is
    pytorch-fid's ``InceptionV3([3])``: float images (N, 3, H, W) in [0, 1] -> (N, 2048)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, NUM_CLASSES)  # in the weights file; the features skip it

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)

    forward = features


# --- the weights file ------------------------------------------------------------------------------


def hub_checkpoints_dir() -> Path:
    """Where torch hub (and so pytorch-fid) caches downloaded weights: ``$TORCH_HOME/hub/
    checkpoints``, by default ``~/.cache/torch/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _how_to_get(where: Path) -> str:
    return (f"download {WEIGHTS_URL} into {where}, or pass --inception-weights FILE "
            f"(or set ${WEIGHTS_ENV}=FILE)")


def resolve_weights(path: str | os.PathLike | None = None, *, download: bool = True,
                    progress: bool = True) -> Path:
    """The Inception weights file: ``path``, else ``$GANSCOPE_INCEPTION_WEIGHTS``, else torch
    hub's cached copy, else downloaded there. RunError (one line) when none can be had."""
    explicit, origin = (path, "--inception-weights") if path else (
        os.environ.get(WEIGHTS_ENV) or None, f"${WEIGHTS_ENV}")
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise RunError(f"Inception weights {p} (from {origin}) not found: give the path of "
                           f"{WEIGHTS_FILE_NAME} ({WEIGHTS_URL})")
        return p
    where = hub_checkpoints_dir()
    cached = where / WEIGHTS_FILE_NAME
    if cached.is_file():
        return cached
    if not download:
        raise RunError(f"Inception weights {WEIGHTS_FILE_NAME} are not in {where}: "
                       + _how_to_get(where))
    url = os.environ.get(URL_ENV) or WEIGHTS_URL
    download_weights(url, cached, progress=progress)
    return cached


def download_weights(url: str, dest: Path, *, progress: bool = True) -> None:
    """Fetch ``url`` into ``dest`` atomically (a partial download never takes its name). When
    the URL's file name carries a hash (``NAME-<hex>.pth``, torch hub's convention), the file's
    SHA-256 must start with it: a truncated or substituted file is refused."""
    where = dest.parent
    m = re.search(r"-([a-f0-9]{8,})\.", url.rsplit("/", 1)[-1])
    tmp = None
    try:
        where.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r:
            total = int(r.headers.get("Content-Length") or 0) or None
            fd, tmp = tempfile.mkstemp(dir=where, prefix=".inception-", suffix=".part")
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as f, tqdm(
                    total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}",
                    disable=not progress, leave=False, file=sys.stderr) as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        if m and not h.hexdigest().startswith(m.group(1)):
            raise RunError(f"the Inception weights downloaded from {url} are damaged (SHA-256 "
                           f"{h.hexdigest()[:12]}... does not start with {m.group(1)}): "
                           + _how_to_get(where))
        os.replace(tmp, dest)
        tmp = None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or type(e).__name__
        raise RunError(f"Inception weights {WEIGHTS_FILE_NAME} are not in {where} and could not "
                       f"be downloaded ({reason}): " + _how_to_get(where)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def load_inception(path: str | os.PathLike | None = None, device: str = "cpu", *,
                   download: bool = True, progress: bool = True) -> InceptionExtractor:
    """The frozen FID Inception network as an :class:`InceptionExtractor` (cached per process
    and file)."""
    p = resolve_weights(path, download=download, progress=progress).resolve()
    st = p.stat()
    return _load_cached(str(p), st.st_size, st.st_mtime_ns, str(device))


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, size: int, mtime_ns: int, device: str) -> InceptionExtractor:
    p = Path(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
        model = FIDInceptionV3()
        model.load_state_dict(state)  # strict: a file of another network fails here
    except Exception as e:  # noqa: BLE001  (any unloadable file is the same one-line failure)
        raise RunError(f"Inception weights {p} do not load ({type(e).__name__}): it must be "
                       f"{WEIGHTS_FILE_NAME} from {WEIGHTS_URL}") from None
    return InceptionExtractor(model, file_sha256(p), device)


# --- the extractor -------------------------------------------------------------------------------


class InceptionExtractor:
    """uint8 images of any size, grey or RGB -> (N, 2048) pool features; no class
    probabilities (``probs`` is (N, 0): Inception's 1008 ImageNet classes say nothing about a
    user's own data, so the ``classes`` metric does not apply)."""

    label = "the Inception-v3 extractor"

    def __init__(self, model: FIDInceptionV3, sha256: str, device: str = "cpu",
                 accepts: tuple[int, int, int] = (3, INPUT_SIZE, INPUT_SIZE)) -> None:
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.name = EXTRACTOR_NAME
        self.sha256 = sha256
        self.device = device
        self.feature_dim = FEATURE_DIM
        #: the images a caller scores with it (a domain sets its own sample shape here)
        self.accepts = accepts

    def for_shape(self, shape: tuple[int, int, int]) -> InceptionExtractor:
        """The same network, declared to take images of ``shape`` (C, H, W)."""
        return InceptionExtractor(self.model, self.sha256, self.device, tuple(shape))

    def extract(self, images: torch.Tensor, batch_size: int = FORWARD_CHUNK,
                progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, 2048) float32 and empty probabilities (N, 0).

        uint8 (N, H, W), (N, 1, H, W) or (N, 3, H, W): grey is repeated to RGB (what PIL's
        ``convert('RGB')`` does in pytorch-fid), then /255 as torchvision's ``ToTensor``.
        """
        t = torch.as_tensor(images)
        if t.dtype != torch.uint8:
            raise ValueError(f"the Inception extractor takes uint8 images, got {t.dtype}")
        if t.ndim == 3:
            t = t.unsqueeze(1)
        if t.ndim != 4 or t.shape[1] not in (1, 3):
            raise ValueError(f"expected images (N, H, W) or (N, 1|3, H, W), got {tuple(t.shape)}")
        n = int(t.shape[0])
        feats = np.empty((n, FEATURE_DIM), dtype=np.float32)
        starts = range(0, n, max(1, batch_size))
        bar = tqdm(starts, desc=f"{self.name} features", unit="batch", leave=False,
                   disable=not progress, file=sys.stderr)
        with torch.no_grad():
            for i in bar:
                x = t[i:i + batch_size].to(self.device).float().div_(255.0)
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)
                feats[i:i + len(x)] = self.model.features(x).float().cpu().numpy()
        return feats, np.zeros((n, 0), dtype=np.float32)
