"""The interface every SSL model implements, and the training progress it is told about."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn


@dataclass
class TrainingProgress:
    """Where training stands, for schedules (momentum, teacher temperature, learning rate).

    Attributes:
        epoch: Current epoch, from 0.
        max_epochs: Number of epochs planned (an estimate when training is time-bound).
        step: Optimisation steps done so far, from 0.
        max_steps: Steps planned in total.
        elapsed: Seconds of training so far.
        max_time: Training-time budget in seconds (None: no budget).
    """

    epoch: int = 0
    max_epochs: int = 1
    step: int = 0
    max_steps: int = 1
    elapsed: float = 0.0
    max_time: float | None = None

    @property
    def fraction(self) -> float:
        """Fraction of training done, in [0, 1]: of the steps, or of the time budget when that is nearer its end."""
        done = self.step / max(1, self.max_steps)
        if self.max_time:
            done = max(done, self.elapsed / self.max_time)
        return min(1.0, done)


class SSLModel(nn.Module):
    """Base class of easyssl's self-supervised models.

    A model holds a ``backbone`` (image -> features) and whatever heads and momentum
    encoders its method needs. It works in any plain PyTorch loop through ``forward``; the
    trainer uses three hooks:

    * :meth:`training_loss` ``(views, criterion, progress) -> loss``: the method's loss for a
      batch of views (a list of ``(B, C, H, W)`` tensors);
    * :meth:`on_after_step` ``(progress)``: called after each optimiser step (momentum
      encoder updates);
    * :meth:`embed` ``(images) -> (B, D)``: the features used as embeddings.
    """

    #: Name of the method in the registry (``"simclr"``...), saved in checkpoints.
    method: str = ""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, num_features)`` of an image batch: the embeddings."""
        return torch.flatten(self.backbone(x), start_dim=1)

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        """The method's loss on a batch of augmented views."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_loss(views, criterion, progress)")

    def on_after_step(self, progress: TrainingProgress) -> None:
        """Hook after each optimiser step (e.g. momentum-encoder update); nothing by default."""
