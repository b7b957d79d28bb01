"""DINO (Caron et al., 2021): self-distillation of a momentum teacher into a student over multi-crop views.

DINO's teacher temperature defaults to the reference code's constant 0.04 (a warmer teacher
risks collapse in short runs); the paper's 0.04 -> 0.07 warm-up over 30 epochs is
``criterion={"teacher_temp": 0.07}``, compressed into the first 30% of shorter runs (see
:class:`DINO`). Early in training DINO's loss sits near ``log(output_dim)`` while the teacher
is still uniform; LightlySSL's implementation behaves the same.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from easyssl.loss import DINOLoss
from easyssl.methods.base import Method
from easyssl.nn.base import TrainingProgress, backbone_num_features
from easyssl.nn.momentum import MomentumSSLModel
from easyssl.nn.multicrop import forward_grouped, frozen_at
from easyssl.nn.projection_heads import DINOProjectionHead
from easyssl.transforms.dino import DINO_VIEWS, DINOTransform
from easyssl.transforms.twins import batched_like


class DINO(MomentumSSLModel):
    """Student (backbone + :class:`DINOProjectionHead`) and teacher (its momentum copy).

    The teacher sees the global views only (the first ``n_global_views`` of the list, 2 as
    :class:`~easyssl.transforms.DINOTransform` makes them); the student sees all views (global then local crops). :class:`~easyssl.loss.DINOLoss`
    compares them with the epoch, which sets the teacher temperature. After every optimiser
    step the teacher follows the student with a momentum rising from ``momentum`` (0.996) to
    ``momentum_end`` (1.0) along a cosine over training.

    **Epochs under a step or time budget.** The loss is given the *continuous* epoch
    ``progress.fraction * progress.max_epochs`` (``max_epochs`` is the trainer's estimate when
    training is bounded by steps or time), and the teacher-temperature warm-up is compressed so
    that it ends no later than the first ``teacher_temp_warmup`` fraction of training (0.3: the
    paper's 30 warm-up epochs of 100): the epoch passed is
    ``max(fraction * max_epochs, fraction / teacher_temp_warmup * criterion.warmup_teacher_temp_epochs)``.
    Short runs thus reach the final teacher temperature too.

    The last layer of the head gets no gradient during the first ``freeze_last_layer`` of
    training (at most the first epoch; the paper freezes it for its first epoch).

    ``embed(x)`` uses the **teacher's** backbone, whose features the paper evaluates.

    Args:
        backbone: Module mapping images to ``(B, num_features)`` (a ResNet, or a ViT from
            ``backbone("vit-small", input_size=...)``, which accepts the smaller local crops).
        num_features: Backbone output size (default: ``backbone.num_features``).
        hidden_dim: Hidden width of the head (2048).
        bottleneck_dim: Bottleneck of the head (256).
        output_dim: Outputs of the head (paper 65536; 2048 by default in easyssl). The loss's
            ``output_dim`` must be the same.
        batch_norm: Batch norm in the head's MLP.
        norm_last_layer: Fix the weight-norm gain of the last layer (paper: True for ViT-S).
        momentum: Teacher momentum at the start of training.
        momentum_end: Teacher momentum at the end of training.
        freeze_last_layer: Fraction of training with a frozen last layer.
        teacher_temp_warmup: Latest end of the teacher-temperature warm-up, as a fraction of
            training (None: plain epochs).
        n_global_views: Global views per image: the first views of the list (2); the teacher sees only them.

    Example (a plain PyTorch loop)::

        model = DINO(backbone("resnet-18", input_size=32), output_dim=2048)
        criterion = DINOLoss(output_dim=2048, warmup_teacher_temp_epochs=5)
        for epoch in range(epochs):
            for views, _, _ in loader:                       # DINOTransform views
                teacher_out = [model.forward_teacher(v) for v in views[:2]]
                student_out = [model(v) for v in views]
                loss = criterion(teacher_out, student_out, epoch=epoch)
                loss.backward(); optimizer.step(); optimizer.zero_grad()
                model.update_momentum(step / total_steps)
    """

    method = "dino"
    momentum_pairs = (("backbone", "teacher_backbone"), ("head", "teacher_head"))

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int | None = None,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        output_dim: int = 65536,
        batch_norm: bool = False,
        norm_last_layer: bool = True,
        momentum: float = 0.996,
        momentum_end: float = 1.0,
        freeze_last_layer: float = 0.01,
        teacher_temp_warmup: float | None = 0.3,
        n_global_views: int = 2,
    ) -> None:
        super().__init__(backbone)
        num_features = backbone_num_features(backbone, num_features)
        self.head = DINOProjectionHead(num_features, hidden_dim, bottleneck_dim, output_dim, batch_norm=batch_norm, norm_last_layer=norm_last_layer)
        self.make_momentum_copies(momentum, momentum_end)  # teacher_backbone, teacher_head
        self.output_dim = output_dim
        self.freeze_last_layer = float(freeze_last_layer)
        if teacher_temp_warmup is not None and not 0.0 < teacher_temp_warmup <= 1.0:
            raise ValueError(f"teacher_temp_warmup must be a fraction of training in (0, 1] or None, got {teacher_temp_warmup}")
        self.teacher_temp_warmup = teacher_temp_warmup
        self.n_global_views = int(n_global_views)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher backbone features ``(B, num_features)``."""
        return torch.flatten(self.teacher_backbone(x), start_dim=1)

    def forward(self, x: torch.Tensor, freeze_last_layer: bool = False) -> torch.Tensor:
        """Student outputs ``(B, output_dim)``."""
        return self.head(torch.flatten(self.backbone(x), start_dim=1), freeze_last_layer=freeze_last_layer)

    def forward_teacher(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher outputs ``(B, output_dim)``, without gradient."""
        return self.forward_momentum(x)

    def loss_epoch(self, progress: TrainingProgress, criterion: nn.Module) -> float:
        """The (continuous) epoch given to the loss; see the class docstring."""
        epoch = progress.fraction * progress.max_epochs
        warmup_epochs = getattr(criterion, "warmup_teacher_temp_epochs", 0)
        if self.teacher_temp_warmup and warmup_epochs:
            epoch = max(epoch, progress.fraction / self.teacher_temp_warmup * warmup_epochs)
        return epoch

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        expected = getattr(criterion, "output_dim", self.output_dim)
        if expected != self.output_dim:
            raise ValueError(
                f"the DINO head has output_dim={self.output_dim} but the loss expects {expected}: "
                f"set criterion={{'output_dim': {self.output_dim}}} (or model={{'output_dim': {expected}}})"
            )
        n_global = self.n_global_views
        if len(views) < n_global:
            raise ValueError(f"DINO expects {n_global} global views (then the local views), got {len(views)} views")
        freeze = frozen_at(progress, self.freeze_last_layer)
        teacher_out = forward_grouped(self.forward_teacher, views[:n_global])
        student_out = forward_grouped(lambda x: self(x, freeze_last_layer=freeze), views)
        return criterion(teacher_out, student_out, epoch=self.loss_epoch(progress, criterion))


METHOD = Method(
    name="dino",
    model=DINO,
    criterion=DINOLoss,
    transform=DINOTransform,
    batch_transform=batched_like(DINOTransform),
    model_defaults={
        "hidden_dim": 2048, "bottleneck_dim": 256, "output_dim": 2048, "batch_norm": False, "norm_last_layer": True,
        "momentum": 0.996, "momentum_end": 1.0, "freeze_last_layer": 0.01, "teacher_temp_warmup": 0.3, "n_global_views": 2,
    },
    criterion_defaults={
        "output_dim": 2048, "warmup_teacher_temp": 0.04, "teacher_temp": 0.04, "warmup_teacher_temp_epochs": 30,
        "student_temp": 0.1, "center_momentum": 0.9,
    },
    collate_defaults=dict(DINO_VIEWS),
    optimizer_defaults={"name": "adamw", "base_lr": 5e-4, "weight_decay": 0.04, "warmup": 0.1},
    description="DINO (Caron et al. 2021): self-distillation from a momentum teacher on global and local crops",
)
