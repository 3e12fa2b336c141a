"""The fixed Fashion-MNIST feature extractor behind FID, KID and PRDC.

Inception-v3 features mean little on 28x28 grey clothes, so ganscope ships its own small
classifier, trained once by :mod:`ganscope.domains.fashion_mnist.train_extractor` on the official training
split, with its weights inside the package. Its 128-d penultimate layer gives the features and
its softmax the class probabilities. The name carries a version and the weights a SHA-256: a
metric value is only comparable with another computed by the same extractor, so the weights are
never retrained in place — a new recipe ships under a new name.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganscope.errors import RunError
from ganscope.io import file_sha256

EXTRACTOR_NAME = "fmnist-cnn-v1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / f"{EXTRACTOR_NAME}.pt"
RECIPE_FILE = WEIGHTS_DIR / f"{EXTRACTOR_NAME}.json"
WEIGHTS_SHA256 = "08fffee7ec439bf915d299b214aaafeca0afce21fa096b605e4d1f357be3790c"

FEATURE_DIM = 128
FORWARD_CHUNK = 128  # images per forward pass in Extractor.extract (see there)
NUM_CLASSES = 10
# Pixel mean / std of the Fashion-MNIST training split in [0, 1]; fixed so that the network's
# input scaling is part of the architecture, not something each caller must remember.
FMNIST_MEAN = 0.2860
FMNIST_STD = 0.3530


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class FMNISTClassifier(nn.Module):
    """Small CNN: three conv+BN+ReLU+pool blocks (28->14->7->3), a 128-d ReLU layer, 10 logits.

    Input: float images (N, 1, 28, 28) in [0, 1]; the network normalises them itself.
    The third block pools to 3x3 so the dense layer has 1152 inputs, not 6272: that keeps the
    shipped weights near 1 MB while the test accuracy stays above 92 %.
    """

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128), dropout: float = 0.3
                 ) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.body = nn.Sequential(_conv_block(1, w1), _conv_block(w1, w2), _conv_block(w2, w3))
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(w3 * 3 * 3, FEATURE_DIM),
                                   nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, 128) penultimate activations (after ReLU) used by FID/KID/PRDC."""
        return self.embed(self.body((x - FMNIST_MEAN) / FMNIST_STD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both outputs from one pass, so metrics needing both cost a single forward."""
        f = self.features(x)
        return f, self.head(self.dropout(f))

    def describe(self) -> str:
        """One-line architecture summary recorded next to the weights."""
        w1 = self.body[0][0].out_channels
        w2 = self.body[1][0].out_channels
        w3 = self.body[2][0].out_channels
        return (f"in 1x28x28 /255 -> (x-{FMNIST_MEAN})/{FMNIST_STD} -> "
                f"[conv3x3 {w1}+BN+ReLU+maxpool2] -> [conv3x3 {w2}+BN+ReLU+maxpool2] -> "
                f"[conv3x3 {w3}+BN+ReLU+maxpool2] -> flatten {w3 * 9} -> "
                f"linear {FEATURE_DIM}+ReLU (features) -> dropout -> linear {NUM_CLASSES} (logits)")


def images_to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) or (N, 1, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]; else ValueError."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"extractor expects a uint8 tensor of images in 0..255, got {got}")
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"extractor expects images of shape (N, 28, 28) or (N, 1, 28, 28), "
            f"got {tuple(images.shape)}"
        )
    return images.float().div_(255.0)


class Extractor:
    """A loaded, frozen classifier in eval mode: uint8 images in, (features, probs) out."""

    label = "the Fashion-MNIST extractor"  # in messages about images it cannot score
    accepts = (1, 28, 28)  # the uint8 images it takes (the channel axis may be left out)

    def __init__(self, model: FMNISTClassifier, sha256: str, device: str = "cpu",
                 name: str = EXTRACTOR_NAME) -> None:
        # channels_last: about 1.5x faster convolutions and pooling on CPU (oneDNN's native layout)
        self.model = model.to(device, memory_format=torch.channels_last).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.name = name
        self.sha256 = sha256
        self.device = device
        self.feature_dim = FEATURE_DIM

    def extract(self, images: torch.Tensor, batch_size: int = 1000, progress: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, 128) and softmax probabilities (N, 10), both float32 numpy arrays.

        ``batch_size`` images are converted to float at a time (the progress bar counts these);
        each forward pass, under ``no_grad``, takes at most FORWARD_CHUNK of them so that the
        activations stay in cache: about 2x faster on CPU than passes of 1000.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        images_to_input(images[:1])  # validate dtype and shape before any work
        if images.ndim == 3:
            images = images.unsqueeze(1)
        n = images.shape[0]
        feats = np.empty((n, FEATURE_DIM), dtype=np.float32)
        probs = np.empty((n, NUM_CLASSES), dtype=np.float32)
        starts = range(0, n, batch_size)
        if progress:
            starts = tqdm(starts, desc=f"{self.name} features", unit="batch", leave=False)
        chunk = min(batch_size, FORWARD_CHUNK)
        with torch.no_grad():
            for i in starts:
                x = images_to_input(images[i:i + batch_size]).to(self.device)
                for j in range(0, len(x), chunk):
                    xc = x[j:j + chunk].contiguous(memory_format=torch.channels_last)
                    f, logits = self.model.features_and_logits(xc)
                    feats[i + j:i + j + len(xc)] = f.cpu().numpy()
                    probs[i + j:i + j + len(xc)] = torch.softmax(logits, dim=1).cpu().numpy()
        return feats, probs

    def __repr__(self) -> str:
        return f"Extractor({self.name}, sha256={self.sha256[:12]}..., device={self.device})"


def load_extractor(device: str = "cpu") -> Extractor:
    """The shipped extractor, its weights verified against WEIGHTS_SHA256; cached per process.

    Damaged or missing weights raise RunError: a metric computed with other weights would be
    silently incomparable with every published number.
    """
    return _load_cached(str(device), str(WEIGHTS_FILE), WEIGHTS_SHA256)


@functools.lru_cache(maxsize=8)
def _load_cached(device: str, path_str: str, want: str) -> Extractor:
    path = Path(path_str)
    if not path.is_file():
        raise RunError(f"extractor weights {path} are missing: reinstall ganscope")
    got = file_sha256(path)
    if got != want:
        raise RunError(
            f"extractor weights {path} are damaged (SHA-256 {got[:12]}... != {want[:12]}...): "
            "reinstall ganscope"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = FMNISTClassifier()
    model.load_state_dict(state)
    return Extractor(model, got, device)


def recipe() -> dict[str, Any]:
    """The provenance recorded when the shipped weights were trained (architecture, recipe,
    data checksums, test accuracy), read from the JSON that ships beside them."""
    try:
        return json.loads(RECIPE_FILE.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"extractor recipe {RECIPE_FILE} is unreadable ({e}): reinstall ganscope"
                       ) from None
