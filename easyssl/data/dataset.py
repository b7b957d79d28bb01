"""Datasets yielding ``(sample, target, filename)``: a folder of images, or any torchvision dataset."""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Sequence

from torch.utils.data import Dataset

from easyssl.data.images import ImageLimit, load_image, to_rgb
from easyssl.data.scan import has_video_files, list_image_folder


class VideoFolderError(ValueError):
    """:class:`SSLDataset` was given a folder of videos (and no image): open it with
    :func:`easyssl.data.open_dataset` or :class:`easyssl.data.VideoDataset`."""


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
        max_image_pixels: Largest image read, in pixels (``"auto"``: :data:`easyssl.data.images.MAX_IMAGE_PIXELS`,
            100 megapixels unless raised; None: no limit). Larger files are skipped and named, as unreadable ones are.

    Raises:
        FileNotFoundError, NotADirectoryError, ValueError: as :func:`~easyssl.data.scan.list_image_folder`.
        VideoFolderError: (a ValueError) the folder holds videos and no image: use
            :func:`~easyssl.data.open_dataset` (which picks images or videos) or
            :class:`~easyssl.data.VideoDataset`.

    Example:
        >>> dataset = SSLDataset("my/images/", transform=SimCLRTransform(input_size=64))
        >>> views, target, filename = dataset[0]
    """

    #: Largest image (pixels) read; larger files are skipped with a warning (see :data:`easyssl.data.images.MAX_IMAGE_PIXELS`).
    #: ``"auto"``: that module setting, read when each file is; an int, or None for no limit.
    max_image_pixels: ImageLimit = "auto"

    def __init__(self, input_dir: str | os.PathLike, transform: Callable | None = None, max_image_pixels: ImageLimit = "auto") -> None:
        self.input_dir = os.fspath(input_dir)
        self.transform = transform
        self.max_image_pixels = max_image_pixels
        self._dataset: Sequence | None = None
        try:
            self.filenames, self.targets, self.classes = list_image_folder(self.input_dir)
        except ValueError:
            if has_video_files(self.input_dir):
                raise VideoFolderError(
                    f"input_dir {self.input_dir!r} holds videos, not images: open it with "
                    "easyssl.data.open_dataset(input_dir, frame_step=...) (images or videos) or "
                    "easyssl.data.VideoDataset(input_dir, frame_step=...)"
                ) from None
            raise
        self._init_skip_record()

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
        self._init_skip_record()
        return self

    def __len__(self) -> int:
        return len(self.filenames)

    def load(self, index: int) -> tuple[Any, int]:
        """Return the untransformed RGB PIL image and target of item ``index``."""
        if self._dataset is None:
            return load_image(os.path.join(self.input_dir, self.filenames[index]), self.max_image_pixels), self.targets[index]
        image, target = self._dataset[index][:2]
        return _as_pil_rgb(image), int(target) if target is not None else 0

    def load_or_none(self, index: int) -> tuple[Any, int]:
        """Like :meth:`load`, but a file that cannot be read gives ``(None, target)`` instead of an error.

        The first time a file fails, a warning names it and the failure is recorded (in
        memory shared with DataLoader worker processes), so :meth:`skipped_files` lists it
        whichever process read it.
        """
        try:
            return self.load(index)
        except OSError as error:
            self._record_skip(index, error)
            return None, self._target(index)

    def _target(self, index: int) -> int:
        if self.targets is not None:
            return self.targets[index]
        return -1

    def __getitem__(self, index: int) -> tuple[Any, int, str]:
        """``(sample, target, filename)``; ``sample`` is None when the file cannot be read (see :meth:`load_or_none`)."""
        image, target = self.load_or_none(index)
        if image is None:
            return None, target, self.filenames[index]
        sample = self.transform(image) if self.transform is not None else image
        return sample, target, self.filenames[index]

    # ------------------------------------------------------------------ skipped files
    def _init_skip_record(self) -> None:
        # One byte per item in shared memory: DataLoader workers (forked or spawned) mark the
        # files they could not read, and the main process reads the marks. 1 MB per million files.
        import torch

        self._skipped = torch.zeros(max(1, len(self.filenames)), dtype=torch.uint8)
        try:
            self._skipped.share_memory_()
        except (RuntimeError, OSError):  # no shared memory available: a per-process record
            pass
        self._skipped_other: list[str] = []

    def _record_skip(self, index: int, error: BaseException) -> None:
        record = getattr(self, "_skipped", None)
        if record is None:
            self._init_skip_record()
            record = self._skipped
        if int(record[index]) == 0:
            record[index] = 1
            warnings.warn(f"easyssl: skipping {self.filenames[index]!r}, which cannot be read: {error}", stacklevel=3)

    def skipped_files(self) -> list[str]:
        """Names of the files found unreadable so far (in any process), in index order."""
        record = getattr(self, "_skipped", None)
        names = list(getattr(self, "_skipped_other", []))
        if record is not None:
            names += [self.filenames[int(i)] for i in record.nonzero().flatten().tolist() if int(i) < len(self.filenames)]
        return names

    def reset_skipped(self) -> None:
        """Forget the files recorded as unreadable (they are warned about again)."""
        record = getattr(self, "_skipped", None)
        if record is not None:
            record.zero_()

    def get_filenames(self) -> list[str]:
        """The filenames of all items, in index order (a copy of :attr:`filenames`).

        Kept for users coming from LightlySSL, whose ``LightlyDataset`` has the same method.
        """
        return list(self.filenames)

    def get_targets(self) -> list[int]:
        """The targets of all items without reading any image (wrapped datasets without ``targets`` read each item)."""
        if self.targets is None:
            self.targets = [int(self._dataset[i][1]) for i in range(len(self))]
        return list(self.targets)


def _as_pil_rgb(image: Any):
    """Turn a PIL image, HWC/CHW numpy array or CHW tensor into an RGB PIL image."""
    from PIL import Image

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
