"""NNCLR's support set (Dwibedi et al., 2021): a queue of past projections searched for nearest neighbours."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NNMemoryBankModule(nn.Module):
    """NNCLR's support set: a FIFO queue of ``size`` past projections; ``forward`` swaps each
    projection for its nearest neighbour (cosine similarity) in the queue.

    Only the filled part of the queue is searched; while it is empty the projections are
    returned unchanged. The queue holds L2-normalised, detached projections and is a buffer,
    so it is saved in checkpoints.

    Args:
        size: Number of projections kept (98304 in the paper).
        dim: Projection size.

    Example:
        >>> bank = NNMemoryBankModule(size=4096, dim=256)
        >>> nn_z = bank(z.detach(), update=True)  # nearest neighbours of z, then z is enqueued
    """

    def __init__(self, size: int = 4096, dim: int = 256) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"the support set size must be >= 1, got {size}")
        self.size = int(size)
        self.register_buffer("bank", torch.zeros(self.size, dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor) -> None:
        """Write the normalised ``z`` (N, dim) over the oldest entries."""
        z = F.normalize(z.detach().float(), dim=1).to(self.bank.dtype)[-self.size :]
        n, ptr = z.shape[0], int(self.ptr)
        idx = (torch.arange(n, device=z.device) + ptr) % self.size
        self.bank[idx.to(self.bank.device)] = z.to(self.bank.device)
        self.ptr.fill_((ptr + n) % self.size)
        self.filled.fill_(min(self.size, int(self.filled) + n))

    @torch.no_grad()
    def nearest_neighbours(self, z: torch.Tensor) -> torch.Tensor:
        """The queue entry most similar to each row of ``z`` (or ``z`` itself while the queue is empty)."""
        filled = int(self.filled)
        if filled == 0:
            return z.detach()
        support = self.bank[:filled].to(z.device)
        similarity = F.normalize(z.detach().float(), dim=1) @ support.float().T
        return support[similarity.argmax(dim=1)].to(z.dtype)

    def forward(self, z: torch.Tensor, update: bool = False) -> torch.Tensor:
        """Nearest neighbours of ``z`` in the queue (without gradient); then enqueue ``z`` if ``update``."""
        neighbours = self.nearest_neighbours(z)
        if update:
            self.enqueue(z)
        return neighbours
