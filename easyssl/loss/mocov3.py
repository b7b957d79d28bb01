"""MoCo v3's contrastive loss (Chen, Xie & He, 2021): InfoNCE of queries against the other view's momentum keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.runtime import distributed


class MoCoV3Loss(nn.Module):
    """MoCo v3's contrastive loss: InfoNCE of queries against the momentum keys of the other view.

    For queries ``q`` and keys ``k`` (both ``(N, D)``, L2-normalised here), the positives are
    on the diagonal::

        loss = 2 * T * cross_entropy(q @ k.T / T, arange(N))

    (the ``2T`` factor is the reference code's). The model sums it over both view orders.
    Under ``torch.distributed`` the keys of all processes are the negatives.

    Args:
        temperature: Softmax temperature ``T`` (0.2 for ViTs in the paper, 1.0 for ResNets).
        gather_distributed: Gather the keys of all processes.

    Example:
        >>> loss = MoCoV3Loss(0.2)(torch.randn(8, 256), torch.randn(8, 256))
    """

    def __init__(self, temperature: float = 0.2, gather_distributed: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        if query.shape != key.shape or query.dim() != 2:
            raise ValueError(f"query and key must both be (N, D) with the same shape, got {tuple(query.shape)} and {tuple(key.shape)}")
        with torch.autocast(device_type=query.device.type, enabled=False):
            q = F.normalize(query.float(), dim=1)
            k = F.normalize(key.detach().float(), dim=1)
            offset = 0
            if self.gather_distributed and distributed.is_distributed():
                offset = distributed.rank() * q.shape[0]
                k = torch.cat(distributed.gather(k), dim=0)
            logits = q @ k.T / self.temperature
            labels = torch.arange(q.shape[0], device=q.device) + offset
            return F.cross_entropy(logits, labels) * (2 * self.temperature)
