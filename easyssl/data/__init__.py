"""Datasets, image loading and collate functions."""

from easyssl.data.collate import MultiViewCollate
from easyssl.data.dataset import SSLDataset, list_image_folder, open_dataset
from easyssl.data.demo import DEMO_CLASSES, make_demo_dataset
from easyssl.data.images import IMAGE_EXTENSIONS, is_image_file, load_image, to_rgb
from easyssl.data.video import VIDEO_EXTENSIONS, VideoDataset, is_video_file

__all__ = [
    "DEMO_CLASSES",
    "IMAGE_EXTENSIONS",
    "MultiViewCollate",
    "SSLDataset",
    "VIDEO_EXTENSIONS",
    "VideoDataset",
    "is_image_file",
    "is_video_file",
    "list_image_folder",
    "load_image",
    "make_demo_dataset",
    "open_dataset",
    "to_rgb",
]
