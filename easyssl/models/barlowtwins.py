"""Barlow Twins (Zbontar et al., 2021): make the cross-correlation of two views' projections the identity."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.models.base import SSLModel, TrainingProgress
from easyssl.models.method_heads import BarlowTwinsProjectionHead


class BarlowTwins(SSLModel):
    """Backbone + 3-layer projector; ``forward(x)`` returns the projections, the loss is
    :class:`~easyssl.loss.BarlowTwinsLoss` between the two views'.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``).
        hidden_dim: Hidden width of the projector (8192 in the paper; 2048 by default in easyssl).
        out_dim: Projection size (same).

    Example (a plain PyTorch loop)::

        model = BarlowTwins(backbone("resnet-18", input_size=32))
        criterion = BarlowTwinsLoss(lambda_param=5e-3)
        for (x1, x2), _, _ in loader:                        # BYOLTransform views
            loss = criterion(model(x1), model(x2))
            loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    method = "barlowtwins"

    def __init__(self, backbone: nn.Module, num_features: int | None = None, hidden_dim: int = 8192, out_dim: int = 8192) -> None:
        super().__init__(backbone)
        num_features = num_features or backbone.num_features
        self.projection_head = BarlowTwinsProjectionHead(num_features, hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.embed(x))

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        return criterion(self(views[0]), self(views[1]))
