"""Reading image files into RGB PIL images, whatever their mode or orientation."""

from __future__ import annotations

import math
import os
import threading
import warnings
from typing import Any, Union

from PIL import Image, ImageOps

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

#: Default of :data:`MAX_IMAGE_PIXELS`: 100 megapixels (a 12,000 x 8,000 scan passes; 300 MB as RGB).
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
#: Environment variable that sets :data:`MAX_IMAGE_PIXELS` (a number of pixels, or ``none`` for no limit).
MAX_IMAGE_PIXELS_ENV = "EASYSSL_MAX_IMAGE_PIXELS"

ImageLimit = Union[int, None, str]


def _limit_from_env() -> int | None:
    text = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    if text.lower() in ("none", "off", "0"):
        return None
    try:
        return max(1, int(float(text)))
    except ValueError:
        warnings.warn(f"{MAX_IMAGE_PIXELS_ENV}={text!r} is not a number of pixels (e.g. 300000000) or 'none': "
                      f"using the default, {DEFAULT_MAX_IMAGE_PIXELS}", stacklevel=2)
        return DEFAULT_MAX_IMAGE_PIXELS


#: Largest image, in pixels (width x height), that easyssl decodes; larger files are skipped with the
#: usual warning naming them (JPEGs are decoded at a reduced size instead, when that fits). A
#: decompression bomb (a 30,000 x 30,000 PNG is a few hundred KB) would otherwise take gigabytes of
#: memory in every loader worker. Raise it here (``easyssl.data.images.MAX_IMAGE_PIXELS = 300_000_000``),
#: with the environment variable ``EASYSSL_MAX_IMAGE_PIXELS`` (also seen by spawned loader workers),
#: or per training run with ``loader={"max_image_pixels": ...}``; None means no limit. easyssl leaves
#: Pillow's own, process-wide ``PIL.Image.MAX_IMAGE_PIXELS`` as it is.
MAX_IMAGE_PIXELS: int | None = _limit_from_env()

# Serialises the rare opens that lift Pillow's guard (see _open); Pillow reads its limit from a module global.
_PILLOW_GUARD = threading.Lock()


class ImageTooLargeError(OSError):
    """An image is larger than the pixel limit (:data:`MAX_IMAGE_PIXELS`): it is skipped like an unreadable file."""


def max_image_pixels(limit: ImageLimit = "auto") -> int | None:
    """The pixel limit in force: ``limit`` itself (an int, or None for no limit), or for ``"auto"`` :data:`MAX_IMAGE_PIXELS`."""
    if limit == "auto":
        return MAX_IMAGE_PIXELS
    if limit is None:
        return None
    if isinstance(limit, bool) or int(limit) < 1:
        raise ValueError(f"max_image_pixels must be a positive number of pixels, None (no limit) or 'auto', got {limit!r}")
    return int(limit)


def _too_large(path: Any, size: tuple[int, int], limit: int) -> ImageTooLargeError:
    w, h = size
    return ImageTooLargeError(
        f"{os.fspath(path)!r} is {w} x {h} = {w * h / 1e6:.0f} megapixels, above the limit of {limit / 1e6:g} megapixels "
        f"(a decompression-bomb guard); {_RAISE}"
    )


_RAISE = f"raise the limit with {MAX_IMAGE_PIXELS_ENV}, easyssl.data.images.MAX_IMAGE_PIXELS or loader={{'max_image_pixels': ...}}"


def _open(path: Any, limit: int | None) -> Image.Image:
    """``Image.open`` (header only, nothing decoded yet). Pillow's own guard stays in force, except when the
    caller allowed images larger than it: then it is lifted for this one open, under a lock."""
    try:
        return Image.open(path)
    except Image.DecompressionBombError as error:
        pillow = Image.MAX_IMAGE_PIXELS
        if limit is not None and pillow is not None and limit <= 2 * pillow:
            raise ImageTooLargeError(f"{os.fspath(path)!r} is above the limit of {limit / 1e6:g} megapixels ({error}); {_RAISE}") from None
        with _PILLOW_GUARD:
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = pillow


def open_checked(path: str | os.PathLike, max_pixels: ImageLimit = "auto") -> Image.Image:
    """Open an image file and check its size from the header, before any pixel is decoded.

    Above the limit (see :func:`max_image_pixels`), a JPEG is set to decode at 1/2, 1/4 or 1/8 of
    its size (Pillow's draft mode) when that fits under the limit; any other file raises
    :class:`ImageTooLargeError`. The caller closes the returned image.
    """
    limit = max_image_pixels(max_pixels)
    image = _open(path, limit)
    w, h = image.size
    if limit is None or w * h <= limit:
        return image
    if image.format == "JPEG":
        scale = next((s for s in (2, 4, 8) if math.ceil(w / s) * math.ceil(h / s) <= limit), None)
        if scale is not None:
            image.draft(image.mode, (math.ceil(w / scale), math.ceil(h / scale)))
            if image.size[0] * image.size[1] <= limit:
                return image
    image.close()
    raise _too_large(path, (w, h), limit)


def is_image_file(name: str) -> bool:
    """True when ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB.

    Handles grayscale (``L``), 1-bit, palette (with or without transparency), ``LA``/``RGBA``
    (alpha composited onto white), 16/32-bit integer (``I;16``, ``I``: scaled to 8 bit by
    their value range), float (``F``) and ``CMYK``.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            array = array / 257.0
        else:
            lo, hi = float(array.min()), float(array.max())
            array = (array - lo) * (255.0 / (hi - lo)) if hi > lo else array * 0.0
        image = Image.fromarray(np.clip(array + 0.5, 0, 255).astype("uint8"), mode="L")
        mode = "L"
    if mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | os.PathLike, max_pixels: ImageLimit = "auto") -> Image.Image:
    """Open an image file as an RGB PIL image, honouring its EXIF orientation.

    The image's size is checked from its header before it is decoded (see :func:`open_checked`):
    images above ``max_pixels`` (default :data:`MAX_IMAGE_PIXELS`, 100 megapixels) are refused,
    or, for JPEGs, decoded at a reduced size.

    Raises:
        OSError: when the file cannot be decoded (corrupt, truncated, not an image, permission
            denied) or is too large (:class:`ImageTooLargeError`); the message names the file.
    """
    try:
        with open_checked(path, max_pixels) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except ImageTooLargeError:
        raise
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise OSError(f"cannot read image file {os.fspath(path)!r}: {error}") from error
