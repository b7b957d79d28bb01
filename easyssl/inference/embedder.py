"""``Embedder``: a trained model with everything needed to embed images with it."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import easyssl.defaults as defaults
from easyssl.config import eval_transform
from easyssl.data.collate import MultiViewCollate
from easyssl.inference.device_decode import DeviceDecodedLoader, use_device_decode
from easyssl.inference.loop import embed_with, iter_embeddings
from easyssl.inference.model import model_from_state
from easyssl.inference.pixel_loader import PixelLoader, uses_pixel_loader
from easyssl.runtime import distributed
from easyssl.runtime.checkpoint import load_checkpoint
from easyssl.runtime.device import resolve_device, resolve_precision
from easyssl.runtime.spawn import safe_num_workers


class Embedder:
    """A model ready to embed images: the model on its device, the precision, the memory format of the
    inputs, the evaluation transform and the loader settings.

    Args:
        model: A model with ``embed(images)`` (and ``whiten(features)`` for whitened embeddings).
            It is moved to ``device``; its weights are otherwise left as they are.
        transform: The per-image evaluation transform (for :meth:`from_checkpoint`: the
            training config's, see :func:`easyssl.config.eval_transform`).
        device: ``"auto"`` (CUDA, else an Apple GPU, else the CPU), ``"cpu"``, ``"cuda"``...
        precision: ``"auto"``, ``"32"``, ``"bf16"``... (see :func:`easyssl.runtime.device.resolve_precision`).
        channels_last: Feed images in the channels-last memory format (default: on for CUDA and
            CPU, where convolutions are faster in it).
        batch_size: Images per forward pass (default :func:`easyssl.defaults.default_embed_batch_size`).
        num_workers: Data-loading processes (default :func:`easyssl.defaults.default_embed_workers`).

    Example:
        >>> embedder = Embedder.from_checkpoint("runs/x/last.ckpt")
        >>> embeddings, labels, filenames = embedder.embed(embedder.loader(open_dataset("imgs/", transform=embedder.transform)))
    """

    def __init__(
        self,
        model: nn.Module,
        transform: Callable | None = None,
        *,
        device: str | torch.device | None = "auto",
        precision: str = "auto",
        channels_last: bool | None = None,
        batch_size: int | None = None,
        num_workers: int | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.transform = transform
        self.precision = resolve_precision(precision, self.device)
        self.channels_last = self.device.type in ("cuda", "cpu") if channels_last is None else bool(channels_last)
        self.batch_size = int(batch_size or defaults.default_embed_batch_size(self.device))
        self.num_workers = safe_num_workers(defaults.default_embed_workers(self.device) if num_workers is None else int(num_workers))
        #: ``"auto"``: JPEG folders are decoded on a CUDA device with few cores (:mod:`~easyssl.inference.device_decode`); ``"pil"``: never.
        self.decode = "auto"
        #: The training config of a model loaded by :meth:`from_checkpoint` (None otherwise).
        self.config: dict[str, Any] | None = None
        #: The optimisation steps that model was trained for (None otherwise): recorded in ``.npz`` embeddings files.
        self.training_steps: int | None = None

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | os.PathLike,
        *,
        device: str | torch.device | None = "auto",
        precision: str = "auto",
        batch_size: int | None = None,
        num_workers: int | None = None,
        backbone: nn.Module | str | None = None,
    ) -> "Embedder":
        """The model of an easyssl checkpoint (see :func:`~easyssl.inference.load_model`, also for ``backbone``) with its
        evaluation transform; the file is read once."""
        torch_device = resolve_device(device)
        state = load_checkpoint(checkpoint)
        model, config = model_from_state(state, checkpoint, torch_device, backbone=backbone)
        channels_last = torch_device.type in ("cuda", "cpu")
        if channels_last:  # a model of our own: its weights may take the faster layout too
            model.to(memory_format=torch.channels_last)
        embedder = cls(model, eval_transform(config), device=torch_device, precision=precision,
                       channels_last=channels_last, batch_size=batch_size, num_workers=num_workers)
        embedder.config = config
        embedder.training_steps = state.get("step") if isinstance(state.get("step"), int) else None
        return embedder

    def loader(self, dataset: Dataset) -> DataLoader:
        """A loader over ``dataset`` (items ``(image, target, filename)``) in order; under ``torch.distributed``
        over this process's contiguous shard, so that the ranks' results concatenated are in order."""
        sampler = distributed.shard_range(len(dataset)) if distributed.is_distributed() else None  # type: ignore[arg-type]
        if use_device_decode(dataset, self.device, self.decode):  # JPEGs decoded on the GPU (see device_decode)
            return DeviceDecodedLoader(dataset, self.transform, self.device, self.batch_size, self.num_workers, sampler)  # type: ignore[return-value]
        if uses_pixel_loader(dataset, self.transform, self.device):  # uint8 from the workers, normalised on the GPU
            return PixelLoader(dataset, self.transform, self.device, self.batch_size, self.num_workers, sampler)  # type: ignore[return-value]
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=False, sampler=sampler, num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda", collate_fn=MultiViewCollate(),
        )

    def iter_embeddings(self, loader: DataLoader, progress_bar: bool = True, whiten: bool = True) -> Iterator[tuple[np.ndarray, list[int], list[str]]]:
        """``(embeddings, labels, filenames)`` batch by batch (see :func:`~easyssl.inference.iter_embeddings`)."""
        return iter_embeddings(self.model, loader, self.device, self.precision, self.channels_last, progress_bar, whiten)

    def embed(self, loader: DataLoader, progress_bar: bool = True, whiten: bool = True) -> tuple[np.ndarray, list[int], list[str]]:
        """Every image of ``loader`` embedded: ``(embeddings (N, D) float32, labels, filenames)``."""
        return embed_with(self.model, loader, self.device, self.precision, self.channels_last, progress_bar, whiten)
