"""Test-time views: an embedding averaged over the image, its mirror image and the image enlarged.

A model's embedding of one image is :meth:`~easyssl.nn.SSLModel.embed` of that image alone. Averaging it over a
few views the training made the model (nearly) invariant to, the mirror image and the image at a slightly
larger scale, cancels part of what the features still hold of the view rather than of the content: test-time
augmentation, as image classifiers do (Krizhevsky et al., 2012; the "ten-crop" of ResNet's evaluation). A view
is ``(scale, mirrored)``: the image resized by ``scale`` (sides rounded, antialiased when smaller) and flipped
left-right when ``mirrored``. ``(1.0, False)`` is the image as it is.

The views are part of the model (``SSLModel.embedding_views``, saved in a checkpoint's config as
``model.embedding_views``), because the whitening fitted at the end of training (:func:`easyssl.calibrate_embeddings`)
is fitted to the averaged features: every embedding of the model, in ``embed_images``, the duplicate search or the
command line's ``search``, averages the same views. An exported backbone (``export_backbone``) embeds one view.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import torch
from torch.nn import functional as F

#: One view: the image as it is.
IMAGE_ONLY: tuple[tuple[float, bool], ...] = ((1.0, False),)


def check_embedding_views(views: Any) -> tuple[tuple[float, bool], ...]:
    """``views`` as a tuple of ``(scale, mirrored)`` pairs, or ``ValueError`` naming what is wrong.

    Accepts a sequence of pairs (lists from a JSON config too): ``scale`` a number in [0.25, 4], ``mirrored`` a bool.
    """
    example = "[[1.0, false], [1.0, true]] (the image and its mirror image)"
    if isinstance(views, (str, bytes)) or not isinstance(views, Sequence) or len(views) == 0:
        raise ValueError(f"model embedding_views must be a non-empty list of [scale, mirrored] pairs like {example}, got {views!r}")
    checked = []
    for view in views:
        if isinstance(view, (str, bytes)) or not isinstance(view, Sequence) or len(view) != 2:
            raise ValueError(f"model embedding_views: each view is a [scale, mirrored] pair like [1.0, false], got {view!r} in {views!r}")
        scale, mirrored = view
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not 0.25 <= float(scale) <= 4.0:
            raise ValueError(f"model embedding_views: a view's scale must be a number from 0.25 to 4 (1.0: the image's size), got {scale!r}")
        if not isinstance(mirrored, bool):
            raise ValueError(f"model embedding_views: a view's mirrored flag must be true or false, got {mirrored!r}")
        checked.append((float(scale), mirrored))
    return tuple(checked)


def embedding_view(images: torch.Tensor, scale: float, mirrored: bool) -> torch.Tensor:
    """The view ``(scale, mirrored)`` of a batch ``(B, C, H, W)``: resized by ``scale`` (bilinear, antialiased), then
    flipped left-right when ``mirrored``. Resizing after normalisation equals resizing before it (the weights of a
    bilinear resize sum to one)."""
    if scale != 1.0:
        height, width = images.shape[-2:]
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        if size != (height, width):
            images = F.interpolate(images, size=size, mode="bilinear", antialias=scale < 1.0, align_corners=False)
    return images.flip(-1) if mirrored else images


def views_cost(views: Sequence[tuple[float, bool]]) -> float:
    """Cost of embedding ``views`` relative to one view of the image as it is (the pixels they hold)."""
    return float(sum(scale * scale for scale, _ in views))
