"""SimSiam (Chen & He, 2021): a Siamese network with a predictor and a stop-gradient, no negatives, no momentum."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import NegativeCosineSimilarity
from easyssl.methods.base import Method
from easyssl.methods.presets import SGD
from easyssl.nn.base import SSLModel, TrainingProgress, backbone_num_features
from easyssl.nn.prediction_heads import SimSiamPredictionHead
from easyssl.nn.projection_heads import SimSiamProjectionHead
from easyssl.transforms.moco import MOCO_V2_VIEW
from easyssl.transforms.simclr import SimCLRTransform
from easyssl.transforms.twins import batched_like


class SimSiam(SSLModel):
    """Backbone + projection head (3 layers, BN) + bottleneck prediction head.

    ``forward(x)`` returns ``(z, p)``: the projection and the prediction. The loss compares
    each view's prediction with the other view's *detached* projection (the stop-gradient)::

        loss = (L(p1, z2.detach()) + L(p2, z1.detach())) / 2,  L = NegativeCosineSimilarity

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``, else found by one dry forward).
        num_ftrs: LightlySSL's name for ``num_features``.
        hidden_dim: Hidden width of the projection head (2048).
        out_dim: Projection size (2048).
        pred_hidden_dim: Bottleneck width of the prediction head (512).
        num_layers: Linear layers in the projection head (3; 2 for CIFAR in the paper).

    Example (a plain PyTorch loop)::

        model = SimSiam(backbone("resnet-18", input_size=32))
        criterion = NegativeCosineSimilarity()
        for (x1, x2), _, _ in loader:
            (z1, p1), (z2, p2) = model(x1), model(x2)
            loss = 0.5 * (criterion(p1, z2.detach()) + criterion(p2, z1.detach()))
            loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    method = "simsiam"

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int | None = None,
        hidden_dim: int = 2048,
        out_dim: int = 2048,
        pred_hidden_dim: int = 512,
        num_layers: int = 3,
        num_ftrs: int | None = None,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features or num_ftrs)
        self.projection_head = SimSiamProjectionHead(num_features, hidden_dim, out_dim, num_layers)
        self.prediction_head = SimSiamPredictionHead(out_dim, pred_hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.projection_head(self.embed(x))
        return z, self.prediction_head(z)

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        z1, p1 = self(views[0])
        z2, p2 = self(views[1])
        return 0.5 * (criterion(p1, z2.detach()) + criterion(p2, z1.detach()))


METHOD = Method(
    name="simsiam",
    model=SimSiam,
    criterion=NegativeCosineSimilarity,
    transform=SimCLRTransform,
    batch_transform=batched_like(SimCLRTransform),
    model_defaults={"hidden_dim": 2048, "out_dim": 2048, "pred_hidden_dim": 512, "num_layers": 3},
    criterion_defaults={},
    collate_defaults=dict(MOCO_V2_VIEW),  # the paper's views are MoCo v2's
    optimizer_defaults={**SGD, "base_lr": 0.05},
    description="SimSiam (Chen & He 2021): Siamese prediction with a stop-gradient, no negatives, no momentum encoder",
)
