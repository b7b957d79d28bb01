"""pixel_agreement: copies agree with their originals pixel for pixel once the crop is undone; look-alikes do not."""

import io
import itertools
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from easyssl import make_demo_dataset
from easyssl.tools.duplicates import DUPLICATE_AGREEMENT
from easyssl.tools.pixels import PixelAgreement, pixel_agreement


@pytest.fixture(scope="module")
def photo():
    from sklearn.datasets import load_sample_images  # in the dev extra: a missing one fails, never skips

    return Image.fromarray(load_sample_images().images[0])  # china.jpg, 640 x 427


def _jpeg(image, quality=30):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def test_copies_agree(photo):
    tile = photo.crop((200, 100, 296, 196))
    w, h = tile.size
    copies = {
        "jpeg": _jpeg(tile),
        "crop": tile.crop((5, 3, 5 + round(0.88 * w), 3 + round(0.9 * h))),
        "crop, other aspect": tile.crop((0, 4, round(0.83 * w), 4 + round(0.95 * h))),
        "resize": tile.resize((72, 72), Image.Resampling.BILINEAR).resize((w, h), Image.Resampling.BILINEAR),
        "brighter": ImageEnhance.Brightness(tile).enhance(1.25),
        "darker": ImageEnhance.Brightness(tile).enhance(0.8),
        "larger file": tile.resize((400, 400)),
    }
    for name, copy in copies.items():
        assert pixel_agreement(tile, copy) >= DUPLICATE_AGREEMENT, name
        assert pixel_agreement(copy, tile) == pytest.approx(pixel_agreement(tile, copy)), name  # symmetric


def test_look_alikes_and_other_images_do_not(photo):
    tile = photo.crop((200, 100, 296, 196))
    others = [photo.crop((x, 250, x + 96, 346)) for x in (0, 150, 400)]  # other parts of the same photo
    for other in others:
        assert pixel_agreement(tile, other) < 0.8
    # The same circle in another colour, or at another place and size: alike to an embedding, not in pixels.
    def circle(color, box, background=(240, 240, 240)):
        image = Image.new("RGB", (64, 64), background)
        ImageDraw.Draw(image).ellipse(box, fill=color)
        return image
    red = circle((220, 50, 47), (12, 12, 44, 44))
    assert pixel_agreement(red, red.crop((4, 4, 60, 60))) >= DUPLICATE_AGREEMENT  # itself, cropped
    assert pixel_agreement(red, circle((38, 139, 210), (12, 12, 44, 44))) < DUPLICATE_AGREEMENT  # a colour per channel
    assert pixel_agreement(red, circle((220, 50, 47), (24, 20, 50, 46))) < DUPLICATE_AGREEMENT  # moved and smaller


def test_the_demo_set_has_no_near_duplicates(tmp_path):
    """The built-in demo's stripes once came in a few slants and widths: stripes of one colour were crops of each
    other (agreement 0.999), and `easyssl duplicates` rightly reported them. Now no two demo images agree."""
    folder = make_demo_dataset(tmp_path, images_per_class=40, image_size=32)
    stripes = [Image.open(os.path.join(folder, "stripes", f)).convert("RGB") for f in sorted(os.listdir(os.path.join(folder, "stripes")))]
    scores = [pixel_agreement(a, b) for a, b in itertools.combinations(stripes, 2)]
    assert max(scores) < DUPLICATE_AGREEMENT


def test_pixel_agreement_of_indexed_pairs(photo):
    tiles = [photo.crop((x, 0, x + 96, 96)) for x in (0, 200, 400)] + [_jpeg(photo.crop((200, 0, 296, 96)))]
    loads = []

    def load(i):
        loads.append(i)
        return None if i == 2 else tiles[i]

    verify = PixelAgreement(load)
    scores = verify(np.array([1, 0, 2, 0]), np.array([3, 3, 3, 1]))
    assert scores.shape == (4,) and scores[0] >= DUPLICATE_AGREEMENT and scores[1] < 0.8 and scores[2] == -1.0
    assert sorted(loads) == [0, 1, 2, 3]  # each image read once
    with pytest.raises(ValueError, match="min_side must be a fraction"):
        pixel_agreement(tiles[0], tiles[1], min_side=1.2)
    with pytest.raises(ValueError, match="size must be at least 4"):
        pixel_agreement(tiles[0], tiles[1], size=2)
