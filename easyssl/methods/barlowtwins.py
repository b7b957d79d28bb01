"""Barlow Twins (Zbontar et al., 2021): make the cross-correlation of two views' projections the identity."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import BarlowTwinsLoss
from easyssl.methods.base import Method
from easyssl.nn.base import SSLModel, TrainingProgress, backbone_num_features
from easyssl.nn.projection_heads import BarlowTwinsProjectionHead
from easyssl.transforms.byol import BYOL_VIEWS, BYOLTransform
from easyssl.transforms.twins import batched_like


class BarlowTwins(SSLModel):
    """Backbone + 3-layer projector; ``forward(x)`` returns the projections, the loss is
    :class:`~easyssl.loss.BarlowTwinsLoss` between the two views'.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``, else found by one dry forward).
        num_ftrs: LightlySSL's name for ``num_features``.
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

    def __init__(self, backbone: nn.Module, num_features: int | None = None, hidden_dim: int = 8192, out_dim: int = 8192,
                 num_ftrs: int | None = None) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features or num_ftrs)
        self.projection_head = BarlowTwinsProjectionHead(num_features, hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.embed(x))

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        return criterion(self(views[0]), self(views[1]))


METHOD = Method(
    name="barlowtwins",
    model=BarlowTwins,
    criterion=BarlowTwinsLoss,
    transform=BYOLTransform,
    batch_transform=batched_like(BYOLTransform),
    model_defaults={"hidden_dim": 2048, "out_dim": 2048},
    criterion_defaults={"lambda_param": 5e-3, "gather_distributed": "auto"},
    collate_defaults=dict(BYOL_VIEWS),
    # LARS: the loss is a sum over thousands of dimensions, and with plain SGD it stalls.
    optimizer_defaults={"name": "lars", "base_lr": 0.2, "weight_decay": 1.5e-6, "momentum": 0.9, "warmup": 0.02},
    description="Barlow Twins (Zbontar et al. 2021): drive the two views' cross-correlation matrix to the identity",
)
