"""Views that finish training at the size images are embedded at.

Small images train on views smaller than the images (20 px crops of 28 px images: a step costs about half, so
twice the epochs fit a budget; :func:`easyssl.defaults.default_train_crop_size`) and are embedded at their own size.
The model then meets objects at a scale and a resolution it never trained on (Touvron et al. 2019, "FixRes").
:class:`FinalSizeViews` makes the views of the last part of training at the embedding size instead, as progressive
resizing does (FFCV's ImageNet recipes end at the size they test at): the cheap views do most of the learning and
the last steps fit the features to the full-size images.

The trainer (:class:`easyssl.train.SelfSupervisedEmbedding`) tells a batch transform how far training is by calling
its ``set_progress(fraction)`` before each batch, when it has one.
"""

from __future__ import annotations

from torch import nn

from easyssl.transforms.batched import BatchMultiViewAugment, BatchViewAugment


class FinalSizeViews(nn.Module):
    """A batched view transform whose views of ``crop_size`` are made at ``final_size`` for the last
    ``final_fraction`` of training.

    Args:
        augment: The batched views (:class:`~easyssl.transforms.BatchMultiViewAugment` or one
            :class:`~easyssl.transforms.BatchViewAugment`).
        final_size: Side of the views at the end of training (the size images are embedded at).
        final_fraction: Fraction of training, at its end, made at ``final_size``: from 0 (never) to 1 (always).

    Views of another size than the first view's (the local crops of DINO's or SwAV's multi-crop) keep their size.
    The fraction is the trainer's progress (``TrainingProgress.fraction``): of the steps, or of the time budget when
    one is set, whose end keeps back a few seconds for the whitening pass.

    Example:
        >>> views = FinalSizeViews(batch_two_view_augment(input_size=20), final_size=28, final_fraction=0.2)
        >>> views.set_progress(0.9)   # the trainer does this before each batch
        >>> [v.shape[-1] for v in views(images)]
        [28, 28]
    """

    def __init__(self, augment: nn.Module, final_size: int, final_fraction: float) -> None:
        super().__init__()
        if not 0.0 <= float(final_fraction) <= 1.0:
            raise ValueError(f"final_fraction must be from 0 to 1 (the share of training, at its end, at the final size), got {final_fraction!r}")
        if int(final_size) < 1:
            raise ValueError(f"final_size must be a positive number of pixels, got {final_size!r}")
        views = list(augment.augments) if isinstance(augment, BatchMultiViewAugment) else [augment]
        if not views or not all(isinstance(view, BatchViewAugment) for view in views):
            raise TypeError(f"FinalSizeViews needs a BatchMultiViewAugment or BatchViewAugment, got {type(augment).__name__}")
        self.augment = augment
        self.crop_size = views[0].input_size
        self.views = [view for view in views if view.input_size == self.crop_size]
        self.final_size = int(final_size)
        self.final_fraction = float(final_fraction)

    def size_at(self, fraction: float) -> int:
        """The side of the scheduled views when ``fraction`` of training is done."""
        final = self.final_fraction > 0 and float(fraction) >= 1.0 - self.final_fraction
        return self.final_size if final else self.crop_size

    def set_progress(self, fraction: float) -> None:
        """Make the next views at the size for ``fraction`` of training done (called by the trainer)."""
        size = self.size_at(fraction)
        for view in self.views:
            view.input_size = size

    def forward(self, images):
        """The views of a ``(B, 3, H, W)`` batch, as ``augment`` makes them at the current size."""
        return self.augment(images)
