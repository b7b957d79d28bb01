"""A bounded cache of decoded images in shared memory, so each file is decoded once per run."""

from __future__ import annotations

import os
from typing import Any

import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

#: Default memory budget of the cache: a quarter of the machine's RAM, at most 16 GiB.
def default_cache_bytes() -> int:
    """A quarter of physical memory, capped at 16 GiB (1 GiB when the size is unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 30
    return int(min(total // 4, 16 << 30))


def fit_square(image: Image.Image, size: int) -> torch.Tensor:
    """Centre-crop ``image`` to a square and resize it to ``size`` pixels; returns a ``(3, size, size)`` uint8 tensor."""
    if image.size != (size, size):
        image = ImageOps.fit(image, (size, size), method=Image.BILINEAR, centering=(0.5, 0.5))
    array = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return array.view(size, size, 3).permute(2, 0, 1).contiguous()


class CachedImageDataset(Dataset):
    """Serve a dataset's images as fixed-size ``uint8`` tensors, decoding each file only once.

    Items are ``(image, target, filename)`` with ``image`` a ``(3, size, size)`` uint8 tensor:
    the image centre-cropped to a square and resized to ``size``. Decoded images are kept
    in one shared-memory tensor, so DataLoader worker processes fill and read the same
    cache and nothing is duplicated per worker. Memory is bounded: the first
    ``max_bytes // (3 * size * size)`` items are cached, the rest decoded on every read.
    Batches of these items go through a batched augmentation on the training device
    (:mod:`easyssl.transforms.batched`), which makes the random views.

    Args:
        dataset: Any dataset with a ``load(index) -> (PIL image, target)`` method and
            ``filenames`` (an :class:`~easyssl.data.SSLDataset`).
        size: Side of the stored square images (a little more than the training input size).
        max_bytes: Memory budget of the cache (default: :func:`default_cache_bytes`).
    """

    def __init__(self, dataset: Any, size: int, max_bytes: int | None = None) -> None:
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        self.dataset = dataset
        self.size = int(size)
        budget = default_cache_bytes() if max_bytes is None else int(max_bytes)
        per_image = 3 * self.size * self.size
        self.capacity = max(0, min(len(dataset), budget // per_image))
        self.storage = torch.empty((self.capacity, 3, self.size, self.size), dtype=torch.uint8).share_memory_()
        self.filled = torch.zeros(self.capacity, dtype=torch.bool).share_memory_()
        self.targets = getattr(dataset, "targets", None)

    @property
    def filenames(self) -> list[str]:
        """The wrapped dataset's filenames (the cache keeps its order)."""
        return self.dataset.filenames

    def __len__(self) -> int:
        return len(self.dataset)

    def cached(self, index: int) -> torch.Tensor | None:
        """The cached ``(3, size, size)`` uint8 image of item ``index``, or None when the cache does not hold it yet."""
        if 0 <= index < self.capacity and bool(self.filled[index]):
            return self.storage[index]
        return None

    def _load(self, index: int) -> tuple[torch.Tensor | None, int]:
        loader = getattr(self.dataset, "load_or_none", None) or self.dataset.load
        image, target = loader(index)
        if image is None:  # unreadable file, already reported by the dataset
            return None, target
        return fit_square(image, self.size), target

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, int, str]:
        filename = self.dataset.filenames[index]
        if index < self.capacity and bool(self.filled[index]):
            target = self.targets[index] if self.targets is not None else self.dataset.load(index)[1]
            return self.storage[index], target, filename
        tensor, target = self._load(index)
        if tensor is not None and index < self.capacity:
            self.storage[index].copy_(tensor)
            self.filled[index] = True
        return tensor, target, filename
