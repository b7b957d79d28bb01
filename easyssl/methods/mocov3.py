"""MoCo v3 (Chen, Xie & He, 2021): symmetric in-batch contrast of predictions with a momentum encoder's keys."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import MoCoV3Loss
from easyssl.methods.base import Method
from easyssl.methods.presets import SGD
from easyssl.nn.base import TrainingProgress, backbone_num_features
from easyssl.nn.momentum import MomentumSSLModel
from easyssl.nn.prediction_heads import MoCoV3PredictionHead
from easyssl.nn.projection_heads import MoCoProjectionHead
from easyssl.transforms.byol import BYOL_VIEWS, BYOLTransform
from easyssl.transforms.twins import batched_like


class MoCoV3(MomentumSSLModel):
    """MoCo v3: backbone + projection (3 layers, BN) + prediction (2 layers) heads, and a momentum copy
    of backbone and projection head.

    Each view's query (online prediction) is contrasted with the other view's key (momentum
    projection) in the batch, symmetrically: ``loss = L(q1, k2) + L(q2, k1)`` with
    :class:`~easyssl.loss.MoCoV3Loss`. No queue. ``embed(x)`` uses the online backbone. Works with ResNets and ViTs (``backbone="vit-small"``; the
    paper trains ViTs with AdamW, ``optimizer={"name": "adamw", "base_lr": 1.5e-4, "weight_decay": 0.1}``).

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``).
        hidden_dim: Hidden width of the projection head (paper 4096; default ``2 * num_features``).
        out_dim: Projection size (256).
        pred_hidden_dim: Hidden width of the prediction head (default: ``hidden_dim``).
        momentum: Momentum at the start of training (0.99), rising along a cosine to ``momentum_end``.
        momentum_end: Momentum at the end of training (1.0).

    Example (a plain PyTorch loop)::

        model = MoCoV3(backbone("vit-tiny", input_size=32))
        criterion = MoCoV3Loss(temperature=0.2)
        for step, ((x1, x2), _, _) in enumerate(loader):
            q1, q2 = model(x1), model(x2)
            k1, k2 = model.forward_momentum(x1), model.forward_momentum(x2)
            loss = criterion(q1, k2) + criterion(q2, k1)
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            model.update_momentum(step / total_steps)
    """

    method = "mocov3"

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int | None = None,
        hidden_dim: int | None = None,
        out_dim: int = 256,
        pred_hidden_dim: int | None = None,
        momentum: float = 0.99,
        momentum_end: float = 1.0,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features)
        hidden_dim = hidden_dim or 2 * num_features
        self.projection_head = MoCoProjectionHead(num_features, hidden_dim, out_dim, num_layers=3, batch_norm=True)
        self.prediction_head = MoCoV3PredictionHead(out_dim, pred_hidden_dim or hidden_dim, out_dim)
        self.make_momentum_copies(momentum, momentum_end)  # backbone_momentum, projection_head_momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Queries: the online predictions ``(B, out_dim)``."""
        return self.prediction_head(self.projection_head(self.embed(x)))

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        q1, q2 = self(views[0]), self(views[1])
        k1, k2 = self.forward_momentum(views[0]), self.forward_momentum(views[1])
        return criterion(q1, k2) + criterion(q2, k1)


METHOD = Method(
    name="mocov3",
    model=MoCoV3,
    criterion=MoCoV3Loss,
    transform=BYOLTransform,
    batch_transform=batched_like(BYOLTransform),
    model_defaults={"hidden_dim": None, "out_dim": 256, "pred_hidden_dim": None, "momentum": 0.99, "momentum_end": 1.0},
    criterion_defaults={"temperature": 0.2, "gather_distributed": "auto"},
    collate_defaults=dict(BYOL_VIEWS),
    optimizer_defaults=dict(SGD),
    description="MoCo v3 (Chen, Xie & He 2021): symmetric in-batch contrast of predictions with momentum keys; ResNets and ViTs",
)
