"""A small built-in image set drawn on the fly, so a newcomer sees easyssl work without any download."""

from __future__ import annotations

import colorsys
import math
import os
import random

from PIL import Image, ImageDraw

#: The demo's classes, one sub-folder each.
DEMO_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "stripes", "cross")


def _draw(kind: str, size: int, rng: random.Random) -> Image.Image:
    background = tuple(rng.randint(200, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    # Any hue: with a palette of seven colours, shapes of one colour and about one size were within a
    # crop and an exposure change of each other, near-duplicates by any measure.
    color = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.55, 0.95), rng.uniform(0.5, 0.85)))
    r = rng.uniform(0.22, 0.38) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif kind == "square":
        angle = rng.uniform(0, math.pi / 2)
        points = [(cx + r * math.cos(angle + k * math.pi / 2), cy + r * math.sin(angle + k * math.pi / 2)) for k in range(4)]
        draw.polygon(points, fill=color)
    elif kind == "triangle":
        angle = rng.uniform(0, 2 * math.pi)
        points = [(cx + r * math.cos(angle + k * 2 * math.pi / 3), cy + r * math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
        draw.polygon(points, fill=color)
    elif kind == "stripes":
        # Any direction, width and phase: with a few fixed slants and widths (as before), stripes of one
        # colour were crops of each other, real near-duplicates that `easyssl duplicates` rightly reported.
        angle = rng.uniform(0, math.pi)
        width = rng.uniform(0.08, 0.2) * size
        nx, ny, tx, ty = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
        offset = rng.uniform(0, 2 * width) - size
        while offset < size:  # bands across the whole image, centred on it
            a, b = offset, offset + width
            c = size / 2
            draw.polygon([(c + nx * a + tx * size, c + ny * a + ty * size), (c + nx * b + tx * size, c + ny * b + ty * size),
                          (c + nx * b - tx * size, c + ny * b - ty * size), (c + nx * a - tx * size, c + ny * a - ty * size)], fill=color)
            offset += 2 * width
    elif kind == "cross":
        w = r * 0.35
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=color)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=color)
    else:
        raise ValueError(f"unknown demo class {kind!r}; expected one of {DEMO_CLASSES}")
    return image


def make_demo_dataset(
    output_dir: str | os.PathLike, images_per_class: int = 40, image_size: int = 64, seed: int = 0
) -> str:
    """Write a small labelled image folder of simple shapes and return its path.

    One sub-folder per class in :data:`DEMO_CLASSES` (circle, square, triangle, stripes,
    cross), each with ``images_per_class`` PNGs of ``image_size`` pixels with random
    position, size, rotation and colours. Deterministic for a given ``seed``. Existing
    files of the same name are overwritten.
    """
    if images_per_class < 1:
        raise ValueError(f"images_per_class must be >= 1, got {images_per_class}")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8 pixels, got {image_size}")
    rng = random.Random(seed)
    output_dir = os.fspath(output_dir)
    for kind in DEMO_CLASSES:
        folder = os.path.join(output_dir, kind)
        os.makedirs(folder, exist_ok=True)
        for i in range(images_per_class):
            _draw(kind, image_size, rng).save(os.path.join(folder, f"{kind}_{i:04d}.png"))
    return output_dir
