"""LightlySSL's dataset and collate names, so that its tutorial runs with ``import easyssl.data as data``.

LightlySSL (before its transforms existed) made the views of an image in the *collate
function* of the loader: ``DataLoader(LightlyDataset(input_dir=...), collate_fn=ImageCollateFunction(...))``
yields ``((views0, views1), labels, filenames)``. easyssl makes the views in the dataset's
transform instead (``SSLDataset(folder, transform=SimCLRTransform())`` with
:class:`~easyssl.data.MultiViewCollate`), but both give the same batches, which
:class:`easyssl.embedding.SelfSupervisedEmbedding` trains on.

This module holds the names that need no view transform: :class:`LightlyDataset`,
:class:`BaseCollateFunction` (any per-image transform, applied twice) and
:class:`MultiViewCollateFunction` (a list of transforms). The named presets
(``ImageCollateFunction``, ``SimCLRCollateFunction``, ``MoCoCollateFunction``) are built from
easyssl's view transforms, a layer above this one, so they live in
:mod:`easyssl.transforms.collate_compat`; ``easyssl.data`` provides them by name (see its
module ``__getattr__``).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import torch

from easyssl.data.dataset import SSLDataset

__all__ = ["BaseCollateFunction", "LightlyDataset", "MultiViewCollateFunction"]


class LightlyDataset(SSLDataset):
    """LightlySSL's name for a folder of images: an :class:`~easyssl.data.SSLDataset` with LightlySSL's arguments.

    Items are ``(image, target, filename)``: the PIL image (or ``transform(image)``), the class
    index of its sub-folder, its path relative to ``input_dir``. ``LightlyDataset.from_torch_dataset(ds)``
    wraps a torchvision dataset, ``get_filenames()`` lists the files, as in LightlySSL.

    Args:
        input_dir: Folder of images (flat, or one level of class sub-folders).
        transform: Callable applied to each PIL image (None: items hold the PIL image, for a
            collate function that makes the views, such as ``ImageCollateFunction``).
        filenames: Only these files of ``input_dir`` (paths relative to it), as LightlySSL's argument.

    Example:
        >>> dataset = LightlyDataset(input_dir="my/images/")
        >>> loader = DataLoader(dataset, batch_size=128, shuffle=True, collate_fn=ImageCollateFunction(input_size=32))
    """

    def __init__(self, input_dir: str | os.PathLike, transform: Callable | None = None, filenames: Sequence[str] | None = None) -> None:
        super().__init__(input_dir, transform=transform)
        if filenames is not None:
            wanted = {os.path.normpath(name) for name in filenames}
            keep = [i for i, name in enumerate(self.filenames) if os.path.normpath(name) in wanted]
            missing = sorted(wanted - {os.path.normpath(self.filenames[i]) for i in keep})
            if missing:
                raise FileNotFoundError(f"filenames not found in {self.input_dir!r}: {', '.join(missing[:5])}"
                                        + (f" ... ({len(missing)} in all)" if len(missing) > 5 else ""))
            self.filenames = [self.filenames[i] for i in keep]
            self.targets = [self.targets[i] for i in keep]
            self._init_skip_record()


class MultiViewCollateFunction:
    """Collate ``(image, target, filename)`` items into ``(views, targets, filenames)``, one view per transform.

    ``views`` is a list with one ``(B, C, H, W)`` tensor per transform of ``transforms``. Items
    whose image is None (a file that could not be read) are dropped, as
    :class:`~easyssl.data.MultiViewCollate` does.

    Attributes:
        input_size, normalize: The views' size and normalisation when the transforms say them
            (easyssl's do): the trainer saves them in checkpoints, for the evaluation transform.
    """

    def __init__(self, transforms: Sequence[Callable]) -> None:
        if not transforms or any(not callable(t) for t in transforms):
            raise TypeError("transforms must be a non-empty list of callables, one per view")
        self.transforms = list(transforms)
        first = self.transforms[0]
        self.input_size: int | None = getattr(first, "input_size", None)
        self.normalize: dict | None = getattr(first, "normalize", None)

    def __call__(self, batch: Sequence[tuple[Any, int, str]]) -> tuple[list[torch.Tensor], torch.Tensor, list[str]]:
        items = [item for item in batch if item[0] is not None]
        if not items:
            return None, torch.zeros(0, dtype=torch.long), []  # type: ignore[return-value]  # see is_empty_batch
        for image, _, name in items[:1]:
            if isinstance(image, (list, tuple)):
                raise TypeError(
                    f"{type(self).__name__} got a list of views for {name!r}: the dataset already has a view transform. "
                    "Give the dataset no transform (LightlyDataset(input_dir)), or keep its transform and pass "
                    "collate_fn=easyssl.data.MultiViewCollate()"
                )
        views = [torch.stack([transform(image) for image, _, _ in items]) for transform in self.transforms]
        targets = torch.tensor([int(target) for _, target, _ in items], dtype=torch.long)
        return views, targets, [name for _, _, name in items]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transforms})"


class BaseCollateFunction(MultiViewCollateFunction):
    """LightlySSL's collate of two views: ``transform`` applied twice to each image -> ``((x0, x1), targets, filenames)``.

    Example:
        >>> collate_fn = BaseCollateFunction(torchvision.transforms.Compose([...]))
        >>> (x0, x1), targets, filenames = collate_fn([(pil_image, 0, "a.png")])
    """

    def __init__(self, transform: Callable) -> None:
        super().__init__([transform, transform])
        self.transform = transform

    def __call__(self, batch: Sequence[tuple[Any, int, str]]) -> tuple[Any, torch.Tensor, list[str]]:
        views, targets, filenames = super().__call__(batch)
        return (tuple(views) if views is not None else None), targets, filenames
