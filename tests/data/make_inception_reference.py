"""One-off: pytorch-fid's own features of the stand-in Inception weights, as a test fixture.

Run in a throwaway venv that has torchvision (it cannot import beside the project's torch):

    python3.11 -m venv /tmp/fidref
    /tmp/fidref/bin/pip install torch==2.14.1 torchvision==0.29.1 pytorch-fid==0.3.0 numpy pillow scipy
    /tmp/fidref/bin/python tests/data/make_inception_reference.py

It builds pytorch-fid 0.3.0's ``InceptionV3([3])`` (its ``fid_inception_v3``, torchvision's
Inception3 patched with the FID blocks) with the seeded stand-in weights of
``inception_standin.py`` substituted for the download, writes the fixed images as PNG files and
runs pytorch-fid's ``get_activations`` on them (PIL -> RGB -> ToTensor -> the network), and
saves the (6, 2048) features plus the network's state-dict keys and shapes to
``inception_reference.npz`` beside this file.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytorch_fid
import pytorch_fid.inception as pfi
import torch
import torchvision
from PIL import Image
from pytorch_fid.fid_score import get_activations

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from inception_standin import fixed_images, standin_state_dict  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    orig = pfi.load_state_dict_from_url
    # the architecture exactly as fid_inception_v3 builds it, before it loads the download
    inception = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    inception.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    inception.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    inception.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    inception.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    inception.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    inception.Mixed_7b = pfi.FIDInceptionE_1(1280)
    inception.Mixed_7c = pfi.FIDInceptionE_2(2048)
    shapes = {k: tuple(v.shape) for k, v in inception.state_dict().items()}
    state = standin_state_dict(shapes)
    # now pytorch-fid's own path, its download answered with the stand-in
    pfi.load_state_dict_from_url = lambda url, progress=True: state
    try:
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    finally:
        pfi.load_state_dict_from_url = orig
    images = fixed_images()
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i, img in enumerate(images):
            f = Path(d) / f"{i}.png"
            Image.fromarray(img.transpose(1, 2, 0)).save(f)
            files.append(str(f))
        feats = get_activations(files, model, batch_size=len(files), dims=2048, device="cpu",
                                num_workers=0)
    how = {"pytorch_fid": pytorch_fid.__version__, "torch": torch.__version__,
           "torchvision": torchvision.__version__, "numpy": np.__version__,
           "script": "tests/data/make_inception_reference.py",
           "threads": 1, "images": "inception_standin.fixed_images() saved as PNG",
           "weights": "inception_standin.standin_state_dict(pytorch-fid architecture shapes)"}
    np.savez_compressed(
        HERE / "inception_reference.npz", features=feats.astype(np.float32),
        keys=np.array(list(shapes)), shapes=np.array(json.dumps([list(s) for s in shapes.values()])),
        how=np.array(json.dumps(how)))
    print(json.dumps(how), feats.shape, float(np.abs(feats).mean()), float(feats.std()))


if __name__ == "__main__":
    main()
