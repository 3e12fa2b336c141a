"""Deterministic, self-contained training of a shipped network (the extractor, the attribute
classifier): seeded, deterministic algorithms, a chosen thread count, and the caller's global
torch state (RNG, threads, deterministic flag) restored afterwards, so a test or notebook that
calls a trainer is left as it was."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic(seed: int, threads: int | None = None) -> Iterator[None]:
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if threads:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """LR factor: linear warm-up to the peak, then cosine decay to zero; reaches a good minimum
    in few epochs without tuning a step schedule."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * t))
