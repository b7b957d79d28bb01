"""The embedding loop: a model's (whitened) features for every batch of a loader, in eval mode and without gradients."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from easyssl.data.collate import is_empty_batch
from easyssl.runtime.device import autocast
from easyssl.runtime.progress import progress_bar as make_bar


def iter_embeddings(
    model: nn.Module,
    dataloader: DataLoader,
    device: torch.device,
    precision: str = "32",
    channels_last: bool = False,
    progress_bar: bool = True,
    whiten: bool = True,
) -> Iterator[tuple[np.ndarray, list[int], list[str]]]:
    """Yield ``(embeddings, labels, filenames)`` batch by batch (float32 ``(B, D)``), holding one batch at a time.

    Embeddings are ``model.embed_views`` features (averaged over the model's test-time views; ``model.embed`` for a
    model without them) whitened with the model's embedding statistics
    (:meth:`~easyssl.nn.SSLModel.whiten`); ``whiten=False`` gives the raw features. The
    images go to ``device`` in the channels-last memory format when ``channels_last`` is set
    (the model's weights are not converted), under the autocast of ``precision``.

    Batches whose files were all unreadable are skipped. The model is in eval mode while
    the generator runs and back in its previous mode when it finishes.
    """
    was_training = model.training
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    embed = getattr(model, "embed_views", model.embed)  # averaged over the model's test-time views (SSLModel)
    try:
        for batch in make_bar(dataloader, desc="embedding", enabled=progress_bar):  # no \r bars in logs, no widget without ipywidgets
            if is_empty_batch(batch):
                continue
            images, targets, names = batch
            with torch.inference_mode():
                images = images.to(device, non_blocking=True, memory_format=fmt)
                with autocast(device, precision):
                    features = embed(images)
                if whiten and hasattr(model, "whiten"):
                    features = model.whiten(features)
                array = features.float().cpu().numpy()
            yield array, [int(t) for t in targets], list(names)
    finally:
        model.train(was_training)


def embed_with(
    model: nn.Module,
    dataloader: DataLoader,
    device: torch.device,
    precision: str = "32",
    channels_last: bool = False,
    progress_bar: bool = True,
    whiten: bool = True,
) -> tuple[np.ndarray, list[int], list[str]]:
    """Embed every batch of ``dataloader`` (see :func:`iter_embeddings`) into one ``(N, D)`` float32 array,
    with the ``N`` labels and filenames; ``(0, 0)`` when there is nothing to embed."""
    chunks: list[np.ndarray] = []
    labels: list[int] = []
    filenames: list[str] = []
    for array, batch_labels, names in iter_embeddings(model, dataloader, device, precision, channels_last, progress_bar, whiten):
        chunks.append(array)
        labels.extend(batch_labels)
        filenames.extend(names)
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32), labels, filenames
    return np.concatenate(chunks).astype(np.float32, copy=False), labels, filenames
