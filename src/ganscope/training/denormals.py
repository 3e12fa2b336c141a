"""Subnormal floats flushed to zero while training on the CPU.

Why: x86 cores handle a subnormal float (|x| < 1.2e-38 in fp32) in microcode, 10-100x slower
than a normal one. Optimiser state drifts there on small nets with small gradients: in E5's WGAN
+ RMSprop cell (clipped critic, lr 5e-5) 30 % of D's RMSprop ``square_avg`` entries were
subnormal after 11,000 steps, and ``square_avg.sqrt()`` took a fifth of every step (measured on
a 2-core AMD EPYC: a sqrt over 665,000 floats 2.9 ms normal, 32 ms subnormal). Flushing them
(the CPU's FTZ/DAZ flags, as TensorFlow sets by default) changes nothing a run can see: a value
under 1e-38 next to RMSprop's and Adam's eps (1e-8), or in a weight, is zero for every purpose.

The flags are per thread: ``torch.set_flush_denormal`` sets the calling thread's, and threads
started after it inherit them (POSIX); intra-op threads torch started earlier keep theirs. The
training thread is where a one-thread run (sweeps, lab2d workers, the lab) does all its work.
The caller's setting is restored afterwards, so a notebook or test is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def denormals_flushed() -> bool:
    """Whether this thread flushes subnormal floats now: a subnormal times one reads as zero
    under DAZ/FTZ (torch has no getter for the flags)."""
    tiny = torch.tensor([1e-40], dtype=torch.float32)  # subnormal in fp32 (unless flushed)
    return bool((tiny * 1.0).item() == 0.0)


@contextmanager
def flush_denormals(on: bool) -> Iterator[bool]:
    """Set this thread's flush-to-zero to ``on`` for the block; yields whether the thread now
    flushes (False where the CPU cannot, e.g. without SSE3), then restores the caller's."""
    before = denormals_flushed()
    torch.set_flush_denormal(on)
    try:
        yield denormals_flushed()
    finally:
        torch.set_flush_denormal(before)
