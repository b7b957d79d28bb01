"""BYOL (Grill et al., 2020): an online network predicts a momentum target network's projection of another view."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import NegativeCosineSimilarity
from easyssl.methods.base import Method
from easyssl.methods.presets import SGD
from easyssl.nn.base import TrainingProgress, backbone_num_features
from easyssl.nn.momentum import MomentumSSLModel
from easyssl.nn.prediction_heads import BYOLPredictionHead
from easyssl.nn.projection_heads import BYOLProjectionHead
from easyssl.transforms.byol import BYOL_VIEWS, BYOLTransform
from easyssl.transforms.twins import batched_like


class BYOL(MomentumSSLModel):
    """Online network (backbone + projection + prediction) and target network (momentum copy of backbone + projection).

    The loss is the negative cosine similarity between the online prediction of one view and
    the target projection of the other, symmetrised::

        loss = (L(p1, z2') + L(p2, z1')) / 2,   z' from the target network, without gradient

    After every optimiser step the target follows the online network with a momentum rising
    from ``momentum`` (0.99) to ``momentum_end`` (1.0) along a cosine over training.
    ``embed(x)`` uses the online backbone.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``, else found by one dry forward).
        num_ftrs: LightlySSL's name for ``num_features``.
        hidden_dim: Hidden width of both heads (paper 4096; default ``2 * num_features``).
        out_dim: Projection size (256).
        pred_hidden_dim: Hidden width of the prediction head (default: ``hidden_dim``).
        momentum: Target momentum at the start of training.
        momentum_end: Target momentum at the end of training.

    Example (a plain PyTorch loop)::

        model = BYOL(backbone("resnet-18", input_size=32))
        criterion = NegativeCosineSimilarity()
        for step, ((x1, x2), _, _) in enumerate(loader):          # BYOLTransform views
            p1, p2 = model(x1), model(x2)
            z1, z2 = model.forward_target(x1), model.forward_target(x2)
            loss = 0.5 * (criterion(p1, z2) + criterion(p2, z1))
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            model.update_momentum(step / total_steps)
    """

    method = "byol"

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int | None = None,
        hidden_dim: int | None = None,
        out_dim: int = 256,
        pred_hidden_dim: int | None = None,
        momentum: float = 0.99,
        momentum_end: float = 1.0,
        num_ftrs: int | None = None,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features or num_ftrs)
        hidden_dim = hidden_dim or 2 * num_features
        self.projection_head = BYOLProjectionHead(num_features, hidden_dim, out_dim)
        self.prediction_head = BYOLPredictionHead(out_dim, pred_hidden_dim or hidden_dim, out_dim)
        self.make_momentum_copies(momentum, momentum_end)  # backbone_momentum, projection_head_momentum: the target network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Online predictions ``(B, out_dim)``."""
        return self.prediction_head(self.projection_head(self.embed(x)))

    def forward_target(self, x: torch.Tensor) -> torch.Tensor:
        """Target projections ``(B, out_dim)``, without gradient."""
        return self.forward_momentum(x)

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        p1, p2 = self(views[0]), self(views[1])
        z1, z2 = self.forward_target(views[0]), self.forward_target(views[1])
        return 0.5 * (criterion(p1, z2) + criterion(p2, z1))


METHOD = Method(
    name="byol",
    model=BYOL,
    criterion=NegativeCosineSimilarity,
    transform=BYOLTransform,
    batch_transform=batched_like(BYOLTransform),
    model_defaults={"hidden_dim": None, "out_dim": 256, "pred_hidden_dim": None, "momentum": 0.99, "momentum_end": 1.0},
    criterion_defaults={},
    collate_defaults=dict(BYOL_VIEWS),
    optimizer_defaults=dict(SGD),
    description="BYOL (Grill et al. 2020): an online network predicts a momentum target network's projection",
)
