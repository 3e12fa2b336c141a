"""Train the shipped CelebA attribute classifier, deterministically.

    python -m ganscope.domains.faces.train_attributes --data-dir DIR [--out DIR] [--epochs N]
                                              [--limit N] [--heldout N] [--seed S] [--threads T]

Reads CelebA's first ``--limit`` images (default 10,000, in the attribute file's order; the
shared ``celeba-10k`` slice is exactly these) at 32 px with the GAN preset's crop, trains on all
but the last ``--heldout`` (default 1,000) and measures accuracy per attribute on those. Writes
``OUT/celeba-attr-v1.pt`` (state_dict) and ``OUT/celeba-attr-v1.json`` (the card: architecture,
recipe, data hashes, per-attribute held-out accuracy, base rate, majority-class and balanced
accuracy, SHA-256 of the .pt). Everything random draws from the seed (initialisation and dropout
from ``torch.manual_seed``; shuffling, flips and shifts from a dedicated generator) with
deterministic kernels and a fixed thread count, so the same command on the same torch build
gives the same weights. After retraining, copy the new SHA-256 into
``attributes.WEIGHTS_SHA256`` - and give a changed recipe a new name.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganscope.data.celeba import load_celeba
from ganscope.determinism import deterministic, warmup_cosine
from ganscope.domains.faces.attributes import (
    ATTRIBUTES,
    CLASSIFIER_NAME,
    CROP,
    INPUT_SIZE,
    WEIGHTS_DIR,
    AttributeClassifier,
    AttributeNet,
    to_input,
)
from ganscope.errors import DataError, UserError
from ganscope.io import atomic_torch_save, atomic_write_text, file_sha256

DEFAULTS: dict[str, Any] = {
    "epochs": 15,
    "batch_size": 128,
    "lr": 2e-3,
    "weight_decay": 5e-4,
    "warmup_frac": 0.05,
    "seed": 0,
    "threads": 2,
    "max_shift": 2,  # random translation in pixels (reflect padding)
    "limit": 10000,
    "heldout": 1000,
}


def labels_of(attributes: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """The (N, len(ATTRIBUTES)) 0/1 float labels, picked by name from CelebA's 40 columns."""
    return attributes[:, [names.index(a) for a in ATTRIBUTES]].float()


def evaluate(model: AttributeNet, images: torch.Tensor, labels: torch.Tensor
             ) -> dict[str, Any]:
    """Per-attribute accuracy (threshold 0.5), base rate, majority-class and balanced accuracy
    and mean BCE, computed through :class:`AttributeClassifier` on a copy of the model, so the
    card holds exactly what the shipped classifier reproduces."""
    probs = AttributeClassifier(copy.deepcopy(model), sha256="unsaved").probs(images).double()
    y = labels.double()
    pred = (probs > 0.5).double()
    out: dict[str, Any] = {}
    for j, name in enumerate(ATTRIBUTES):
        yj, pj = y[:, j], pred[:, j]
        rate = float(yj.mean())
        pos, neg = yj == 1, yj == 0
        tpr = float(pj[pos].mean()) if pos.any() else float("nan")
        tnr = float((1 - pj[neg]).mean()) if neg.any() else float("nan")
        bce = F.binary_cross_entropy(probs[:, j].clamp(1e-7, 1 - 1e-7), yj)
        out[name] = {"accuracy": float((pj == yj).double().mean()), "base_rate": rate,
                     "majority_accuracy": max(rate, 1 - rate),
                     "balanced_accuracy": (tpr + tnr) / 2, "bce": float(bce)}
    return out


def train_classifier(train_images: torch.Tensor, train_labels: torch.Tensor,
                     test_images: torch.Tensor, test_labels: torch.Tensor,
                     epochs: int = DEFAULTS["epochs"], seed: int = DEFAULTS["seed"],
                     batch_size: int = DEFAULTS["batch_size"], lr: float = DEFAULTS["lr"],
                     weight_decay: float = DEFAULTS["weight_decay"],
                     warmup_frac: float = DEFAULTS["warmup_frac"],
                     max_shift: int = DEFAULTS["max_shift"],
                     threads: int | None = DEFAULTS["threads"], progress: bool = False
                     ) -> tuple[AttributeNet, dict[str, Any]]:
    """Train a fresh AttributeNet on uint8 (N, 3, 32, 32) faces and 0/1 labels (N, A); return
    it (eval mode) and a report. Global torch state (RNG, threads, deterministic flag) is
    restored on exit."""
    with deterministic(seed, threads):
        return _train(train_images, train_labels, test_images, test_labels, epochs, seed,
                      batch_size, lr, weight_decay, warmup_frac, max_shift, progress)


def _augment(x: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random horizontal flips (every attribute here is mirror-invariant) and shifts of up to
    ``max_shift`` pixels (reflect padding): generated faces are less well aligned than CelebA's."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if max_shift > 0:
        s = max_shift
        pad = F.pad(x, (s, s, s, s), mode="reflect")
        dx = torch.randint(0, 2 * s + 1, (n,), generator=gen)
        dy = torch.randint(0, 2 * s + 1, (n,), generator=gen)
        h, w = x.shape[-2:]
        x = torch.stack([pad[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    return x


def _train(train_images, train_labels, test_images, test_labels, epochs, seed, batch_size, lr,
           weight_decay, warmup_frac, max_shift, progress):
    t0 = time.perf_counter()
    x_all = to_input(train_images)
    y_all = train_labels.float()
    n = len(x_all)
    gen = torch.Generator().manual_seed(seed)
    model = AttributeNet(n_attributes=y_all.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    warmup = max(1, round(warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup))
    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0.0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            x, y = _augment(x_all[idx], gen, max_shift), y_all[idx]
            logits = model(x)
            loss = F.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += float(((logits > 0).float() == y).float().mean(1).sum())
        entry = {"epoch": epoch + 1, "train_loss": loss_sum / n,
                 "train_accuracy": correct / n, "seconds": round(time.perf_counter() - t0, 1)}
        history.append(entry)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: loss {entry['train_loss']:.4f} mean train acc "
                  f"{entry['train_accuracy']:.4f} ({entry['seconds']:.0f} s)", file=sys.stderr,
                  flush=True)
    train_seconds = time.perf_counter() - t0
    model.eval()
    held = evaluate(model, test_images, test_labels)
    report = {
        "name": CLASSIFIER_NAME,
        "attributes": list(ATTRIBUTES),
        "architecture": model.describe(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "input": {"size": INPUT_SIZE, "crop": CROP, "range": "[-1, 1]",
                  "resize": "bilinear with antialiasing to 32x32 when another size"},
        "recipe": {
            "epochs": epochs, "batch_size": batch_size,
            "optimizer": f"AdamW(lr={lr}, betas=(0.9, 0.999), weight_decay={weight_decay})",
            "lr_schedule": f"per-step linear warm-up over {warmup} steps, then cosine to 0 "
                           f"({total} steps)",
            "augmentation": f"random horizontal flip p=0.5, random shift up to {max_shift} px "
                            "(reflect padding)",
            "loss": "binary cross-entropy per attribute, mean", "seed": seed,
            "threads": torch.get_num_threads(), "deterministic_algorithms": True,
            "n_train": n,
        },
        "history": history,
        "heldout": held,
        "heldout_mean_accuracy": sum(v["accuracy"] for v in held.values()) / len(held),
        "n_heldout": int(test_images.shape[0]),
        "train_seconds": round(train_seconds, 1),
        "torch_version": torch.__version__,
    }
    return model, report


def tensor_sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def load_split(data_dir: str | None, limit: int, heldout: int
               ) -> tuple[Any, torch.Tensor, torch.Tensor, int]:
    """CelebA's first ``limit`` images at 32 px and their labels; the index where the held-out
    part (the last ``heldout``) starts."""
    ds = load_celeba(data_dir, split="all", image_size=INPUT_SIZE, crop=CROP, limit=limit)
    n = len(ds)
    if not 1 <= heldout < n:
        raise DataError(f"--heldout {heldout} must leave images to train on: the folder gives "
                        f"{n} images")
    missing = [a for a in ATTRIBUTES if a not in ds.attribute_names]
    if missing:
        raise DataError(f"CelebA attribute file in {ds.source['dir']} has no column {missing[0]}")
    return ds, ds.images, labels_of(ds.attributes, ds.attribute_names), n - heldout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ganscope.domains.faces.train_attributes",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None,
                   help="CelebA folder (default: $GANSCOPE_CELEBA)")
    p.add_argument("--out", default=str(WEIGHTS_DIR), help="output folder (default: the package)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--limit", type=int, default=DEFAULTS["limit"],
                   help="use CelebA's first N images (default 10000)")
    p.add_argument("--heldout", type=int, default=DEFAULTS["heldout"],
                   help="hold out the last N of them (default 1000)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--threads", type=int, default=DEFAULTS["threads"])
    args = p.parse_args(argv)
    try:
        ds, images, labels, cut = load_split(args.data_dir, args.limit, args.heldout)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    model, report = train_classifier(images[:cut], labels[:cut], images[cut:], labels[cut:],
                                     epochs=args.epochs, seed=args.seed, threads=args.threads,
                                     progress=True)
    out = Path(args.out)
    pt = out / f"{CLASSIFIER_NAME}.pt"
    atomic_torch_save(model.state_dict(), pt)
    report["data"] = {
        "dataset": "celeba", "dir": ds.source["dir"], "attr_sha256": ds.source["attr_sha256"],
        "images": f"the first {len(ds)} rows of list_attr_celeba.txt ({ds.files[0]} .. "
                  f"{ds.files[-1]}), decoded by ganscope.data.celeba at {INPUT_SIZE} px, "
                  f"crop {CROP}",
        "images_sha256": tensor_sha256(images), "labels_sha256": tensor_sha256(labels),
        "train": f"{ds.files[0]} .. {ds.files[cut - 1]} ({cut})",
        "heldout": f"{ds.files[cut]} .. {ds.files[-1]} ({len(ds) - cut})",
    }
    report["command"] = (f"python -m ganscope.domains.faces.train_attributes --data-dir DIR "
                         f"--epochs {args.epochs} --limit {args.limit} --heldout {args.heldout} "
                         f"--seed {args.seed} --threads {args.threads}")
    report["sha256"] = file_sha256(pt)
    report["size_bytes"] = pt.stat().st_size
    atomic_write_text(out / f"{CLASSIFIER_NAME}.json", json.dumps(report, indent=2) + "\n")
    w = max(len(a) for a in ATTRIBUTES)
    print(f"{'ATTRIBUTE'.ljust(w)}  HELDOUT_ACC  BASE_RATE  MAJORITY  BALANCED")
    for a, r in report["heldout"].items():
        print(f"{a.ljust(w)}  {r['accuracy']:11.4f}  {r['base_rate']:9.4f}  "
              f"{r['majority_accuracy']:8.4f}  {r['balanced_accuracy']:8.4f}")
    print(f"wrote {pt} ({report['size_bytes']} bytes, sha256 {report['sha256']}) and its card; "
          f"{report['train_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
