"""Build the benchmark folder of Fashion-MNIST PNGs from Debian's ``dataset-fashion-mnist`` package.

``apt-get install dataset-fashion-mnist`` puts the original IDX files under
``/usr/share/datasets/fashion-mnist``. This module writes the first ``n_train`` training
and ``n_test`` test images as 28x28 grayscale PNGs into ``<out>/train/<class>/`` and
``<out>/test/<class>/`` (class sub-folders, used for evaluation only).

    python examples/benchmarks/fashion_mnist_data.py --out bench_data/fashion_mnist
"""

from __future__ import annotations

import argparse
import gzip
import os

import numpy as np
from PIL import Image

SOURCE = "/usr/share/datasets/fashion-mnist"
CLASSES = ("0_tshirt", "1_trouser", "2_pullover", "3_dress", "4_coat", "5_sandal", "6_shirt", "7_sneaker", "8_bag", "9_boot")


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_split(split: str, source: str = SOURCE) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,))`` of the ``"train"`` or ``"test"`` split."""
    prefix = "train" if split == "train" else "t10k"
    images_path = os.path.join(source, f"{prefix}-images-idx3-ubyte.gz")
    if not os.path.exists(images_path):
        raise FileNotFoundError(f"{images_path} not found: install Debian's package with `apt-get install dataset-fashion-mnist`")
    return _read_idx(images_path), _read_idx(os.path.join(source, f"{prefix}-labels-idx1-ubyte.gz"))


#: Disjoint splits cut from the official *training* set (offsets of their train and test images), to choose
#: defaults on: ``tuning`` is the one used for most defaults, ``fresh`` one no earlier choice looked at (the fifth
#: session's pooled-stages comparison looked at it), ``holdout`` one only final defaults are measured on, never tuned on.
TRAINING_SET_SPLITS = {"tuning": (20_000, 50_000), "fresh": (30_000, 40_000), "holdout": (10_000, 52_000)}


def build_folder(out: str, n_train: int = 10_000, n_test: int = 2_000, source: str = SOURCE, tuning: bool | str = False,
                 test_offset: int | None = None) -> tuple[str, str]:
    """Write the PNG folders (skipped when already complete) and return ``(train_dir, test_dir)``.

    The benchmark split is the first ``n_train`` training images and the first ``n_test``
    test images. ``tuning=True`` (or ``"tuning"``) gives a disjoint split cut from the official
    *training* set only (images 20,000+ for training, 50,000+ for testing), used to choose
    defaults, so the benchmark's figures are measured on images the tuning never saw;
    ``tuning="fresh"`` another one (training images 30,000+ and 40,000+), disjoint from both,
    for a choice made after the others had been looked at; ``tuning="holdout"`` a third (training
    images 10,000+ and 52,000+), to measure final defaults on images no choice ever looked at.
    ``test_offset`` (with ``tuning``) takes the test images from that offset of the training set instead, e.g. a
    10,000-image test set (``n_test=10_000, test_offset=40_000`` for the tuning split): a kNN figure on 2,000 test
    images moves by about a point from one run to the next, on 10,000 by under half that.
    """
    dirs = []
    if tuning:
        train_offset, split_test_offset = TRAINING_SET_SPLITS["tuning" if tuning is True else tuning]
        test_offset = split_test_offset if test_offset is None else test_offset
        if train_offset < test_offset + n_test and test_offset < train_offset + n_train:
            raise ValueError(f"test images {test_offset}+ overlap the training images {train_offset}+")
        plan = (("train", n_train, train_offset, "train"), ("test", n_test, test_offset, "train"))
    else:
        plan = (("train", n_train, 0, "train"), ("test", n_test, 0, "test"))
    for split, n, offset, source_split in plan:
        folder = os.path.join(out, split)
        dirs.append(folder)
        marker = os.path.join(folder, f".complete-{n}-{offset}")
        if os.path.exists(marker):
            continue
        images, labels = load_split(source_split, source)
        if offset + n > len(images):
            raise ValueError(f"{source_split} has {len(images)} images; cannot take {n} from offset {offset}")
        for name in CLASSES:
            os.makedirs(os.path.join(folder, name), exist_ok=True)
        for i in range(offset, offset + n):
            Image.fromarray(images[i], mode="L").save(os.path.join(folder, CLASSES[labels[i]], f"{i:05d}.png"))
        open(marker, "w").close()
    return dirs[0], dirs[1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench_data/fashion_mnist")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    args = parser.parse_args()
    print(build_folder(args.out, args.n_train, args.n_test))
