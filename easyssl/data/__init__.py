"""Datasets, image loading and collate functions.

Layers inside the package, each importing only those above it in this list: ``images``
(decoding), ``scan`` (listing folders), ``dataset`` (:class:`SSLDataset`), ``video``
(:class:`VideoDataset`), ``folder`` (:func:`open_dataset`); ``cache``, ``collate`` and
``demo`` stand alone; ``lightly_compat`` (LightlySSL's names) builds on ``dataset``.

LightlySSL's collate presets (``ImageCollateFunction``, ``SimCLRCollateFunction``,
``MoCoCollateFunction``) are made of view transforms, a layer above this one: they live in
:mod:`easyssl.transforms.collate_compat`, and this package's ``__getattr__`` provides them by
name on first use, so that LightlySSL's ``import lightly.data as data; data.ImageCollateFunction(...)``
works with ``easyssl.data`` while nothing in ``data`` depends on ``transforms`` (docs/ARCHITECTURE.md).
"""

import importlib
from typing import Any

from easyssl.data.cache import CachedImageDataset, default_cache_bytes, fit_square
from easyssl.data.collate import MultiViewCollate, is_empty_batch
from easyssl.data.dataset import SSLDataset, VideoFolderError, warn_skipped
from easyssl.data.demo import DEMO_CLASSES, make_demo_dataset
from easyssl.data.folder import open_dataset
from easyssl.data.lightly_compat import BaseCollateFunction, LightlyDataset, MultiViewCollateFunction
from easyssl.data.images import IMAGE_EXTENSIONS, is_image_file, load_image, to_rgb
from easyssl.data.scan import VIDEO_EXTENSIONS, has_video_files, is_video_file, list_image_folder, scan_files
from easyssl.data.video import VideoDataset

__all__ = [
    "BaseCollateFunction",
    "CachedImageDataset",
    "LightlyDataset",
    "MultiViewCollateFunction",
    "DEMO_CLASSES",
    "IMAGE_EXTENSIONS",
    "MultiViewCollate",
    "SSLDataset",
    "VIDEO_EXTENSIONS",
    "VideoDataset",
    "VideoFolderError",
    "default_cache_bytes",
    "fit_square",
    "has_video_files",
    "is_empty_batch",
    "is_image_file",
    "is_video_file",
    "list_image_folder",
    "load_image",
    "make_demo_dataset",
    "open_dataset",
    "scan_files",
    "to_rgb",
    "warn_skipped",
]

#: Names this package provides from a layer above it, on first use (see the module docstring).
LAZY_NAMES = {
    "ImageCollateFunction": "easyssl.transforms.collate_compat",
    "SimCLRCollateFunction": "easyssl.transforms.collate_compat",
    "MoCoCollateFunction": "easyssl.transforms.collate_compat",
}


def __getattr__(name: str) -> Any:
    if name in LAZY_NAMES:
        return getattr(importlib.import_module(LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'easyssl.data' has no attribute {name!r}")  # Python adds "Did you mean" from __dir__


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY_NAMES))
