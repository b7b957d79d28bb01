"""NNCLR (Dwibedi et al., 2021): contrastive learning with nearest neighbours from a support set as positives."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.models.base import SSLModel, TrainingProgress
from easyssl.models.method_heads import NNCLRPredictionHead, NNCLRProjectionHead


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


class NNCLR(SSLModel):
    """Backbone + projection head (3 layers) + prediction head, and a support set of past projections.

    Each view's projection is replaced by its nearest neighbour in the support set, and
    contrasted (NT-Xent, temperature 0.1) with the other view's prediction, symmetrically::

        loss = (L(NN(z1), p2) + L(NN(z2), p1)) / 2

    ``forward(x)`` returns ``(z, p)``. The support set is updated with view 2's projections.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``).
        hidden_dim: Hidden width of the projection head (2048).
        out_dim: Projection size (256).
        pred_hidden_dim: Hidden width of the prediction head (paper 4096).
        support_set_size: Projections kept in the support set (paper 98304).

    Example (a plain PyTorch loop)::

        model = NNCLR(backbone("resnet-18", input_size=32))
        criterion = NTXentLoss(temperature=0.1)
        for (x1, x2), _, _ in loader:
            (z1, p1), (z2, p2) = model(x1), model(x2)
            nn1 = model.support_set(z1, update=False)
            nn2 = model.support_set(z2, update=True)
            loss = 0.5 * (criterion(nn1, p2) + criterion(nn2, p1))
            loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    method = "nnclr"

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int | None = None,
        hidden_dim: int = 2048,
        out_dim: int = 256,
        pred_hidden_dim: int = 4096,
        support_set_size: int = 98304,
    ) -> None:
        super().__init__(backbone)
        num_features = num_features or backbone.num_features
        self.projection_head = NNCLRProjectionHead(num_features, hidden_dim, out_dim)
        self.prediction_head = NNCLRPredictionHead(out_dim, pred_hidden_dim, out_dim)
        self.support_set = NNMemoryBankModule(support_set_size, out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.projection_head(self.embed(x))
        return z, self.prediction_head(z)

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        z1, p1 = self(views[0])
        z2, p2 = self(views[1])
        nn1 = self.support_set(z1, update=False)
        nn2 = self.support_set(z2, update=True)
        return 0.5 * (criterion(nn1, p2) + criterion(nn2, p1))
