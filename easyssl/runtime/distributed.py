"""Helpers for ``torch.distributed``: rank queries and an all-gather that lets gradients flow.

Every function here works without an initialised process group (it then behaves as a
single process), so losses and the trainer can call them unconditionally.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a ``torch.distributed`` process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Rank of this process in the default group (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0: the process that writes checkpoints, logs and files."""
    return rank() == 0


def barrier() -> None:
    """Synchronise all processes; a no-op when not distributed."""
    if is_distributed():
        dist.barrier()


def launched_by_torchrun() -> bool:
    """True when the environment variables of ``torchrun`` (or another ``env://`` launcher) describe several processes."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ and "MASTER_ADDR" in os.environ


def init_from_env(backend: str | None = None) -> bool:
    """Initialise the default process group from ``torchrun``'s environment variables.

    Does nothing (and returns False) when a group is already initialised or when the
    process was not launched by ``torchrun --nproc_per_node=N`` (``WORLD_SIZE``, ``RANK``
    and ``MASTER_ADDR`` unset, or one process). Otherwise picks the backend (``nccl`` when
    CUDA is available, ``gloo`` on CPUs, or ``backend``), binds the process to the GPU
    ``LOCAL_RANK``, initialises the group, destroys it at exit, and returns True.

    Example:
        >>> # torchrun --nproc_per_node=4 train.py
        >>> easyssl.runtime.distributed.init_from_env()  # train_embedding_model calls it for you
    """
    if not dist.is_available() or dist.is_initialized() or not launched_by_torchrun():
        return False
    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, init_method="env://")
    atexit.register(_destroy)
    return True


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # the group may already be broken at exit; nothing to save
            pass


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank (picklable objects); ``value`` itself when not distributed."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(value: Any) -> list[Any]:
    """The ``value`` of every rank, in rank order (``[value]`` when not distributed)."""
    if not is_distributed():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def all_reduce_max(values: list[float], device: torch.device | None = None) -> list[float]:
    """Element-wise maximum of ``values`` over all ranks (the values themselves when not distributed)."""
    if not is_distributed():
        return list(values)
    if device is None or (dist.get_backend() == "nccl" and device.type != "cuda"):
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.tolist()


def shard_range(n: int, rank_: int | None = None, world: int | None = None) -> range:
    """The contiguous slice of ``range(n)`` that rank ``rank_`` handles: balanced to within one item,
    no padding and no duplicates, and the shards of ranks 0, 1, ... concatenate to ``range(n)``."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    return range(n * rank_ // world, n * (rank_ + 1) // world)


def convert_sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Turn ``model``'s batch norms into ``SyncBatchNorm`` (statistics over the global batch) when distributed.

    PyTorch's SyncBatchNorm runs on GPUs only: on a CPU the model is returned unchanged with a
    warning. A no-op when not distributed.
    """
    if not is_distributed():
        return model
    if device.type == "cpu":
        import warnings

        warnings.warn("trainer={'sync_batchnorm': True} is ignored on CPUs: PyTorch's SyncBatchNorm needs GPUs", stacklevel=2)
        return model
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sends each rank the gradient of its own slice.

    The gradient of a loss computed on the gathered tensor is summed over all ranks
    (``all_reduce``) before being sliced, because every rank computes the loss on the
    same global batch and DDP averages gradients afterwards.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        output = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(output, tensor.contiguous())
        return tuple(output)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        all_grads = torch.stack(grads)
        dist.all_reduce(all_grads)
        return all_grads[dist.get_rank()]


def gather(tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gather ``tensor`` from every process, keeping the autograd graph.

    Returns a tuple with one tensor per rank (in rank order); with a single process it is
    ``(tensor,)``. Gradients flow back to the local slice.
    """
    if not is_distributed():
        return (tensor,)
    return _GatherWithGrad.apply(tensor)


def eye_rank(n: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``(n, n * world_size)`` mask whose ones mark this rank's diagonal.

    Row ``i`` is True at column ``rank * n + i``: where the local sample ``i`` sits in the
    gathered global batch.
    """
    rows = torch.arange(n, device=device, dtype=torch.long)
    cols = rows + rank() * n
    mask = torch.zeros((n, n * world_size()), dtype=torch.bool, device=device)
    mask[rows, cols] = True
    return mask
