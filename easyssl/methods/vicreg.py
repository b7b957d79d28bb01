"""VICReg (Bardes, Ponce & LeCun, 2022): variance-invariance-covariance regularisation of two views' embeddings."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import VICRegLoss
from easyssl.methods.base import Method
from easyssl.nn.base import SSLModel, TrainingProgress, backbone_num_features
from easyssl.nn.projection_heads import VICRegProjectionHead
from easyssl.transforms.byol import BYOL_VIEWS, BYOLTransform
from easyssl.transforms.twins import batched_like


class VICReg(SSLModel):
    """Backbone + 3-layer expander (BN + ReLU); ``forward(x)`` returns the embeddings, the loss is
    :class:`~easyssl.loss.VICRegLoss` between the two views'.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``).
        hidden_dim: Hidden width of the expander (8192 in the paper; 2048 by default in easyssl).
        out_dim: Embedding size (same).

    Example (a plain PyTorch loop)::

        model = VICReg(backbone("resnet-18", input_size=32))
        criterion = VICRegLoss(lambda_param=25, mu_param=25, nu_param=1)
        for (x1, x2), _, _ in loader:                        # BYOLTransform views
            loss = criterion(model(x1), model(x2))
            loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    method = "vicreg"

    def __init__(self, backbone: nn.Module, num_features: int | None = None, hidden_dim: int = 8192, out_dim: int = 8192) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features)
        self.projection_head = VICRegProjectionHead(num_features, hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.embed(x))

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        return criterion(self(views[0]), self(views[1]))


METHOD = Method(
    name="vicreg",
    model=VICReg,
    criterion=VICRegLoss,
    transform=BYOLTransform,
    batch_transform=batched_like(BYOLTransform),
    model_defaults={"hidden_dim": 2048, "out_dim": 2048},
    criterion_defaults={"lambda_param": 25.0, "mu_param": 25.0, "nu_param": 1.0, "gather_distributed": "auto"},
    collate_defaults=dict(BYOL_VIEWS),
    # LARS: the loss is a sum over thousands of dimensions, and with plain SGD it diverges.
    optimizer_defaults={"name": "lars", "base_lr": 0.2, "weight_decay": 1e-6, "momentum": 0.9, "warmup": 0.02},
    description="VICReg (Bardes et al. 2022): variance, invariance and covariance terms on the two views' embeddings",
)
