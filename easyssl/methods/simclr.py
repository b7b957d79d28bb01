"""SimCLR (Chen et al., 2020): a backbone and a projection head trained with NT-Xent on two views."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import NTXentLoss
from easyssl.methods.base import Method
from easyssl.nn.base import SSLModel, TrainingProgress, backbone_num_features
from easyssl.nn.projection_heads import SimCLRProjectionHead
from easyssl.transforms.simclr import SIMCLR_VIEW, SimCLRTransform
from easyssl.transforms.twins import batched_like


class SimCLR(SSLModel):
    """Backbone + :class:`SimCLRProjectionHead`; ``forward(x)`` returns the projections.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``, else found by one dry forward).
        num_ftrs: LightlySSL's name for ``num_features``.
        hidden_dim: Projection head hidden width (default: ``num_features``).
        out_dim: Projection size.
        num_layers: Projection head depth (2 in SimCLR v1, 3 in v2).

    Example (a plain PyTorch loop)::

        model = SimCLR(backbone("resnet-18", input_size=32))
        criterion = NTXentLoss(temperature=0.5)
        for (view0, view1), _, _ in loader:
            loss = criterion(model(view0), model(view1))
            loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    method = "simclr"

    def __init__(
        self, backbone: nn.Module, num_features: int | None = None, hidden_dim: int | None = None, out_dim: int = 128, num_layers: int = 2,
        num_ftrs: int | None = None,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features or num_ftrs)
        self.projection_head = SimCLRProjectionHead(num_features, hidden_dim or num_features, out_dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.embed(x))

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        # Both views in one forward pass: one batch-norm statistic over 2B images, and faster.
        z = self(torch.cat(list(views[:2]), dim=0))
        z0, z1 = z.chunk(2, dim=0)
        return criterion(z0, z1)


METHOD = Method(
    name="simclr",
    model=SimCLR,
    criterion=NTXentLoss,
    transform=SimCLRTransform,
    batch_transform=batched_like(SimCLRTransform),
    model_defaults={"out_dim": 128, "hidden_dim": None, "num_layers": 2},
    criterion_defaults={"temperature": 0.2, "memory_bank_size": 0, "gather_distributed": "auto"},
    collate_defaults={**SIMCLR_VIEW, "cj_strength": 0.5},  # SimCLR's views with the colour jitter at half strength
    optimizer_defaults={"name": "sgd", "base_lr": 0.5, "weight_decay": 5e-4, "momentum": 0.9, "warmup": 0.02},
    description="SimCLR (Chen et al. 2020): contrastive NT-Xent loss between two augmented views",
)
