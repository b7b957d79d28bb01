"""``open_dataset``: the one entry that opens a folder as a dataset, of images or of videos."""

from __future__ import annotations

import os
from typing import Callable

from easyssl.data.dataset import SSLDataset, VideoFolderError
from easyssl.data.video import VideoDataset


def open_dataset(input_dir: str | os.PathLike, transform: Callable | None = None, frame_step: int = 1) -> SSLDataset:
    """The dataset of a folder: an :class:`~easyssl.data.SSLDataset` for images, or a
    :class:`~easyssl.data.VideoDataset` (frame by frame, every ``frame_step``-th frame; needs
    PyAV) for a folder that holds videos and no image. ``frame_step`` is ignored for images.

    This is how :func:`easyssl.train_embedding_model`, :func:`easyssl.embed_images` and the
    command line open ``input_dir``; ``SSLDataset(folder)`` reads images only.

    Example:
        >>> dataset = open_dataset("my/videos/", transform=EvalTransform(224), frame_step=10)

    Raises:
        FileNotFoundError, NotADirectoryError, ValueError: as :func:`~easyssl.data.scan.list_image_folder`, naming the path.
        ImportError: the folder holds videos and PyAV is not installed (the message says what to install).
    """
    folder = os.fspath(input_dir)
    try:
        return SSLDataset(folder, transform=transform)
    except VideoFolderError:
        return VideoDataset(folder, transform=transform, frame_step=frame_step)
