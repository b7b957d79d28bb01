"""Reading image files into RGB PIL images, whatever their mode or orientation."""

from __future__ import annotations

import os

from PIL import Image, ImageOps

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

# Photos from cameras can be huge; we read them on purpose, so lift PIL's bomb guard to a
# generous bound (1 gigapixel) instead of failing on a 10,000 x 10,000 scan.
Image.MAX_IMAGE_PIXELS = 1_000_000_000


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


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file as an RGB PIL image, honouring its EXIF orientation.

    Raises:
        OSError: when the file cannot be decoded (corrupt, truncated, not an image); the
            message names the file.
    """
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise OSError(f"cannot read image file {os.fspath(path)!r}: {error}") from error
