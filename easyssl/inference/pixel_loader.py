"""Embedding a folder on a GPU with the images shipped as ``uint8`` pixels and normalised on the device.

The CPU path's loader workers decode each image with PIL, resize and crop it, and turn it into normalised
float32: 600 KB per 224 px image, written by the worker into shared memory, copied by the main process
into a batch and then to the GPU. The issue-11 H200 run (16 cores, 10,000 JPEG photos, ResNet-50 at 224 px)
embedded at 1,415 images/s that way, against 2,013 for LightlySSL's plain ``DataLoader``. Here the workers
stop at the resized, cropped ``uint8`` pixels (:meth:`~easyssl.transforms.EvalTransform.pixels`: a quarter of
the bytes, and no float arithmetic on the CPU), the batches are pinned, copied without blocking, and
finished on the device (:meth:`~easyssl.transforms.EvalTransform.finish`): the embeddings are exactly
those of the CPU path.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from easyssl.data.collate import MultiViewCollate


class PixelDataset(Dataset):
    """The items ``(pixels, target, filename)`` of an image-folder dataset: ``transform.pixels`` of each image
    (``uint8``), or None for an unreadable file (recorded by ``dataset`` as skipped, as in the CPU path).

    Args:
        dataset: An :class:`~easyssl.data.SSLDataset` (anything with ``load_or_none(index)`` and ``filenames``).
        transform: An :class:`~easyssl.transforms.EvalTransform`.
    """

    def __init__(self, dataset: Any, transform: Any) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, int, str]:
        image, target = self.dataset.load_or_none(index)
        return (None if image is None else self.transform.pixels(image)), target, self.dataset.filenames[index]


class PixelLoader:
    """An iterable of ``(images on device, targets, filenames)`` batches: ``uint8`` pixels from loader workers,
    pinned, copied to ``device`` without blocking and normalised there.

    Drop-in for the embedding loop's loader (like :class:`~easyssl.inference.device_decode.DeviceDecodedLoader`):
    ``len()`` is the number of batches; a batch whose files were all unreadable is ``(None, targets, [])``.

    Args:
        dataset: An :class:`~easyssl.data.SSLDataset` (or any dataset with ``load_or_none`` and ``filenames``).
        transform: The :class:`~easyssl.transforms.EvalTransform` to apply, split between workers and device.
        device: Where the batches go and are normalised (``cpu`` works too, without pinning).
        batch_size, num_workers, sampler: As for a ``DataLoader``.
    """

    def __init__(self, dataset: Any, transform: Any, device: torch.device | str, batch_size: int = 256, num_workers: int = 0,
                 sampler: Sampler | None = None) -> None:
        self.dataset = dataset
        self.transform = transform
        self.device = torch.device(device)
        self.loader = DataLoader(
            PixelDataset(dataset, transform), batch_size=batch_size, shuffle=False, sampler=sampler, num_workers=num_workers,
            collate_fn=MultiViewCollate(), pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if num_workers > 0 else None,  # batches are small (uint8): keep every worker busy
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor | None, torch.Tensor, list[str]]]:
        for images, targets, names in self.loader:
            if images is not None:
                images = self.transform.finish(images.to(self.device, non_blocking=True))
            yield images, targets, names


def uses_pixel_loader(dataset: Any, transform: Any, device: torch.device) -> bool:
    """Whether :meth:`~easyssl.inference.Embedder.loader` serves ``dataset`` through :class:`PixelLoader`: on a CUDA
    device, for a dataset that loads images itself (``load_or_none``) with an evaluation transform that splits
    (``pixels`` and ``finish``), and is that dataset's own transform."""
    return (device.type == "cuda" and hasattr(dataset, "load_or_none") and getattr(dataset, "transform", None) is transform
            and hasattr(transform, "pixels") and hasattr(transform, "finish"))
