"""Embeddings of a few crops of every image, besides the whole image: what finding cropped copies needs.

A copy cut from an image (a crop of, say, 90 % of each side, saved at its own size) embeds close to,
but not at, the original: the network sees the same content shifted and enlarged. Embedding
the original's own crops as well gives, for one of them, nearly the copy's view of the content
(:func:`easyssl.tools.find_duplicates` with ``views=``). The crops are cut from the batch of
evaluation images already on the device, so no file is read twice.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from easyssl.data.collate import is_empty_batch
from easyssl.runtime.device import autocast
from easyssl.runtime.progress import progress_bar as make_bar

#: The crops embedded besides each image: ``(scale, x, y)`` with ``scale`` the side kept and ``x, y`` the
#: position (0 = left/top, 1 = right/bottom) of the crop in the room left. Crops of 87 % and of 93 % of
#: each side, each on a 3 x 3 grid: a copy that keeps 85-95 % of each side, anywhere, is within a few
#: per cent of one of them. Measured on the tuning split of ``examples/benchmarks/near_duplicates.py``
#: (copies keeping 85-95 %, model of 90 s): cropped copies found, of 25: 23 with these 18 crops, 19 with
#: nine crops of 90 %, 20 with nine of 92 %, 21 with nine of 90 % and four of 95 %, about 5 without crops.
CROP_VIEWS: tuple[tuple[float, float, float], ...] = tuple(
    (scale, x, y) for scale in (0.87, 0.93) for y in (0.0, 0.5, 1.0) for x in (0.0, 0.5, 1.0)
)
#: The views :func:`easyssl.tools.find_duplicate_images` embeds: :data:`CROP_VIEWS` and the whole image at
#: 60 % resolution, for copies saved smaller and enlarged again (thumbnails, re-encodes), which keep the
#: content but lose the detail. Measured on the tuning split with three 90-180 s models: resized copies
#: found went from 20-22 of 25 to 25 of 25 and recall from 0.87-0.91 to 0.91-0.94 at equal precision
#: (the benchmark resizes to 75 %: a view at 75 % did the same, one at 50 % and 75 % no better).
DUPLICATE_VIEWS: tuple[tuple[float, ...], ...] = CROP_VIEWS + ((1.0, 0.5, 0.5, 0.6),)


def crop_views(images: torch.Tensor, views: Sequence[tuple[float, ...]] = CROP_VIEWS) -> torch.Tensor:
    """The ``views`` of a batch ``(B, C, H, W)``, each resized back to ``H x W``: ``(len(views) * B, C, H, W)``,
    view by view (the first ``B`` rows are the first view of every image).

    A view is ``(scale, x, y)``, a crop (see :data:`CROP_VIEWS`), or ``(scale, x, y, resolution)``: the crop
    also passed through ``resolution`` times its size (antialiased) on the way, the detail a copy saved
    smaller and enlarged again has lost (see :data:`DUPLICATE_VIEWS`).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be a batch (B, C, H, W), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    out = []
    for view in views:
        scale, x, y, resolution = (*view, 1.0) if len(view) == 3 else view
        if not (0.0 < scale <= 1.0 and 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 and 0.0 < resolution <= 1.0):
            raise ValueError(f"a view is (scale in (0, 1], x in [0, 1], y in [0, 1][, resolution in (0, 1]]), got {tuple(view)}")
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        top, left = round((height - h) * y), round((width - w) * x)
        crop = images[:, :, top : top + h, left : left + w].float()
        if resolution < 1.0:
            small = (max(1, round(height * resolution)), max(1, round(width * resolution)))
            crop = F.interpolate(crop, size=small, mode="bilinear", align_corners=False, antialias=True)
        out.append(F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False, antialias=False).to(images.dtype))
    return torch.cat(out)


def embed_with_views(
    model: nn.Module,
    dataloader: DataLoader,
    device: torch.device,
    views: Sequence[tuple[float, ...]] = DUPLICATE_VIEWS,
    precision: str = "32",
    channels_last: bool = False,
    progress_bar: bool = True,
    whiten: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[int], list[str]]:
    """Embed every image of ``dataloader`` and its ``views`` (see :func:`crop_views`).

    Returns:
        ``(embeddings (N, D), view_embeddings (V, N, D), labels, filenames)``, float32, whitened as
        :func:`~easyssl.inference.iter_embeddings` whitens (``whiten=False``: raw features).
    """
    was_training = model.training
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    embed = getattr(model, "embed_views", model.embed)  # averaged over the model's test-time views (SSLModel)
    whole: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    labels: list[int] = []
    filenames: list[str] = []
    try:
        for batch in make_bar(dataloader, desc="embedding (with crops)", enabled=progress_bar):
            if is_empty_batch(batch):
                continue
            images, targets, names = batch
            with torch.inference_mode():
                images = images.to(device, non_blocking=True)
                outputs = []
                for view in itertools.chain([images], (crop_views(images, [v]) for v in views)):  # one view in memory at a time
                    with autocast(device, precision):
                        features = embed(view.contiguous(memory_format=fmt))
                    if whiten and hasattr(model, "whiten"):
                        features = model.whiten(features)
                    outputs.append(features.float().cpu().numpy())
                array = np.stack(outputs)
            whole.append(array[0])
            parts.append(array[1:])
            labels.extend(int(t) for t in targets)
            filenames.extend(names)
    finally:
        model.train(was_training)
    if not whole:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((len(views), 0, 0), dtype=np.float32), labels, filenames
    return np.concatenate(whole), np.concatenate(parts, axis=1), labels, filenames
