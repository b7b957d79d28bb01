"""SwaV (Caron et al., 2020): predict one view's online cluster assignment (Sinkhorn-Knopp codes) from another view."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.loss import SwaVLoss
from easyssl.methods.base import Method
from easyssl.methods.presets import SGD
from easyssl.nn.base import SSLModel, TrainingProgress, backbone_num_features
from easyssl.nn.multicrop import forward_grouped, frozen_at
from easyssl.nn.projection_heads import SwaVProjectionHead
from easyssl.nn.prototypes import SwaVPrototypes
from easyssl.transforms.dino import SWAV_VIEWS, SwaVTransform
from easyssl.transforms.twins import batched_like


class SwaV(SSLModel):
    """Backbone + projection head + :class:`SwaVPrototypes`, trained with :class:`~easyssl.loss.SwaVLoss` on multi-crop views.

    Every view is projected, L2-normalised and scored against the prototypes. The codes of the
    high-resolution views (Sinkhorn-Knopp on their scores, in the loss) are predicted from every
    other view. The prototypes are re-normalised after each optimiser step
    (:meth:`on_after_step`) and get no gradient during the first ``freeze_prototypes`` of
    training (at most the first epoch; the paper freezes them for its first epoch), read from the
    ``progress`` given to :meth:`training_loss` (in your own loop, advance its ``step``; plain
    ``forward`` calls never freeze them).

    With ``queue_length > 0`` the projections of the last ``queue_length`` samples of each
    high-resolution view are kept (a buffer, saved in checkpoints) and, once the queue is full,
    their scores join the batch's in the Sinkhorn step, as the paper does for small batches.

    Args:
        backbone: Module mapping images to ``(B, num_features)``.
        num_features: Backbone output size (default: ``backbone.num_features``).
        hidden_dim: Hidden width of the projection head (2048).
        out_dim: Projection size (128).
        n_prototypes: Number of prototypes (paper 3000; 512 by default in easyssl).
        queue_length: Projections kept per high-resolution view (0: no queue).
        n_high_res_views: High-resolution views per image: the first views of the list (2).
        freeze_prototypes: Fraction of training with frozen prototypes.

    Example (a plain PyTorch loop)::

        model = SwaV(backbone("resnet-18", input_size=32), n_prototypes=512)
        criterion = SwaVLoss()
        for views, _, _ in loader:                           # SwaVTransform views
            scores = [model(v) for v in views]
            loss = criterion(scores[:2], scores[2:])
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            model.prototypes.normalize()
    """

    method = "swav"

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int | None = None,
        hidden_dim: int = 2048,
        out_dim: int = 128,
        n_prototypes: int = 3000,
        queue_length: int = 0,
        n_high_res_views: int = 2,
        freeze_prototypes: float = 0.05,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features)
        if queue_length < 0:
            raise ValueError(f"queue_length must be >= 0, got {queue_length}")
        self.projection_head = SwaVProjectionHead(num_features, hidden_dim, out_dim)
        self.prototypes = SwaVPrototypes(out_dim, n_prototypes)
        self.queue_length = int(queue_length)
        self.freeze_prototypes = float(freeze_prototypes)
        self.n_high_res_views = int(n_high_res_views)
        self.register_buffer("queue", torch.zeros(n_high_res_views, self.queue_length, out_dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised projections ``(B, out_dim)``."""
        return F.normalize(self.projection_head(self.embed(x)), dim=1)

    def forward(self, x: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """Prototype scores ``(B, n_prototypes)``."""
        return self.prototypes(self.project(x), frozen=frozen)

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        frozen = frozen_at(progress, self.freeze_prototypes)
        n_high = self.n_high_res_views
        if len(views) < n_high:
            raise ValueError(f"SwaV expects at least {n_high} views (the high-resolution ones first), got {len(views)}")
        z = forward_grouped(self.project, views)
        high_z = z[:n_high]
        high_scores = [self.prototypes(h, frozen=frozen) for h in high_z]
        low_scores = [self.prototypes(l, frozen=frozen) for l in z[n_high:]]
        queue_scores = self._queue_scores(high_z) if self.queue_length > 0 and self.training else None
        return criterion(high_scores, low_scores, queue_scores)

    @torch.no_grad()
    def _queue_scores(self, high_z: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
        """Scores of the queued projections (once the queue is full), then enqueue this batch's."""
        scores = None
        if int(self.queue_filled) >= self.queue_length:
            scores = [self.prototypes(self.queue[i].to(high_z[i].dtype)) for i in range(len(high_z))]
        n = min(high_z[0].shape[0], self.queue_length)
        self.queue.copy_(torch.cat([torch.stack([z[-n:].detach().to(self.queue.dtype) for z in high_z]), self.queue[:, : self.queue_length - n]], dim=1))
        self.queue_filled.fill_(min(self.queue_length, int(self.queue_filled) + n))
        return scores

    def on_after_step(self, progress: TrainingProgress) -> None:
        self.prototypes.normalize()


METHOD = Method(
    name="swav",
    model=SwaV,
    criterion=SwaVLoss,
    transform=SwaVTransform,
    batch_transform=batched_like(SwaVTransform),
    model_defaults={
        "hidden_dim": 2048, "out_dim": 128, "n_prototypes": 512, "queue_length": 0, "n_high_res_views": 2, "freeze_prototypes": 0.05,
    },
    criterion_defaults={"temperature": 0.1, "sinkhorn_iterations": 3, "sinkhorn_epsilon": 0.05, "sinkhorn_gather_distributed": "auto"},
    collate_defaults=dict(SWAV_VIEWS),
    optimizer_defaults=dict(SGD),
    description="SwaV (Caron et al. 2020): swapped prediction of online Sinkhorn cluster codes over multi-crop views",
)
