"""MoCo v2 (Chen et al., 2020): contrast queries with a momentum encoder's keys and a queue of past keys.

Small datasets: MoCo's queue (``criterion={"memory_bank_size": 4096}``) should be well below
the number of images, or it fills with stale copies of the positives; lower it for a few
hundred images.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import NTXentLoss
from easyssl.methods.base import Method
from easyssl.methods.presets import SGD
from easyssl.nn.base import TrainingProgress, backbone_num_features
from easyssl.nn.momentum import MomentumSSLModel
from easyssl.nn.projection_heads import MoCoProjectionHead
from easyssl.transforms.moco import MOCO_V2_VIEW, MoCoV2Transform
from easyssl.transforms.twins import batched_like


class MoCo(MomentumSSLModel):
    """MoCo v2: a query encoder (backbone + MLP head) and its momentum copy, the key encoder.

    The loss is NT-Xent between the queries of view 1 and the keys of view 2, with a queue of
    past keys as negatives: :class:`~easyssl.loss.NTXentLoss` with ``memory_bank_size > 0``
    (the queue lives in the loss and is saved in checkpoints). After every optimiser step the
    key encoder follows the query encoder with a momentum rising from ``momentum`` to
    ``momentum_end`` along a cosine over training.

    MoCo's shuffled batch norm (across GPUs) is not emulated on a single device.
    ``embed(x)`` uses the online backbone.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``, else found by one dry forward).
        num_ftrs: LightlySSL's name for ``num_features``.
        hidden_dim: Hidden width of the projection head (default: ``num_features``).
        out_dim: Projection size (128).
        num_layers: Linear layers in the head (2 in MoCo v2).
        momentum: Key-encoder momentum at the start of training.
        momentum_end: Momentum at the end of training.

    Example (a plain PyTorch loop)::

        model = MoCo(backbone("resnet-18", input_size=32))
        criterion = NTXentLoss(temperature=0.2, memory_bank_size=4096)
        for step, ((view0, view1), _, _) in enumerate(loader):   # MoCoV2Transform views
            loss = criterion(model(view0), model.forward_momentum(view1))
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            model.update_momentum(step / total_steps)
    """

    method = "moco"

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int | None = None,
        hidden_dim: int | None = None,
        out_dim: int = 128,
        num_layers: int = 2,
        momentum: float = 0.996,
        momentum_end: float = 1.0,
        num_ftrs: int | None = None,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features or num_ftrs)
        self.projection_head = MoCoProjectionHead(num_features, hidden_dim or num_features, out_dim, num_layers, batch_norm=False)
        self.make_momentum_copies(momentum, momentum_end)  # backbone_momentum, projection_head_momentum: the key encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Queries: the online projections ``(B, out_dim)``."""
        return self.projection_head(self.embed(x))

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        query = self(views[0])
        key = self.forward_momentum(views[1])  # keys: the momentum encoder's projections, without gradient
        return criterion(query, key)


METHOD = Method(
    name="moco",
    model=MoCo,
    criterion=NTXentLoss,
    transform=MoCoV2Transform,
    batch_transform=batched_like(MoCoV2Transform),
    model_defaults={"hidden_dim": None, "out_dim": 128, "num_layers": 2, "momentum": 0.996, "momentum_end": 1.0},
    criterion_defaults={"temperature": 0.2, "memory_bank_size": 4096, "gather_distributed": "auto"},
    collate_defaults=dict(MOCO_V2_VIEW),
    optimizer_defaults=dict(SGD),
    description="MoCo v2 (Chen et al. 2020): contrast queries with a momentum encoder's keys and a queue of past keys",
)
