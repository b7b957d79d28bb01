"""JPEG files served as their bytes, to be decoded in batches on the GPU (:mod:`easyssl.inference.device_decode`).

Decoding dominates embedding on a GPU: a ResNet-50 at 224 px embeds thousands of images a second, a CPU
core decodes and resizes a few hundred photos. Here the loader's workers only read JPEG files (and check
their header against the pixel limit); the GPU decodes them (nvJPEG through ``torchvision.io.decode_jpeg``).
Any other file, and any JPEG the header check rejects, takes the usual path in the worker: decoded with
PIL and passed through the evaluation transform, so a folder of mixed formats still embeds every image.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from easyssl.data.images import max_image_pixels

#: File extensions served undecoded (compared case-insensitively).
JPEG_EXTENSIONS = (".jpg", ".jpeg")


def is_encoded(sample: Any) -> bool:
    """True for the samples :class:`EncodedImageDataset` leaves undecoded: a file's bytes as a 1-d uint8 tensor."""
    return isinstance(sample, torch.Tensor) and sample.ndim == 1 and sample.dtype == torch.uint8


def read_jpeg_bytes(path: str, limit: int | None) -> torch.Tensor | None:
    """The bytes of the JPEG file ``path`` as a 1-d uint8 tensor, or None when it should go through PIL instead
    (not an RGB/grey JPEG, rotated by an EXIF orientation, larger than ``limit`` pixels, or a header PIL cannot read)."""
    try:
        with Image.open(path) as image:  # reads the header only
            if image.format != "JPEG" or image.mode not in ("RGB", "L"):
                return None  # CMYK and other modes: PIL converts them as the CPU path does
            if image.getexif().get(0x0112, 1) not in (0, 1):
                return None  # rotated by its EXIF orientation: nvJPEG ignores it, PIL's path applies it
            if limit is not None and image.size[0] * image.size[1] > limit:
                return None  # PIL's path raises the pixel-limit error and the file is skipped with a warning
        with open(path, "rb") as handle:
            data = handle.read()
    except Exception:  # unreadable: the PIL path reports it
        return None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else None


class EncodedImageDataset(Dataset):
    """The items ``(sample, target, filename)`` of an image-folder dataset, with JPEGs left undecoded.

    ``sample`` is the file's bytes (see :func:`is_encoded`) for a JPEG file, else the image decoded by
    ``dataset.load_or_none`` and passed through ``transform`` (the CPU fallback), or None for an
    unreadable file (recorded by ``dataset`` as skipped, as in the CPU path).

    Args:
        dataset: An :class:`~easyssl.data.SSLDataset` over a folder (``input_dir`` and ``filenames``).
        transform: The per-image evaluation transform of the fallback path.
    """

    def __init__(self, dataset: Any, transform: Callable) -> None:
        self.dataset = dataset
        self.transform = transform
        self.limit = max_image_pixels(getattr(dataset, "max_image_pixels", "auto"))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int, str]:
        name = self.dataset.filenames[index]
        if getattr(self.dataset, "input_dir", "") and name.lower().endswith(JPEG_EXTENSIONS):
            data = read_jpeg_bytes(os.path.join(self.dataset.input_dir, name), self.limit)
            if data is not None:
                targets = getattr(self.dataset, "targets", None)
                return data, (int(targets[index]) if targets is not None else -1), name
        image, target = self.dataset.load_or_none(index)
        return (None if image is None else self.transform(image)), target, name


class EncodedCollate:
    """Batch ``EncodedImageDataset`` items into ``(samples, targets, filenames)`` with ``samples`` a list (bytes of
    different lengths and decoded tensors cannot be stacked); items whose sample is None are dropped."""

    def __call__(self, batch: Sequence[tuple[Any, int, str]]) -> tuple[list[Any], torch.Tensor, list[str]]:
        kept = [item for item in batch if item[0] is not None]
        return [item[0] for item in kept], torch.tensor([int(item[1]) for item in kept], dtype=torch.long), [item[2] for item in kept]
