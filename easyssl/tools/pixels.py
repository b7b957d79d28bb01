"""Do two images agree in their pixels, up to a light crop, a resize, re-encoding and exposure?

An embedding trained to be invariant to crops and colour changes says that two look-alikes
(two white bags, two circles of one colour) are about as close as an image and its copy. The
pixels do not: a copy, once the crop is undone, matches its original nearly pixel for pixel, a
look-alike does not. :func:`pixel_agreement` measures that: the normalised cross-correlation of
two small thumbnails, the best over the crops of one that the other could have been cut from.
It is the geometric check after a feature match, as in image retrieval (SIFT matches, then a
check that the geometry agrees). :func:`easyssl.find_duplicate_images` uses it to confirm the
pairs its embeddings propose.

Example:
    >>> from PIL import Image
    >>> photo = Image.open("a.jpg")
    >>> pixel_agreement(photo, photo.crop((10, 10, 300, 200)))   # close to 1
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

__all__ = ["pixel_agreement", "PixelAgreement", "AGREEMENT_SIZE", "AGREEMENT_MIN_SIDE"]

#: Side of the thumbnails compared, in pixels. Small enough that re-encoding noise and the blur of a
#: resize wash out, and cheap (about 12 ms a pair on one CPU core, with every crop size tried both ways);
#: large enough to keep the shapes that tell look-alikes apart.
AGREEMENT_SIZE = 32
#: The smallest fraction of each side a crop may keep (each side on its own): a copy cropped to 80-100 % of
#: the width and of the height is realigned with its original before comparing, at every whole-pixel size
#: of the thumbnail (a coarser grid of fractions misaligns textured crops by half a pixel: 0.94 for a photo).
AGREEMENT_MIN_SIDE = 0.8


def _thumbnail(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    array = np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    return array[..., None] if array.ndim == 2 else array


def _reduced(image: Image.Image, size: int) -> Image.Image:
    """``image`` at most 4 x ``size`` pixels a side (a copy), so the thumbnails are cut from a small image."""
    if max(image.size) <= 4 * size:
        return image
    image = image.copy()
    image.thumbnail((4 * size, 4 * size), Image.Resampling.BILINEAR)
    return image


def _best_correlation(large: np.ndarray, small: np.ndarray) -> float:
    """The best normalised cross-correlation of ``small`` with the windows of ``large`` it fits in.

    One mean over all channels is removed (not one per channel), so a brightness change keeps the
    correlation while a change of colour lowers it.
    """
    if large.shape[2] != small.shape[2]:  # a grayscale image against a colour one: compare in colour
        large, small = np.broadcast_to(large, large.shape[:2] + (3,)), np.broadcast_to(small, small.shape[:2] + (3,))
    template = (small - small.mean()).reshape(-1)
    template = template / (np.linalg.norm(template) + 1e-6)
    windows = sliding_window_view(large, small.shape).reshape(-1, template.size)  # one row per position
    # The template has zero mean, so a window's own mean drops out of the product; only its norm needs it.
    spread = np.einsum("pn,pn->p", windows, windows) - windows.sum(axis=1) ** 2 / template.size
    scores = (windows @ template) / (np.sqrt(np.maximum(spread, 0.0)) + 1e-6)
    return float(min(1.0, scores.max()))


def pixel_agreement(first: Image.Image, second: Image.Image, size: int = AGREEMENT_SIZE,
                    min_side: float = AGREEMENT_MIN_SIDE) -> float:
    """How well two images agree pixel for pixel, in ``[-1, 1]``, allowing one to be a crop of the other.

    Both are reduced to ``size`` x ``size`` thumbnails; then for each way round and each width and
    height a crop could have kept (``min_side`` to all of each side, every whole pixel of the
    thumbnail) the smaller one is slid over the larger, and the best normalised cross-correlation
    counts. Re-encoding, a resize and an exposure change (a gain, or an offset) barely lower it; a
    different object, or the same shape in another place, size or colour, does.

    Why :func:`easyssl.find_duplicate_images` asks 0.97 (0.9 of the pairs its embeddings are surest
    of): on the planted near-duplicates of ``examples/benchmarks/near_duplicates.py`` (the tuning and
    fresh splits, cut from Fashion-MNIST's training images, models of 90 s) JPEG copies scored
    0.98-1.00, brightness changes 0.995-1.00, crops of 85-95 % 0.98-1.00, resized copies (blurred)
    0.90-1.00 (34 of 50 at 0.97 or more); the look-alikes their embeddings linked at ratio 4 scored
    0.74-0.98 (5 of 29 at 0.97 or more). On the demo set's colour shapes: JPEG copies 0.93-0.98,
    look-alikes 0.26-0.97 (none at 0.97).

    Args:
        first, second: PIL images, any size and mode.
        size: Side of the thumbnails compared.
        min_side: The smallest fraction of each side a crop may keep (1.0: no crop).

    Returns:
        The best correlation found (1.0: identical up to gain and offset).
    """
    if size < 4:
        raise ValueError(f"size must be at least 4 pixels, got {size}")
    if isinstance(min_side, bool) or not isinstance(min_side, (int, float)) or not 0.0 < min_side <= 1.0:
        raise ValueError(f"min_side must be a fraction in (0, 1], got {min_side!r}")
    sides = range(max(2, math.ceil(size * min_side - 1e-9)), size + 1)
    first, second = _reduced(first, size), _reduced(second, size)
    best = -1.0
    for large, small in ((first, second), (second, first)):
        reference = _thumbnail(large, (size, size))
        for width in sides:
            for height in sides:
                best = max(best, _best_correlation(reference, _thumbnail(small, (width, height))))
    return best


class PixelAgreement:
    """:func:`pixel_agreement` of pairs of items given by index, for ``find_duplicates(verify=...)``.

    Args:
        load: Returns the PIL image of an index (or None when it cannot be read: such pairs score -1).
        size, min_side: As :func:`pixel_agreement`.

    Example:
        >>> data = easyssl.data.open_dataset("my/images/")
        >>> verify = PixelAgreement(lambda i: data.load_or_none(i)[0])
        >>> verify(np.array([0, 1]), np.array([5, 9]))   # agreement of pairs (0, 5) and (1, 9)
    """

    def __init__(self, load: Callable[[int], Optional[Image.Image]], size: int = AGREEMENT_SIZE,
                 min_side: float = AGREEMENT_MIN_SIDE) -> None:
        self.load, self.size, self.min_side = load, size, min_side

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The agreement of each pair ``(first[i], second[i])``; each image is read at most once per call
        (and kept at most 4 x ``size`` pixels a side)."""
        images: dict[int, Optional[Image.Image]] = {}
        out = np.empty(len(first), dtype=np.float32)
        for n, (a, b) in enumerate(zip(np.asarray(first).tolist(), np.asarray(second).tolist())):
            for i in (a, b):
                if i not in images:
                    image = self.load(i)
                    images[i] = None if image is None else _reduced(image, self.size)
            pa, pb = images[a], images[b]
            out[n] = -1.0 if pa is None or pb is None else pixel_agreement(pa, pb, self.size, self.min_side)
        return out
