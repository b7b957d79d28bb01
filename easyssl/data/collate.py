"""Collate functions that batch ``(sample, target, filename)`` items."""

from __future__ import annotations

from typing import Any, Sequence

import torch


def _stack(samples: Sequence[Any]) -> Any:
    first = samples[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(list(samples))
    if isinstance(first, (list, tuple)):
        # A list of views per item -> a list of batched views.
        return [_stack([s[i] for s in samples]) for i in range(len(first))]
    raise TypeError(
        f"cannot batch samples of type {type(first).__name__}: the dataset's transform must return a tensor "
        "or a list of tensors (for example SimCLRTransform() or EvalTransform())"
    )


class MultiViewCollate:
    """Batch items whose sample is a list of views into ``(views, targets, filenames)``.

    ``views`` is a list with one ``(B, C, H, W)`` tensor per view (views of different sizes,
    such as DINO's global and local crops, stay separate tensors); ``targets`` is a
    ``LongTensor`` of shape ``(B,)``; ``filenames`` a list of ``B`` strings. Items whose
    sample is a single tensor are stacked into one ``(B, C, H, W)`` tensor.

    Items whose sample is ``None`` (files :class:`~easyssl.data.SSLDataset` could not read)
    are dropped, so a batch may hold fewer items than the batch size; when every item of a
    batch was dropped the batch is ``(None, empty LongTensor, [])`` (see :func:`is_empty_batch`),
    which the trainer and the embedding loop skip.

    Example:
        >>> loader = DataLoader(SSLDataset("imgs/", transform=SimCLRTransform()), batch_size=64,
        ...                     collate_fn=MultiViewCollate())
        >>> views, targets, filenames = next(iter(loader))
    """

    def __call__(self, batch: Sequence[tuple[Any, int, str]]) -> tuple[Any, torch.Tensor, list[str]]:
        if len(batch) == 0:
            raise ValueError("cannot collate an empty batch")
        batch = [item for item in batch if item[0] is not None]
        if not batch:
            return None, torch.zeros(0, dtype=torch.long), []
        samples = [item[0] for item in batch]
        targets = torch.tensor([int(item[1]) for item in batch], dtype=torch.long)
        filenames = [item[2] for item in batch]
        return _stack(samples), targets, filenames


def is_empty_batch(batch: Any) -> bool:
    """True for the batch :class:`MultiViewCollate` returns when none of its files could be read."""
    return batch is None or (isinstance(batch, (list, tuple)) and len(batch) > 0 and batch[0] is None)
