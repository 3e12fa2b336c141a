"""The seeds' E1 notebook loop as they ran it, with real torchvision, timed for one epoch.

``train_speed.py`` and ``preset_speed.py`` use a torchvision-free replica of this loop because
PyPI's torchvision does not import beside the CPU torch ganscope pins. This script is the
reference that replica stands for: it needs an environment with torch + torchvision (e.g.
``python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch torchvision``) and does not import
ganscope. It prints one JSON line: seconds for one epoch after a 20-iteration warm-up, the
DataLoader pass alone, versions and thread count.

Run: ``/tmp/tv/bin/python benchmarks/notebook_torchvision.py [--data-dir DIR] [--threads N]``
(DIR holds the four Fashion-MNIST ``.gz`` files; default Debian's folder).
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision import datasets, transforms

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


class Generator(nn.Module):  # the seeds' E1 MLP G: 100 -> 128 -> 784, tanh
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.nonlin1, self.fc2 = nn.Linear(100, 128), nn.LeakyReLU(0.2), nn.Linear(128, 784)

    def forward(self, x):
        return torch.tanh(self.fc2(self.nonlin1(self.fc1(x)))).view(x.size(0), 1, 28, 28)


class Discriminator(nn.Module):  # 784 -> 128 -> 1, sigmoid
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.nonlin1, self.fc2 = nn.Linear(784, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc2(self.nonlin1(self.fc1(x.view(x.size(0), 784)))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as root:  # torchvision's layout: ROOT/FashionMNIST/raw
        raw = Path(root) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for f in FILES:  # torchvision looks for the unpacked files
            with gzip.open(Path(a.data_dir) / f) as src:
                (raw / f[:-3]).write_bytes(src.read())
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
        ds = datasets.FashionMNIST(root, train=True, download=False, transform=tf)
        loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)
        t0 = time.perf_counter()
        for _ in loader:
            pass
        loader_s = time.perf_counter() - t0

        torch.manual_seed(0)
        G, D = Generator(), Discriminator()
        criterion = nn.BCELoss()
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4)
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4)
        log = []

        def epoch(max_iters: int | None = None) -> float:
            t = time.perf_counter()
            for i, (x, _) in enumerate(loader):
                b = x.size(0)
                ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)
                opt_d.zero_grad()
                d_x = D(x)
                loss_real = criterion(d_x, ones)
                fake = G(torch.randn(b, 100)).detach()
                d_g_z = D(fake)
                loss_d = loss_real + criterion(d_g_z, zeros)
                loss_d.backward()
                opt_d.step()
                opt_g.zero_grad()
                loss_g = criterion(D(G(torch.randn(b, 100))), ones)
                loss_g.backward()
                opt_g.step()
                log.append((loss_d.item(), loss_g.item(), d_x.mean().item(), d_g_z.mean().item()))
                if max_iters is not None and i + 1 >= max_iters:
                    break
            return time.perf_counter() - t

        epoch(20)  # warm-up
        epoch_s = epoch()
    print(json.dumps({"benchmark": "notebook_torchvision", "epoch_s": round(epoch_s, 2),
                      "loader_only_s": round(loader_s, 2), "torch": torch.__version__,
                      "torchvision": torchvision.__version__, "threads": torch.get_num_threads(),
                      "last": log[-1]}))


if __name__ == "__main__":
    main()
