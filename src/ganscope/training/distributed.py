"""Data-parallel training on torch.distributed: ``torchrun --nproc-per-node N -m ganscope train``.

torchrun starts N copies of the CLI and sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; this module
turns that into a process group (gloo on CPU, NCCL on CUDA) and answers the few questions the
loop asks: which rows of a global batch are mine, am I the rank that writes the run directory,
and do all ranks agree to stop. Gradients are averaged by ``DistributedDataParallel`` itself.

Every rank draws the *global* batch's permutation and latents from the same seeded generators and
keeps its own contiguous slice, so N processes with batch B/N each follow the same random
streams as one process with batch B: the weights agree with a single-process run to float
rounding (tested with 2 gloo processes), and checkpoints stay interchangeable.
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ganscope.environment import usable_cores
from ganscope.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Only this rank writes the run directory, logs, checkpoints and evaluations."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, n: int) -> slice:
        """This rank's contiguous rows of a global batch of ``n`` (the first ranks get the
        extra rows when ``n`` is not divisible, as ``torch.tensor_split`` does)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))


SINGLE = DistInfo()


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def setup(device: str = "cpu") -> DistInfo:
    """Join the process group torchrun described, or return the single-process default.

    ``device`` is the config's train.device: CUDA ranks use NCCL and one GPU each (LOCAL_RANK),
    CPU ranks gloo. Calling it again in the same process returns the existing group.
    """
    world = env_world_size()
    if world <= 1:
        return SINGLE
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if torch.cuda.device_count() <= local:
            raise ConfigError(
                f"rank {rank} wants GPU {local} but this machine has "
                f"{torch.cuda.device_count()}: start fewer processes per node"
            )
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo",
                                timeout=_dt.timedelta(minutes=30))
    return DistInfo(rank=rank, world=world, local_rank=local)


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (run paths, names)."""
    if not info.active:
        return obj
    box = [obj if info.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if it is true on any: a stop request on one rank stops all of them at
    the same step, so no rank waits forever in a collective the others left."""
    if not info.active:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over_ranks(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a tensor over ranks (the logged losses and D outputs of the global batch)."""
    if not info.active:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / info.world


def threads_per_rank(info: DistInfo) -> int:
    """CPU cores this process may use, divided among the ranks that share the machine."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(info.world)))
    return max(1, usable_cores() // max(1, local_world))


def barrier(info: DistInfo) -> None:
    """Wait until every rank gets here (e.g. rank 0 has rewritten config.yaml)."""
    if info.active:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.active and dist.is_initialized():
        # DDP wrappers sit in reference cycles; left to the interpreter's final collection they
        # would be torn down after the group, and gloo's threads then abort the process
        # ("terminate called without an active exception", seen in ~1 of 15 runs).
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
