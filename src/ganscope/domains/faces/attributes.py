"""The shipped CelebA attribute classifier: P(attribute) for real or generated faces.

A small CNN on 32x32 RGB faces (CelebA's aligned crops cut as ``ganscope train e6-faces`` cuts
them: centre square of 0.8 x the width), multi-label: one logit per attribute in
:data:`ATTRIBUTES`, trained with binary cross-entropy by :mod:`ganscope.domains.faces.train_attributes`
on the first 9,000 of CelebA's first 10,000 images and held out on the last 1,000. Its weights
ship inside the package with a JSON card (recipe, data hashes, per-attribute held-out accuracy
and base rate) and are SHA-256-checked before ``torch.load(weights_only=True)``, as the
Fashion-MNIST extractor's are: a number measured with other weights is not comparable, so the
weights are never retrained in place; a new recipe ships under a new name.

:class:`AttributeClassifier` is the ``scorer`` of a
:class:`~ganscope.directions.base.DirectionContext`: images (N, 3, H, W) in [-1, 1] (generator
output; any H = W, resized to 32 with antialiasing) -> (N, A + 1) float32, the attribute
probabilities in :attr:`AttributeClassifier.columns` order followed by the pixel-based yaw
proxy (:mod:`ganscope.domains.faces.yaw`, column ``Yaw``; not a probability: about -0.15..0.15,
> 0 turned towards the image's right). Its 128-d penultimate activations
(:meth:`AttributeClassifier.features`) measure how far a face moves along a walk.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganscope.domains.faces.yaw import YAW, yaw
from ganscope.errors import RunError
from ganscope.io import file_sha256

CLASSIFIER_NAME = "celeba-attr-v1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / f"{CLASSIFIER_NAME}.pt"
CARD_FILE = WEIGHTS_DIR / f"{CLASSIFIER_NAME}.json"
WEIGHTS_SHA256 = "426bb830eb00458709dbf4ff5e18c5926157a9d35a0d4984f84c481c908e7734"

# The attributes it predicts: the six the issue names first, then others that are visible at
# 32 px and make side effects of an edit measurable (hair colour, make-up, beard, hat, bangs).
ATTRIBUTES = (
    "Male", "Smiling", "Young", "Eyeglasses", "Mouth_Slightly_Open", "Blond_Hair",
    "Black_Hair", "Bangs", "Wearing_Lipstick", "Heavy_Makeup", "No_Beard", "Wearing_Hat",
)
INPUT_SIZE = 32
CROP = 0.8  # the CelebA crop (fraction of the width) the training images were cut with
FEATURE_DIM = 128
FORWARD_CHUNK = 256  # images per forward pass


def _block(c_in: int, c_out: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return layers + [nn.MaxPool2d(2)]


class AttributeNet(nn.Module):
    """Three conv stages (32->16->8->4 px), a 128-d ReLU layer (the features), one logit per
    attribute. Input: float (N, 3, 32, 32) in [-1, 1]."""

    def __init__(self, n_attributes: int = len(ATTRIBUTES),
                 widths: tuple[int, int, int] = (32, 64, 128), dropout: float = 0.3) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.body = nn.Sequential(*_block(3, w1, 2), *_block(w1, w2, 2), *_block(w2, w3, 1))
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(w3 * 4 * 4, FEATURE_DIM),
                                   nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, n_attributes)
        self.widths = widths

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.head(self.dropout(f))

    def describe(self) -> str:
        w1, w2, w3 = self.widths
        return (f"in 3x{INPUT_SIZE}x{INPUT_SIZE} in [-1, 1] -> [conv3x3 {w1}+BN+ReLU]x2+maxpool2 "
                f"-> [conv3x3 {w2}+BN+ReLU]x2+maxpool2 -> [conv3x3 {w3}+BN+ReLU]+maxpool2 -> "
                f"flatten {w3 * 16} -> linear {FEATURE_DIM}+ReLU (features) -> dropout -> "
                f"linear {self.head.out_features} (one logit per attribute)")


def to_input(images: torch.Tensor) -> torch.Tensor:
    """Faces as the network takes them: float32 (N, 3, 32, 32) in [-1, 1].

    ``images``: uint8 (N, 3, H, W) in 0..255 (data as loaded) or float (N, 3, H, W) in [-1, 1]
    (generator output, clamped); square, any size (resized with antialiasing, bilinear).
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"expected a tensor of images, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"expected square RGB faces (N, 3, S, S), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        x = images.float().div(127.5).sub(1.0)
    else:
        x = images.float().clamp(-1, 1)
    if x.shape[-1] != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True,
                          align_corners=False)
    return x


class AttributeClassifier:
    """A loaded, frozen classifier in eval mode, callable as a DirectionContext scorer."""

    def __init__(self, model: AttributeNet, sha256: str, device: str | torch.device = "cpu",
                 attributes: tuple[str, ...] = ATTRIBUTES, name: str = CLASSIFIER_NAME) -> None:
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.sha256, self.device, self.name = sha256, device, name
        self.attributes = tuple(attributes)
        self.columns = self.attributes + (YAW,)  # the scorer's column names

    @torch.no_grad()
    def features_and_probs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 128) features and (N, A) probabilities, float32 on the CPU."""
        feats, probs = [], []
        for i in range(0, images.shape[0], FORWARD_CHUNK):
            x = to_input(images[i:i + FORWARD_CHUNK]).to(self.device)
            f, logits = self.model.features_and_logits(x)
            feats.append(f.float().cpu())
            probs.append(torch.sigmoid(logits).float().cpu())
        if not feats:
            return torch.zeros(0, FEATURE_DIM), torch.zeros(0, len(self.attributes))
        return torch.cat(feats), torch.cat(probs)

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """P(attribute) per image, (N, A) float32."""
        return self.features_and_probs(images)[1]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The 128-d penultimate activations, (N, 128) float32."""
        return self.features_and_probs(images)[0]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """The scorer: (N, A + 1) = the probabilities, then the yaw proxy (column ``Yaw``)."""
        p = self.probs(images)
        return torch.cat([p, yaw(images.detach().float().cpu()).unsqueeze(1)], 1)

    def __repr__(self) -> str:
        return f"AttributeClassifier({self.name}, sha256={self.sha256[:12]}..., {self.device})"


def load_attribute_classifier(device: str | torch.device = "cpu") -> AttributeClassifier:
    """The shipped classifier, its weights verified against WEIGHTS_SHA256; cached per process.

    Missing or damaged weights raise RunError (one line): numbers measured with other weights
    would be silently incomparable with the card's.
    """
    return _load_cached(str(device), str(WEIGHTS_FILE), WEIGHTS_SHA256)


@functools.lru_cache(maxsize=8)
def _load_cached(device: str, path_str: str, want: str) -> AttributeClassifier:
    path = Path(path_str)
    if not path.is_file():
        raise RunError(f"attribute classifier weights {path} are missing: reinstall ganscope, "
                       "or train them with `python -m ganscope.domains.faces.train_attributes`")
    got = file_sha256(path)
    if got != want:
        raise RunError(f"attribute classifier weights {path} are damaged (SHA-256 {got[:12]}... "
                       f"!= {want[:12]}...): reinstall ganscope")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = AttributeNet()
        model.load_state_dict(state)
    except Exception as e:  # noqa: BLE001  (a file with the right hash that will not load)
        raise RunError(f"attribute classifier weights {path} do not load ({type(e).__name__}): "
                       "reinstall ganscope") from None
    return AttributeClassifier(model, got, device)


def card() -> dict[str, Any]:
    """The JSON card shipped beside the weights: architecture, recipe, data hashes, held-out
    accuracy and base rate per attribute."""
    try:
        return json.loads(CARD_FILE.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"attribute classifier card {CARD_FILE} is unreadable "
                       f"({type(e).__name__}): reinstall ganscope") from None
