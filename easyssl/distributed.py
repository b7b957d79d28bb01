"""Helpers for ``torch.distributed``: rank queries and an all-gather that lets gradients flow.

Every function here works without an initialised process group (it then behaves as a
single process), so losses and the trainer can call them unconditionally.
"""

from __future__ import annotations

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
