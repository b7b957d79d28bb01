"""The interface every SSL model implements, and the training progress it is told about."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from easyssl.nn.embedding_views import IMAGE_ONLY, check_embedding_views, embedding_view
from easyssl.nn.features import dry_forward


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


def backbone_num_features(backbone: nn.Module, given: int | None = None) -> int:
    """The size of the features :meth:`SSLModel.embed` takes from ``backbone``: ``given`` (a model's
    ``num_features``/``num_ftrs`` argument), else its ``num_features``, else, for a module without one
    (LightlySSL's ``nn.Sequential(*list(torchvision.models.resnet18().children())[:-1])``), the size of its
    flattened output on a dummy batch (:func:`~easyssl.nn.features.dry_forward`). A module without
    ``num_features`` keeps the size as its ``num_features``, so that export and whitening read the same number."""
    size = given or getattr(backbone, "num_features", None)
    if not (isinstance(size, int) and size > 0):
        size = int(torch.flatten(dry_forward(backbone), start_dim=1).shape[1])
    if not hasattr(backbone, "num_features"):
        backbone.num_features = int(size)
    return int(size)


class SSLModel(nn.Module):
    """Base class of easyssl's self-supervised models.

    A model holds a ``backbone`` (image -> features) and whatever heads and momentum
    encoders its method needs. It works in any plain PyTorch loop through ``forward``; the
    trainer uses three hooks:

    * :meth:`training_loss` ``(views, criterion, progress) -> loss``: the method's loss for a
      batch of views (a list of ``(B, C, H, W)`` tensors);
    * :meth:`on_after_step` ``(progress)``: called after each optimiser step (momentum
      encoder updates);
    * :meth:`embed` ``(images) -> (B, D)``: the backbone features the embeddings are made of.

    Embeddings (what :func:`easyssl.embed_images` returns) are ``whiten(embed_views(x))``: the backbone features
    averaged over the model's :attr:`embedding_views` (the image alone unless set; see
    :mod:`easyssl.nn.embedding_views`), then
    features centred and whitened (decorrelated, every direction scaled to unit variance)
    with statistics of the training images, set at the end of training by
    :func:`easyssl.calibrate_embeddings`. A backbone ends in a ReLU, so its raw features sit
    in one corner of the space where all cosine similarities are high, and a few directions
    of large variance dominate them; whitened, cosine similarity weighs every direction the
    images vary in (PCA-whitening, as in image retrieval: Jegou & Chum, ECCV 2012).
    """

    #: Name of the method in the registry (``"simclr"``...), saved in checkpoints.
    method: str = ""
    #: True where ``training_loss`` can be captured as a CUDA graph (:mod:`easyssl.train.step`): it neither syncs with
    #: the host nor reads the training progress (a graph would freeze its values at capture).
    graph_safe: bool = False

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        # Statistics of the training images' features; empty until calibrated.
        self.register_buffer("embedding_mean", torch.zeros(0))
        self.register_buffer("embedding_whitening", torch.zeros(0, 0))
        self._embedding_views = IMAGE_ONLY

    @property
    def embedding_views(self) -> tuple[tuple[float, bool], ...]:
        """The ``(scale, mirrored)`` views :meth:`embed_views` averages (:mod:`easyssl.nn.embedding_views`). After
        changing them, run :func:`easyssl.calibrate_embeddings` again: the whitening is fitted to the averaged features."""
        return self._embedding_views

    @embedding_views.setter
    def embedding_views(self, views: Any) -> None:
        self._embedding_views = check_embedding_views(views)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, num_features)`` of an image batch (what training uses; see :meth:`embedding`)."""
        return torch.flatten(self.backbone(x), start_dim=1)

    @property
    def has_embedding_statistics(self) -> bool:
        """Whether :meth:`set_embedding_statistics` has run (embeddings are then whitened)."""
        return self.embedding_mean.numel() > 0

    def set_embedding_statistics(self, mean: torch.Tensor, whitening: torch.Tensor) -> None:
        """Store the features' ``mean`` ``(D,)`` and the ``whitening`` matrix ``(D, D)`` that :meth:`whiten` applies."""
        mean, whitening = torch.as_tensor(mean).flatten().float(), torch.as_tensor(whitening).float()
        if whitening.shape != (mean.shape[0], mean.shape[0]):
            raise ValueError(f"whitening must be a ({mean.shape[0]}, {mean.shape[0]}) matrix for a mean of size {mean.shape[0]}, "
                             f"got {tuple(whitening.shape)}")
        if not torch.isfinite(whitening).all() or not torch.isfinite(mean).all():
            raise ValueError("mean and whitening must be finite")
        device = self.embedding_mean.device
        self.embedding_mean = mean.to(device)
        self.embedding_whitening = whitening.to(device)

    def clear_embedding_statistics(self) -> None:
        """Forget the statistics: embeddings are the raw backbone features again."""
        self.embedding_mean = self.embedding_mean.new_zeros(0)
        self.embedding_whitening = self.embedding_whitening.new_zeros(0, 0)

    def whiten(self, features: torch.Tensor) -> torch.Tensor:
        """``(features - mean) @ whitening`` in float32 with the stored statistics; ``features`` as float32 when there are none."""
        features = features.float()
        if not self.has_embedding_statistics:
            return features
        if features.shape[-1] != self.embedding_mean.shape[0]:
            raise ValueError(
                f"features have {features.shape[-1]} dimensions but the embedding statistics {self.embedding_mean.shape[0]}: "
                "call clear_embedding_statistics() after changing the backbone"
            )
        with torch.autocast(features.device.type, enabled=False):  # float32 even inside an autocast region
            return (features - self.embedding_mean) @ self.embedding_whitening

    def embed_views(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`embed` averaged over :attr:`embedding_views` (float32 when there are several): the features
        embeddings are made of. One view of the image as it is: ``embed(x)`` itself."""
        if self._embedding_views == IMAGE_ONLY:
            return self.embed(x)
        total = None
        for scale, mirrored in self._embedding_views:
            features = self.embed(embedding_view(x, scale, mirrored)).float()
            total = features if total is None else total + features
        return total / len(self._embedding_views)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The embeddings of an image batch, as :func:`easyssl.embed_images` computes them: ``whiten(embed_views(x))``."""
        return self.whiten(self.embed_views(x))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # type: ignore[override]
        # The statistics' size is only known once calibrated: take the saved one (or none, for
        # checkpoints written before easyssl kept statistics).
        for name, empty in (("embedding_mean", (0,)), ("embedding_whitening", (0, 0))):
            key = prefix + name
            current = getattr(self, name)
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key], device=current.device))
            else:
                state_dict[key] = current.new_zeros(empty)
                setattr(self, name, current.new_zeros(empty))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        """The method's loss on a batch of augmented views."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_loss(views, criterion, progress)")

    def on_after_step(self, progress: TrainingProgress) -> None:
        """Hook after each optimiser step (e.g. momentum-encoder update); nothing by default."""
