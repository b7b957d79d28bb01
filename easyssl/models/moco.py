"""MoCo v2 (Chen et al., 2020) and MoCo v3 (Chen, Xie & He, 2021): contrastive learning against a momentum encoder."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.runtime import distributed
from easyssl.models.base import SSLModel, TrainingProgress
from easyssl.models.method_heads import MoCoProjectionHead, MoCoV3PredictionHead
from easyssl.models.momentum import momentum_at, momentum_copy, update_momentum


class MoCo(SSLModel):
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
        num_features: Backbone output size (default: ``backbone.num_features``).
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
    ) -> None:
        super().__init__(backbone)
        num_features = num_features or backbone.num_features
        self.projection_head = MoCoProjectionHead(num_features, hidden_dim or num_features, out_dim, num_layers, batch_norm=False)
        self.backbone_momentum = momentum_copy(self.backbone)
        self.projection_head_momentum = momentum_copy(self.projection_head)
        self.momentum = momentum
        self.momentum_end = momentum_end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Queries: the online projections ``(B, out_dim)``."""
        return self.projection_head(self.embed(x))

    @torch.no_grad()
    def forward_momentum(self, x: torch.Tensor) -> torch.Tensor:
        """Keys: the momentum encoder's projections ``(B, out_dim)``, without gradient."""
        return self.projection_head_momentum(torch.flatten(self.backbone_momentum(x), start_dim=1))

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        query = self(views[0])
        key = self.forward_momentum(views[1])
        return criterion(query, key)

    def update_momentum(self, progress: TrainingProgress | float) -> float:
        """EMA step of the key encoder at this point of training; returns the momentum used."""
        m = momentum_at(progress, self.momentum, self.momentum_end)
        update_momentum(self.backbone, self.backbone_momentum, m)
        update_momentum(self.projection_head, self.projection_head_momentum, m)
        return m

    def on_after_step(self, progress: TrainingProgress) -> None:
        self.update_momentum(progress)


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


class MoCoV3(SSLModel):
    """MoCo v3: backbone + projection (3 layers, BN) + prediction (2 layers) heads, and a momentum copy
    of backbone and projection head.

    Each view's query (online prediction) is contrasted with the other view's key (momentum
    projection) in the batch, symmetrically: ``loss = L(q1, k2) + L(q2, k1)`` with
    :class:`MoCoV3Loss`. No queue. ``embed(x)`` uses the online backbone. Works with ResNets and ViTs (``backbone="vit-small"``; the
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
        num_features = num_features or backbone.num_features
        hidden_dim = hidden_dim or 2 * num_features
        self.projection_head = MoCoProjectionHead(num_features, hidden_dim, out_dim, num_layers=3, batch_norm=True)
        self.prediction_head = MoCoV3PredictionHead(out_dim, pred_hidden_dim or hidden_dim, out_dim)
        self.backbone_momentum = momentum_copy(self.backbone)
        self.projection_head_momentum = momentum_copy(self.projection_head)
        self.momentum = momentum
        self.momentum_end = momentum_end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Queries: the online predictions ``(B, out_dim)``."""
        return self.prediction_head(self.projection_head(self.embed(x)))

    @torch.no_grad()
    def forward_momentum(self, x: torch.Tensor) -> torch.Tensor:
        """Keys: the momentum encoder's projections ``(B, out_dim)``, without gradient."""
        return self.projection_head_momentum(torch.flatten(self.backbone_momentum(x), start_dim=1))

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        q1, q2 = self(views[0]), self(views[1])
        k1, k2 = self.forward_momentum(views[0]), self.forward_momentum(views[1])
        return criterion(q1, k2) + criterion(q2, k1)

    def update_momentum(self, progress: TrainingProgress | float) -> float:
        """EMA step of the momentum encoder at this point of training; returns the momentum used."""
        m = momentum_at(progress, self.momentum, self.momentum_end)
        update_momentum(self.backbone, self.backbone_momentum, m)
        update_momentum(self.projection_head, self.projection_head_momentum, m)
        return m

    def on_after_step(self, progress: TrainingProgress) -> None:
        self.update_momentum(progress)
