"""SimCLR (Chen et al., 2020): a backbone and a projection head trained with NT-Xent on two views; optionally with
E-SSL's rotation prediction (Dangovski et al., 2022), a penalty on the features' correlations and a BatchNorm on
them, all three the default for small images."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.loss import CorrelationPenalty, NTXentLoss
from easyssl.methods.base import Method
from easyssl.nn.base import SSLModel, TrainingProgress, backbone_num_features
from easyssl.nn.prediction_heads import RotationPredictionHead
from easyssl.nn.projection_heads import SimCLRProjectionHead
from easyssl.transforms.rotation import quarter_turn, random_quarter_turns
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
        rotation_weight: Above 0, E-SimCLR (Dangovski et al., 2022, "Equivariant contrastive learning"): a
            :class:`RotationPredictionHead` on the backbone's features learns by how many quarter turns each image
            was turned, and its cross-entropy, times this weight, is added to NT-Xent. Both views of an image are
            turned alike (so the positive pairs keep one orientation and the contrastive task is unchanged) by a
            random multiple of 90 degrees, a quarter of the images not at all. The paper's code turns a third, smaller crop
            all four ways; turning the views themselves forwards no extra images, and scored higher than a third batch (see ``easyssl.defaults.default_rotation_weight``,
            which sets 0.4 for small images). 0 (the paper's SimCLR): no head, no turns.
        decorrelation_weight: Above 0, this weight times :class:`~easyssl.loss.CorrelationPenalty` of the backbone's
            features (both views' batch) is added to the loss: the features the embeddings are made of keep more
            directions alive instead of collapsing onto a few behind the projection head (see
            ``easyssl.defaults.default_decorrelation_weight``, which sets 0.1 for small images). 0 (the paper's
            SimCLR): no penalty.
        feature_norm: True: the backbone's features pass through a ``BatchNorm1d`` without affine parameters (the
            re-identification "BNNeck", Luo et al., 2019), and the heads, the penalty and the embeddings all use its
            output: each feature centred and scaled by running statistics of the training batches, so no direction
            dominates the cosine similarities for its scale alone. With the decorrelation above, the model's own
            features are then close to white without a fitted whitening (see
            ``easyssl.defaults.default_feature_norm``: on for small images). Its running statistics are those of the
            training views until :func:`easyssl.calibrate_embeddings` (run at the end of training) refits them to the
            images as they are embedded (``easyssl.train.whitening.refit_feature_norm``). ``export_backbone`` exports
            the backbone without it. False (the paper's SimCLR): the features as the backbone gives them.

    Example (a plain PyTorch loop)::

        model = SimCLR(backbone("resnet-18", input_size=32))
        criterion = NTXentLoss(temperature=0.5)
        for (view0, view1), _, _ in loader:
            loss = criterion(model(view0), model(view1))
            loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    method = "simclr"
    graph_safe = True  # its quarter turns are drawn on the device; the progress is not read

    def __init__(
        self, backbone: nn.Module, num_features: int | None = None, hidden_dim: int | None = None, out_dim: int = 128, num_layers: int = 2,
        num_ftrs: int | None = None, rotation_weight: float = 0.0, decorrelation_weight: float = 0.0, feature_norm: bool = False,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features or num_ftrs)
        self.projection_head = SimCLRProjectionHead(num_features, hidden_dim or num_features, out_dim, num_layers)
        if isinstance(rotation_weight, bool) or not isinstance(rotation_weight, (int, float)) or not rotation_weight >= 0:
            raise ValueError(f"SimCLR rotation_weight must be a number of at least 0 (0: no rotation prediction), got {rotation_weight!r}")
        self.rotation_weight = float(rotation_weight)
        self.rotation_head = RotationPredictionHead(num_features) if self.rotation_weight > 0 else None
        if isinstance(decorrelation_weight, bool) or not isinstance(decorrelation_weight, (int, float)) or not decorrelation_weight >= 0:
            raise ValueError(f"SimCLR decorrelation_weight must be a number of at least 0 (0: no penalty), got {decorrelation_weight!r}")
        self.decorrelation_weight = float(decorrelation_weight)
        self.correlation_penalty = CorrelationPenalty()
        if not isinstance(feature_norm, bool):
            raise ValueError(f"SimCLR feature_norm must be True or False, got {feature_norm!r}")
        self.feature_norm = nn.BatchNorm1d(num_features, affine=False) if feature_norm else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        features = super().embed(x)
        # float32: the calibration pass refits the norm from its outputs (easyssl.train.whitening.refit_feature_norm),
        # exactly only if they are not rounded to bf16
        return features if self.feature_norm is None else self.feature_norm(features.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.embed(x))

    def paired_views(self, views: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first two views in one batch (``2B`` images: one batch-norm statistic over both, and faster), each image's
        two views turned alike by a random quarter turn where rotation prediction is on; and the turns (``None`` without)."""
        both = torch.cat(list(views[:2]), dim=0)
        if self.rotation_head is None:
            return both, None
        turns = random_quarter_turns(views[0].shape[0], device=both.device).repeat(2)  # both views of an image alike
        return quarter_turn(both, turns), turns

    def add_auxiliary_losses(self, loss: torch.Tensor, features: torch.Tensor, turns: torch.Tensor | None) -> torch.Tensor:
        """``loss`` plus rotation prediction of ``turns`` and the correlation penalty, each where its weight is on, from the
        features of :meth:`paired_views`' batch (experiment variants of the loss reuse it: ``examples/benchmarks``)."""
        if turns is not None:
            loss = loss + self.rotation_weight * F.cross_entropy(self.rotation_head(features).float(), turns)
        if self.decorrelation_weight > 0:
            loss = loss + self.decorrelation_weight * self.correlation_penalty(features)
        return loss

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        both, turns = self.paired_views(views)
        features = self.embed(both)
        z0, z1 = self.projection_head(features).chunk(2, dim=0)
        return self.add_auxiliary_losses(criterion(z0, z1), features, turns)

METHOD = Method(
    name="simclr",
    model=SimCLR,
    criterion=NTXentLoss,
    transform=SimCLRTransform,
    batch_transform=batched_like(SimCLRTransform),
    # rotation_weight, decorrelation_weight, feature_norm: the paper's SimCLR for a model built from a partial config; a
    # run's config sets them by a rule (easyssl.config.RULED_MODEL_KEYS: 0.4, 0.1 and True for small images)
    model_defaults={"out_dim": 128, "hidden_dim": None, "num_layers": 2, "rotation_weight": 0.0, "decorrelation_weight": 0.0,
                    "feature_norm": False},
    criterion_defaults={"temperature": 0.2, "memory_bank_size": 0, "gather_distributed": "auto"},
    collate_defaults={**SIMCLR_VIEW, "cj_strength": 0.5},  # SimCLR's views with the colour jitter at half strength
    optimizer_defaults={"name": "sgd", "base_lr": 0.5, "weight_decay": 5e-4, "momentum": 0.9, "warmup": 0.02},
    description="SimCLR (Chen et al. 2020): contrastive NT-Xent loss between two augmented views",
)
