"""NNCLR (Dwibedi et al., 2021): contrastive learning with nearest neighbours from a support set as positives."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import NTXentLoss
from easyssl.methods.base import Method
from easyssl.methods.presets import SGD
from easyssl.nn.base import SSLModel, TrainingProgress, backbone_num_features
from easyssl.nn.prediction_heads import NNCLRPredictionHead
from easyssl.nn.projection_heads import NNCLRProjectionHead
from easyssl.nn.support_set import NNMemoryBankModule
from easyssl.transforms.byol import BYOL_VIEWS, BYOLTransform
from easyssl.transforms.twins import batched_like


def head_width(num_features: int) -> int:
    """Hidden width of NNCLR's heads: 4 x the backbone's feature size, at most 2048 (the projection head's
    width in the paper, for a 2048-wide ResNet-50; 2048 for a ResNet-18 too).

    Small backbones get narrower heads: on the quarter-width ResNet-18 (128 features) that easyssl trains
    on a CPU, 2048-wide heads cost a fifth of each step. Measured on the Fashion-MNIST tuning split
    (2-minute budget, 20 px views, crops from 25%): 512-wide heads 572 images/s and kNN top-1 k=200 0.780
    before whitening, 0.851 whitened, against 458 images/s and 0.765 / 0.838 with 2048.
    """
    return min(2048, 4 * int(num_features))


class NNCLR(SSLModel):
    """Backbone + projection head (3 layers) + prediction head, and a support set of past projections.

    Each view's projection is replaced by its nearest neighbour in the support set, and
    contrasted (NT-Xent, temperature 0.1) with the other view's prediction, symmetrically::

        loss = (L(NN(z1), p2) + L(NN(z2), p1)) / 2

    ``forward(x)`` returns ``(z, p)``. The support set is updated with view 2's projections.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``, else found by one dry forward).
        num_ftrs: LightlySSL's name for ``num_features``.
        hidden_dim: Hidden width of the projection head (default: :func:`head_width`, 2048 from a 512-wide backbone).
        out_dim: Projection size (256).
        pred_hidden_dim: Hidden width of the prediction head (paper 4096; default: :func:`head_width`).
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
        hidden_dim: int | None = None,
        out_dim: int = 256,
        pred_hidden_dim: int | None = None,
        support_set_size: int = 98304,
        num_ftrs: int | None = None,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features or num_ftrs)
        self.projection_head = NNCLRProjectionHead(num_features, hidden_dim or head_width(num_features), out_dim)
        self.prediction_head = NNCLRPredictionHead(out_dim, pred_hidden_dim or head_width(num_features), out_dim)
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


METHOD = Method(
    name="nnclr",
    model=NNCLR,
    criterion=NTXentLoss,
    transform=BYOLTransform,
    batch_transform=batched_like(BYOLTransform),
    model_defaults={"hidden_dim": None, "out_dim": 256, "pred_hidden_dim": None, "support_set_size": 4096},  # None: head_width
    criterion_defaults={"temperature": 0.1, "memory_bank_size": 0, "gather_distributed": "auto"},
    collate_defaults=dict(BYOL_VIEWS),
    optimizer_defaults=dict(SGD),
    description="NNCLR (Dwibedi et al. 2021): contrast predictions with nearest neighbours from a support set",
)
