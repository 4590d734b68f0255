"""torch.distributed for nanobrag's multi-process commands: joining the group, sharding, combining.

Under ``torchrun`` (which sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables) a command
joins the process group through c10d: NCCL when it computes on CUDA, gloo otherwise. Started
without torchrun, or with one process, it is rank 0 of a world of one and every collective is a
no-op, so commands have one code path for both.

A command works on a share of its items (frames, target images) chosen by :meth:`World.shard`:
every ``size``-th item starting at its ``rank``. What the ranks compute is combined with
:meth:`World.all_reduce_sum` (tensors) or :meth:`World.all_gather` (small Python objects); rank 0
alone writes the combined result.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .errors import InputError

T = TypeVar("T")

# Long enough for rank 0 to check a large existing dataset while the other ranks wait for it.
DEFAULT_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: one process, no process group

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's items: every ``size``-th one from position ``rank`` (disjoint, together complete)."""
        return list(items[self.rank :: self.size])

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place; returns it."""
        if self.backend is not None:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order."""
        if self.backend is None:
            return [value]
        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, value)
        return gathered

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (picklable), on every rank."""
        if self.backend is None:
            return value
        box = [value if self.is_root else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.backend is not None:
            dist.barrier()


def launched_world_size() -> int:
    """How many processes the launcher (torchrun) started for this run; 1 without one."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise InputError(f"WORLD_SIZE: expected an integer, got {os.environ['WORLD_SIZE']!r}") from None


def restart_advice() -> str | None:
    """A warning for torchrun jobs whose restarted workers may fail to reconnect, else None.

    With ``--max-restarts`` and torch's default shared rendezvous store, a restarted worker group
    reuses the store of the failed one; a worker can then read a peer's address from the failed
    round and fail to connect ("Connection refused"). Starting torchrun with
    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 gives each round a fresh store.
    """
    shared = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    if shared and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0:
        return (
            "torchrun --max-restarts: restarted workers can fail to reconnect through torch's shared rendezvous"
            " store; start torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (docs/scale.md)"
        )
    return None


def rank_device(device: str) -> torch.device:
    """The device this rank computes on: ``cuda`` means the GPU of its local rank."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("-device cuda: no CUDA device is available")
        if device == "cuda" and launched_world_size() > 1:
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(device)


@contextmanager
def joined(device: torch.device, timeout: timedelta = DEFAULT_TIMEOUT) -> Iterator[World]:
    """Join the run's process group for the duration of the block (a world of one without torchrun).

    The backend follows the device: NCCL for CUDA, gloo for CPU. A group that the caller's program
    already initialised is used as it is and left open.
    """
    if launched_world_size() <= 1 and not dist.is_initialized():
        yield World()
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    created = not dist.is_initialized()
    if created:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, timeout=timeout)
    try:
        yield World(
            rank=dist.get_rank(),
            size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            backend=dist.get_backend(),
        )
    finally:
        if created:
            dist.destroy_process_group()
