"""Datasets, image loading and collate functions."""

from easyssl.data.collate import MultiViewCollate
from easyssl.data.dataset import SSLDataset, list_image_folder
from easyssl.data.demo import DEMO_CLASSES, make_demo_dataset
from easyssl.data.images import IMAGE_EXTENSIONS, is_image_file, load_image, to_rgb

__all__ = [
    "DEMO_CLASSES",
    "IMAGE_EXTENSIONS",
    "MultiViewCollate",
    "SSLDataset",
    "is_image_file",
    "list_image_folder",
    "load_image",
    "make_demo_dataset",
    "to_rgb",
]
