"""Datasets, image loading and collate functions.

Layers inside the package, each importing only those above it in this list: ``images``
(decoding), ``scan`` (listing folders), ``dataset`` (:class:`SSLDataset`), ``video``
(:class:`VideoDataset`), ``folder`` (:func:`open_dataset`); ``cache``, ``collate`` and
``demo`` stand alone.
"""

from easyssl.data.cache import CachedImageDataset, default_cache_bytes, fit_square
from easyssl.data.collate import MultiViewCollate, is_empty_batch
from easyssl.data.dataset import SSLDataset, VideoFolderError, warn_skipped
from easyssl.data.demo import DEMO_CLASSES, make_demo_dataset
from easyssl.data.folder import open_dataset
from easyssl.data.images import IMAGE_EXTENSIONS, is_image_file, load_image, to_rgb
from easyssl.data.scan import VIDEO_EXTENSIONS, has_video_files, is_video_file, list_image_folder, scan_files
from easyssl.data.video import VideoDataset

__all__ = [
    "CachedImageDataset",
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
