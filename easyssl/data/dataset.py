"""Datasets yielding ``(sample, target, filename)``: a folder of images, or any torchvision dataset."""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Sequence

from torch.utils.data import Dataset

from easyssl.data.images import IMAGE_EXTENSIONS, is_image_file, load_image


def _scan_files(folder: str, is_wanted: Callable[[str], bool]) -> list[str]:
    """All wanted files under ``folder`` (recursively), as sorted paths relative to it."""
    found: list[str] = []
    stack = [""]
    while stack:
        relative = stack.pop()
        with os.scandir(os.path.join(folder, relative) if relative else folder) as entries:
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_dir(follow_symlinks=True):
                    if not entry.name.startswith("."):
                        stack.append(name)
                elif is_wanted(entry.name):
                    found.append(name)
    found.sort()
    return found


def list_image_folder(
    input_dir: str | os.PathLike, is_wanted: Callable[[str], bool] = is_image_file, kind: str = "image"
) -> tuple[list[str], list[int], list[str]]:
    """List a folder of files as ``(filenames, labels, class_names)`` without opening any.

    A flat folder gives label 0 to every file. With sub-folders, each top-level sub-folder
    is a class (labels follow the sorted folder names; files in deeper folders belong to
    their top-level folder) and files lying directly in ``input_dir`` get label -1.
    Filenames are relative to ``input_dir`` with ``/`` separators, sorted.

    Raises:
        FileNotFoundError: ``input_dir`` does not exist.
        NotADirectoryError: ``input_dir`` is a file.
        ValueError: the folder holds no file of a supported type.
    """
    folder = os.fspath(input_dir)
    if not os.path.exists(folder):
        raise FileNotFoundError(f"input_dir {folder!r} does not exist: pass the folder that holds your {kind}s")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"input_dir {folder!r} is a file, not a folder: pass the folder that holds your {kind}s")
    files = _scan_files(folder, is_wanted)
    if not files:
        raise ValueError(
            f"input_dir {folder!r} contains no {kind} files (looked for "
            f"{', '.join(IMAGE_EXTENSIONS) if kind == 'image' else 'supported extensions'}, in any case, "
            "in the folder and its sub-folders)"
        )
    class_names = sorted({f.split("/", 1)[0] for f in files if "/" in f})
    if not class_names:
        return files, [0] * len(files), []
    index = {name: i for i, name in enumerate(class_names)}
    labels = [index[f.split("/", 1)[0]] if "/" in f else -1 for f in files]
    return files, labels, class_names


class SSLDataset(Dataset):
    """A folder of images (or a wrapped torchvision dataset) whose items are ``(sample, target, filename)``.

    ``sample`` is the RGB PIL image passed through ``transform`` (e.g. a view transform
    returning a list of augmented views), ``target`` the class index from the sub-folder
    (0 for a flat folder, -1 for files outside class folders), ``filename`` the path
    relative to ``input_dir`` (``"class_a/img1.jpg"``). Files are listed once, sorted, and
    are only opened when an item is read. Labels are never used for training.

    Args:
        input_dir: Folder of images: flat, or one level of class sub-folders. Extensions
            (any case): jpg, jpeg, png, bmp, ppm, pgm, tif, tiff, webp.
        transform: Callable applied to each PIL image.

    Example:
        >>> dataset = SSLDataset("my/images/", transform=SimCLRTransform(input_size=64))
        >>> views, target, filename = dataset[0]
    """

    def __init__(self, input_dir: str | os.PathLike, transform: Callable | None = None) -> None:
        self.input_dir = os.fspath(input_dir)
        self.transform = transform
        self.filenames, self.targets, self.classes = list_image_folder(self.input_dir)
        self._dataset: Sequence | None = None

    @classmethod
    def from_torch_dataset(cls, dataset: Sequence, transform: Callable | None = None) -> "SSLDataset":
        """Wrap any map-style dataset of ``(image, target)`` pairs (e.g. ``torchvision.datasets.CIFAR10``).

        Images may be PIL images, numpy arrays or tensors; filenames are the item index
        (``"00042"``), zero-padded so that they sort in order.
        """
        self = cls.__new__(cls)
        self.input_dir = ""
        self.transform = transform
        self._dataset = dataset
        width = max(1, len(str(len(dataset) - 1)))
        self.filenames = [str(i).zfill(width) for i in range(len(dataset))]
        targets = getattr(dataset, "targets", None)
        self.targets = [int(t) for t in targets] if targets is not None and len(targets) == len(dataset) else None
        self.classes = list(getattr(dataset, "classes", []) or [])
        return self

    def __len__(self) -> int:
        return len(self.filenames)

    def load(self, index: int) -> tuple[Any, int]:
        """Return the untransformed RGB PIL image and target of item ``index``."""
        if self._dataset is None:
            return load_image(os.path.join(self.input_dir, self.filenames[index])), self.targets[index]
        image, target = self._dataset[index][:2]
        return _as_pil_rgb(image), int(target) if target is not None else 0

    def __getitem__(self, index: int) -> tuple[Any, int, str]:
        image, target = self.load(index)
        sample = self.transform(image) if self.transform is not None else image
        return sample, target, self.filenames[index]

    def get_filenames(self) -> list[str]:
        """The filenames of all items, in index order."""
        return list(self.filenames)

    def get_targets(self) -> list[int]:
        """The targets of all items without reading any image (wrapped datasets without ``targets`` read each item)."""
        if self.targets is None:
            self.targets = [int(self._dataset[i][1]) for i in range(len(self))]
        return list(self.targets)


def _as_pil_rgb(image: Any):
    """Turn a PIL image, HWC/CHW numpy array or CHW tensor into an RGB PIL image."""
    from PIL import Image

    from easyssl.data.images import to_rgb

    if isinstance(image, Image.Image):
        return to_rgb(image)
    import numpy as np
    import torch

    if isinstance(image, torch.Tensor):
        array = image.detach().cpu()
        if array.is_floating_point():
            array = (array.clamp(0, 1) * 255).round()
        array = array.to(torch.uint8).numpy()
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
    else:
        array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return to_rgb(Image.fromarray(array))


def warn_skipped(filenames: Sequence[str], what: str = "read") -> None:
    """Warn once about files that could not be read, naming each (at most 20 listed)."""
    if not filenames:
        return
    shown = ", ".join(filenames[:20]) + (f", ... ({len(filenames) - 20} more)" if len(filenames) > 20 else "")
    warnings.warn(f"skipped {len(filenames)} file(s) that could not be {what}: {shown}", stacklevel=2)
