"""Multi-process training on PyTorch's own engine (torchrun + DistributedDataParallel).

``torchrun --nproc_per_node=N -m vaekit train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK and
the rendezvous variables; :func:`from_env` reads them and starts the process group (gloo
on CPU, NCCL on GPU). Multi-node runs use torchrun's own rendezvous options
(``--nnodes``, ``--node_rank``, ``--rdzv_backend``, ``--rdzv_endpoint``). After a worker
dies, ``torchrun --max-restarts=K`` restarts every worker with TORCHELASTIC_RESTART_COUNT
raised; the CLI then resumes from the last checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


COLLECTIVE_TIMEOUT_S = int(os.environ.get("VAEKIT_DIST_TIMEOUT", "60"))


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def restart_count() -> int:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def from_env(backend: str | None = None) -> DistContext | None:
    """Join the process group torchrun prepared; None when running as one process."""
    if not launched_by_torchrun():
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if not dist.is_initialized():
        # a short timeout: a peer that died mid-collective makes the others fail within a
        # minute (and torchrun restart them) instead of waiting the default 30 minutes
        timeout = timedelta(seconds=COLLECTIVE_TIMEOUT_S)
        store, _, _ = next(dist.rendezvous("env://", rank, world, timeout=timeout))
        # each restart gets its own key space: a store that outlives a failed attempt must
        # not hand the new workers the dead workers' gloo addresses (connect timeouts)
        store = dist.PrefixStore(f"vaekit/attempt_{restart_count()}", store)
        dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world, timeout=timeout)
    if backend == "nccl":
        torch.cuda.set_device(local)
    return DistContext(rank, world, local, backend)


def all_reduce_sum(values: list[float], ctx: DistContext | None) -> list[float]:
    """Sum a few floats over all ranks (float64, so sums of losses stay exact enough)."""
    if ctx is None:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(ctx: DistContext | None) -> None:
    if ctx is not None:
        dist.barrier()


def shutdown(ctx: DistContext | None) -> None:
    if ctx is not None and dist.is_initialized():
        dist.destroy_process_group()
