"""Negative cosine similarity, the loss of SimSiam (Chen & He, 2021) and BYOL (Grill et al., 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NegativeCosineSimilarity(nn.Module):
    """Mean negative cosine similarity between two batches of vectors::

        loss = -mean_i( <x0_i, x1_i> / max(||x0_i|| * ||x1_i||, eps) )

    It lies in ``[-1, 1]`` and equals ``-1`` when the two views point the same way.
    SimSiam and BYOL compare a prediction with a *stop-gradient* target: pass the target
    detached yourself (``loss_fn(p0, z1.detach())``); this module does not detach anything.

    Args:
        dim: Dimension along which the cosine similarity is computed.
        eps: Small positive value that avoids division by zero for zero vectors.

    Example:
        >>> loss_fn = NegativeCosineSimilarity()
        >>> p0, z1 = torch.randn(8, 128), torch.randn(8, 128)
        >>> loss = loss_fn(p0, z1.detach())
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.dim = int(dim)
        self.eps = float(eps)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Return ``-cosine_similarity(x0, x1, dim).mean()`` as a float32 scalar."""
        if x0.shape != x1.shape:
            raise ValueError(f"x0 and x1 must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
        if x0.dim() == 0 or not -x0.dim() <= self.dim < x0.dim():
            raise ValueError(f"dim={self.dim} is out of range for inputs of shape {tuple(x0.shape)}")
        with torch.autocast(device_type=x0.device.type, enabled=False):
            return -F.cosine_similarity(x0.float(), x1.float(), dim=self.dim, eps=self.eps).mean()
