"""Train the shipped Fashion-MNIST feature extractor, deterministically.

    python -m ganscope.domains.fashion_mnist.train_extractor [--data-dir DIR] [--out DIR] [--epochs N]
                                               [--limit N] [--seed S] [--threads T]

Writes ``OUT/fmnist-cnn-v1.pt`` (state_dict) and ``OUT/fmnist-cnn-v1.json`` (architecture,
recipe, data checksums, test accuracy, SHA-256 of the .pt). Everything random draws from the
seed (initialisation and dropout from ``torch.manual_seed``, shuffling and flips from a
dedicated generator) and deterministic kernels with a fixed thread count are enforced, so the
same command on the same torch build reproduces the same weights. After retraining, copy the
new SHA-256 into ``extractor.WEIGHTS_SHA256`` — and give a changed recipe a new name.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganscope.data.fashion_mnist import CLASSES, OFFICIAL_PAYLOAD_SHA256, load_fashion_mnist
from ganscope.determinism import deterministic, warmup_cosine
from ganscope.domains.fashion_mnist.extractor import (
    EXTRACTOR_NAME,
    WEIGHTS_DIR,
    Extractor,
    FMNISTClassifier,
    images_to_input,
)
from ganscope.errors import UserError
from ganscope.io import atomic_torch_save, atomic_write_text, file_sha256

DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 128,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "warmup_frac": 0.1,
    "seed": 0,
    "threads": 2,
    "hflip": True,
}


def evaluate(model: FMNISTClassifier, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> dict[str, Any]:
    """Accuracy and per-class accuracy through ``Extractor.extract`` (on a copy of the model),
    so the recorded number is exactly what the shipped extractor reproduces."""
    _, probs = Extractor(copy.deepcopy(model), sha256="unsaved").extract(images, batch_size)
    y = labels.numpy()
    correct = probs.argmax(1) == y
    per_class = [float(correct[y == c].mean()) if (y == c).any() else None for c in range(10)]
    return {"accuracy": float(correct.mean()), "per_class_accuracy": per_class, "n": int(len(y))}


def train_classifier(train_images: torch.Tensor, train_labels: torch.Tensor,
                     test_images: torch.Tensor, test_labels: torch.Tensor,
                     epochs: int = DEFAULTS["epochs"], seed: int = DEFAULTS["seed"],
                     batch_size: int = DEFAULTS["batch_size"], lr: float = DEFAULTS["lr"],
                     weight_decay: float = DEFAULTS["weight_decay"],
                     warmup_frac: float = DEFAULTS["warmup_frac"],
                     hflip: bool = DEFAULTS["hflip"], threads: int | None = DEFAULTS["threads"],
                     progress: bool = False) -> tuple[FMNISTClassifier, dict[str, Any]]:
    """Train a fresh FMNISTClassifier on uint8 images; return it (eval mode) and a report.

    Global torch state (RNG, thread count, deterministic-algorithms flag) is restored on exit,
    so calling this from tests or a notebook leaves the process as it found it.
    """
    with deterministic(seed, threads):
        return _train(train_images, train_labels, test_images, test_labels, epochs, seed,
                      batch_size, lr, weight_decay, warmup_frac, hflip, progress)


def _train(train_images, train_labels, test_images, test_labels, epochs, seed, batch_size, lr,
           weight_decay, warmup_frac, hflip, progress):
    t0 = time.perf_counter()
    x_all = images_to_input(train_images)
    y_all = train_labels.long()
    n = len(x_all)
    gen = torch.Generator().manual_seed(seed)
    model = FMNISTClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    warmup = max(1, round(warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup))
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            x, y = x_all[idx], y_all[idx]
            if hflip:  # clothes are left-right symmetric classes; flips double the data cheaply
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        entry = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                 "seconds": round(time.perf_counter() - t0, 1)}
        history.append(entry)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: loss {entry['train_loss']:.4f} "
                  f"train acc {entry['train_accuracy']:.4f} ({entry['seconds']:.0f} s)",
                  file=sys.stderr, flush=True)
    train_seconds = time.perf_counter() - t0
    test = evaluate(model, test_images, test_labels)
    report = {
        "name": EXTRACTOR_NAME,
        "architecture": model.describe(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "recipe": {
            "epochs": epochs, "batch_size": batch_size,
            "optimizer": f"AdamW(lr={lr}, betas=(0.9, 0.999), weight_decay={weight_decay})",
            "lr_schedule": f"per-step linear warm-up over {warmup} steps, then cosine to 0 "
                           f"({total} steps)",
            "augmentation": "random horizontal flip p=0.5" if hflip else "none",
            "loss": "cross-entropy", "seed": seed, "threads": torch.get_num_threads(),
            "deterministic_algorithms": True, "n_train": n,
        },
        "history": history,
        "test_accuracy": test["accuracy"],
        "per_class_test_accuracy": test["per_class_accuracy"],
        "n_test": test["n"],
        "train_seconds": round(train_seconds, 1),
        "torch_version": torch.__version__,
    }
    return model.eval(), report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ganscope.domains.fashion_mnist.train_extractor",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, help="folder with the four Fashion-MNIST .gz files")
    p.add_argument("--out", default=str(WEIGHTS_DIR), help="output folder (default: the package)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--threads", type=int, default=DEFAULTS["threads"])
    args = p.parse_args(argv)
    try:
        train = load_fashion_mnist("train", args.data_dir, limit=args.limit)
        test = load_fashion_mnist("test", args.data_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    model, report = train_classifier(train.images, train.labels, test.images, test.labels,
                                     epochs=args.epochs, seed=args.seed, threads=args.threads,
                                     progress=True)
    out = Path(args.out)
    pt = out / f"{EXTRACTOR_NAME}.pt"
    atomic_torch_save(model.state_dict(), pt)
    report["per_class_test_accuracy"] = dict(zip(CLASSES, report["per_class_test_accuracy"]))
    report["data"] = {
        split: {**ds.source, "payload_sha256": {
            name: OFFICIAL_PAYLOAD_SHA256[name] for name, status in ds.source["checksums"].items()
            if status != "unverified" and name in OFFICIAL_PAYLOAD_SHA256}}
        for split, ds in (("train", train), ("test", test))
    }
    report["command"] = ("python -m ganscope.domains.fashion_mnist.train_extractor "
                         f"--epochs {args.epochs} --seed {args.seed} --threads {args.threads}"
                         + (f" --limit {args.limit}" if args.limit else ""))
    report["sha256"] = file_sha256(pt)
    report["size_bytes"] = pt.stat().st_size
    atomic_write_text(out / f"{EXTRACTOR_NAME}.json", json.dumps(report, indent=2) + "\n")
    print(f"test accuracy {report['test_accuracy']:.4f}; wrote {pt} "
          f"({report['size_bytes']} bytes, sha256 {report['sha256']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
