"""What an InfoGAN run's codes control, measured: the categorical code against the shipped
classifier's classes, and every code's pixel change against new noise.

``latent probe`` answers per dimension ("dim 0 raises Sneaker"); this answers the InfoGAN
question as a whole, in the numbers the paper reasons with:

- **recovery**: D's head (Q) on fresh samples: the categorical code's accuracy and each
  continuous code's correlation with its estimate. High recovery alone proves little: G may
  write its codes into details only Q reads.
- **category -> class**: ``--n`` noise vectors drawn once, each generated with every value of
  the categorical code (only z0 changes), each image labelled by the shipped classifier. Purity
  (the share of images whose code's most common class is theirs) and the normalised mutual
  information between code and class (0: the code says nothing about the class; 1: a code
  value is a class). Chance purity is about the largest class share.
- **pixel change**: mean |dx| (on [-1, 1] images) between the same noise under two code
  values (category: every pair of values; continuous code j: c_j = -0.9 against +0.9), beside
  mean |dx| between two noise vectors under one code value. A code that controls what the image
  is moves pixels as much as new noise does.

    .venv/bin/python benchmarks/infogan_codes.py RUN [--runs-dir DIR] [--epoch N] [--n 200]

Writes JSON (``--out``, default ``benchmarks/results/infogan_codes-RUN.json``) and prints a
table; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ganscope.domains import class_domain  # noqa: E402
from ganscope.losses import build_loss  # noqa: E402
from ganscope.models.conditional import class_latent  # noqa: E402
from ganscope.sampling import sample  # noqa: E402
from ganscope.training.run import (  # noqa: E402
    build_nets,
    load_checkpoint,
    load_generator,
    resolve_run,
)
from train_speed import atomic_write_json, cpu_model  # noqa: E402

CONT_AT = 0.9  # continuous codes compared at c = -0.9 and +0.9 (uniform on (-1, 1))


def code_latent(c: float) -> float:
    """The z that gives continuous code c (c = 2 Phi(z) - 1)."""
    return float(torch.special.ndtri(torch.tensor((c + 1) / 2, dtype=torch.float64)))


def nmi(table: np.ndarray) -> float:
    """Normalised mutual information (arithmetic mean of the entropies) of a contingency
    table."""
    p = table / table.sum()
    pr, pc = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pr, pc)[nz])).sum())
    h = [-float((q[q > 0] * np.log(q[q > 0])).sum()) for q in (pr, pc)]
    return mi / (0.5 * (h[0] + h[1])) if sum(h) > 0 else 0.0


@torch.no_grad()
def measure(run_name: str, runs_dir: str | None, epoch: int | None, n: int, seed: int
            ) -> dict:
    run = resolve_run(run_name, runs_dir)
    cfg = run.config()
    m = cfg.model
    if m.conditional != "infogan":
        raise SystemExit(f"error: {run.name} is not an InfoGAN run (model.conditional="
                         f"{m.conditional})")
    K, n_cont, z_dim = m.n_classes, m.n_cont, m.z_dim
    G = load_generator(run, epoch)
    _, path = run.checkpoint_for(epoch)
    ck = load_checkpoint(path)
    _, D = build_nets(run, cfg, sigmoid=build_loss(cfg.loss).sigmoid)
    if "D" in ck:
        D.load_state_dict(ck["D"])
    D.eval()
    ext = class_domain().extractor()
    g = torch.Generator().manual_seed(seed)

    def gen(z: torch.Tensor) -> torch.Tensor:
        """uint8 images, as the classifier takes them."""
        return sample(G, z, batch_size=256)

    def dx(a: torch.Tensor, b: torch.Tensor) -> float:
        """mean |a - b| on the [-1, 1] scale G draws in"""
        return float((a.float() - b.float()).abs().mean()) / 127.5

    # recovery by D's head, on codes drawn as in training
    out: dict = {"run": run.name, "epoch": epoch if epoch is not None else
                 run.meta().get("epochs_done"), "checkpoint": str(path), "n": n, "seed": seed,
                 "n_classes": K, "n_cont": n_cont}
    if "D" in ck:
        z = torch.randn(max(n, 1000), z_dim, generator=g)
        x = gen(z).float() / 127.5 - 1.0
        D(x if x.ndim == 4 else x.unsqueeze(1))
        aux = D.aux_out
        y, c = G.codes(z)
        out["recovery"] = {
            "category_accuracy": float((aux[:, :K].argmax(1) == y).float().mean()),
            "continuous_corr": [float(np.corrcoef(aux[:, K + j].numpy(), c[:, j].numpy())[0, 1])
                                for j in range(n_cont)]}
    # the categorical code against the classifier's classes; pixel change
    z = torch.randn(n, z_dim, generator=g)
    imgs, labels = [], []
    for k in range(K):
        zk = z.clone()
        zk[:, 0] = class_latent(k, K)
        x = gen(zk)
        imgs.append(x)
        _, p = ext.extract(x[:, 0] if x.ndim == 4 else x)
        labels.append(np.asarray(p).argmax(1))
    n_cls = len(class_domain().class_names)
    table = np.zeros((K, n_cls), dtype=np.int64)
    for k, lab in enumerate(labels):
        np.add.at(table[k], lab, 1)
    cat_dx = float(np.mean([dx(imgs[a], imgs[b]) for a in range(K) for b in range(a + 1, K)]))
    noise_dx = float(np.mean([dx(x, x.roll(1, 0)) for x in imgs]))
    out["category"] = {
        "purity": float(table.max(1).sum() / table.sum()),
        "chance_purity": float(table.sum(0).max() / table.sum()),
        "nmi": nmi(table), "table": table.tolist(),
        "classes": list(class_domain().class_names),
        "top_class": [class_domain().class_names[int(i)] for i in table.argmax(1)],
        "top_share": (table.max(1) / table.sum(1)).tolist(),
        "dx": cat_dx}
    out["noise_dx"] = noise_dx
    out["continuous_dx"] = []
    for j in range(n_cont):
        lo, hi = z.clone(), z.clone()
        lo[:, 1 + j], hi[:, 1 + j] = code_latent(-CONT_AT), code_latent(CONT_AT)
        out["continuous_dx"].append(dx(gen(hi), gen(lo)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--epoch", type=int, default=None)
    ap.add_argument("--n", type=int, default=200, help="noise vectors per code value")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = measure(a.run, a.runs_dir, a.epoch, a.n, a.seed)
    res.update({"seconds": time.perf_counter() - t0, "cpu": cpu_model(),
                "threads": torch.get_num_threads()})
    out = a.out or HERE / "results" / f"infogan_codes-{res['run']}.json"
    atomic_write_json(out, res)
    cat = res["category"]
    print(f"infogan_codes: {res['run']} epoch {res['epoch']}, {a.n} noise vectors x "
          f"{res['n_classes']} categories, {cpu_model()}")
    if "recovery" in res:
        r = res["recovery"]
        print(f"D's head: category {100 * r['category_accuracy']:.1f} %, continuous codes corr "
              + ", ".join(f"{v:.2f}" for v in r["continuous_corr"]))
    print(f"category -> class: purity {cat['purity']:.3f} (chance {cat['chance_purity']:.3f}), "
          f"NMI {cat['nmi']:.3f}")
    for k, (name, share) in enumerate(zip(cat["top_class"], cat["top_share"])):
        print(f"  code {k}: {name} {100 * share:.0f} %")
    print(f"mean |dx|: category {cat['dx']:.3f}, "
          + "".join(f"code {j + 1} {v:.3f}, " for j, v in enumerate(res["continuous_dx"]))
          + f"new noise {res['noise_dx']:.3f}")
    print(f"wrote {out} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
