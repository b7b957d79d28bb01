"""Shared fixtures: small image folders generated with PIL, and a fast training config."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

# One thread: the tiny models of the tests gain nothing from more, and on a shared machine
# OpenMP threads waiting for a busy core made tests up to 10x slower.
torch.set_num_threads(1)

#: Overrides that make train_embedding_model take a second or two on a CPU.
FAST = {
    "model": {"backbone": "resnet-18", "width": 0.125},
    "collate": {"input_size": 32},
    "loader": {"batch_size": 8, "num_workers": 0},
    "trainer": {"max_epochs": 1, "progress_bar": False},
}


def fast_config(**sections):
    """FAST with some sections' keys replaced."""
    config = {key: dict(value) for key, value in FAST.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    return config


def write_image(path: str, mode: str = "RGB", size: tuple[int, int] = (40, 30), seed: int = 0) -> str:
    """Write a random image of ``mode`` to ``path`` (format from the extension)."""
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "RGB":
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    elif mode == "L":
        image = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
    elif mode == "RGBA":
        image = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA")
    elif mode == "P":
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert("P")
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    elif mode == "CMYK":
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert("CMYK")
    else:
        raise ValueError(mode)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path)
    return path


@pytest.fixture()
def class_folder(tmp_path):
    """Two classes ('cats', 'dogs') of 6 random 40x30 RGB PNG/JPEGs each."""
    root = tmp_path / "images"
    for c, name in enumerate(["cats", "dogs"]):
        for i in range(6):
            ext = ".png" if i % 2 == 0 else ".JPG"
            write_image(str(root / name / f"img{i}{ext}"), seed=10 * c + i)
    return str(root)


@pytest.fixture()
def demo_folder(tmp_path_factory):
    """The built-in demo set, small: 5 classes x 8 images of 32 px."""
    from easyssl import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), images_per_class=8, image_size=32)
