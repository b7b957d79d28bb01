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
        from easyssl.data.video import VIDEO_EXTENSIONS

        extensions = {"image": IMAGE_EXTENSIONS, "video": VIDEO_EXTENSIONS}.get(kind)
        raise ValueError(
            f"input_dir {folder!r} contains no {kind} files (looked for "
            f"{', '.join(extensions) if extensions else 'supported extensions'}, in any case, "
            "in the folder and its sub-folders"
            + (f"; folders of videos ({', '.join(VIDEO_EXTENSIONS)}) are read too" if kind == "image" else "")
            + ")"
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
        self._dataset: Sequence | None = None
        try:
            self.filenames, self.targets, self.classes = list_image_folder(self.input_dir)
        except ValueError:
            # No image: a folder of videos is read frame by frame (VideoDataset, needs PyAV).
            from easyssl.data.video import VideoDataset, has_video_files

            if type(self) is not SSLDataset or not has_video_files(self.input_dir):
                raise
            self.__class__ = VideoDataset
            VideoDataset.__init__(self, input_dir, transform)  # type: ignore[arg-type]
            return
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
            return load_image(os.path.join(self.input_dir, self.filenames[index])), self.targets[index]
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



def open_dataset(input_dir: str | os.PathLike, transform: Callable | None = None, frame_step: int = 1) -> SSLDataset:
    """The dataset of a folder: :class:`SSLDataset` for images, or a
    :class:`~easyssl.data.video.VideoDataset` (frame by frame, every ``frame_step``-th frame;
    needs PyAV) for a folder that holds videos and no image. ``SSLDataset(input_dir)`` does
    the same with ``frame_step=1``.

    Raises:
        FileNotFoundError, NotADirectoryError, ValueError: as :func:`list_image_folder`, naming the path.
        ImportError: the folder holds videos and PyAV is not installed (the message says what to install).
    """
    folder = os.fspath(input_dir)
    try:
        listing = list_image_folder(folder)
    except ValueError:
        from easyssl.data.video import VideoDataset, has_video_files

        if not has_video_files(folder):
            raise
        return VideoDataset(folder, transform=transform, frame_step=frame_step)
    dataset = SSLDataset.__new__(SSLDataset)
    dataset.input_dir, dataset.transform, dataset._dataset = folder, transform, None
    dataset.filenames, dataset.targets, dataset.classes = listing
    dataset._init_skip_record()
    return dataset
