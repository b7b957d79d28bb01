"""Issue 13 item 2: decompression bombs are skipped (or, for JPEGs, read reduced) from their header size."""

import os
import struct
import subprocess
import sys
import textwrap
import zlib

import pytest
from PIL import Image

import easyssl.data.images as images
from easyssl.data import SSLDataset, load_image
from tests.conftest import write_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_png_bomb(path, width=30_000, height=30_000):
    """A 1-bit grey PNG of ``width`` x ``height`` all-black pixels, a few hundred KB, written chunk by chunk
    (never held in memory): decoded as RGB it would take width * height * 3 bytes (2.7 GB for 30,000²)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
        handle.write(chunk(b"IDAT", body))
        handle.write(chunk(b"IEND", b""))
    return str(path)


def test_import_leaves_pillows_global_guard_alone():
    code = "from PIL import Image; before = Image.MAX_IMAGE_PIXELS; import easyssl, easyssl.data; print(before == Image.MAX_IMAGE_PIXELS)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_bomb_is_refused_from_its_header(tmp_path):
    bomb = write_png_bomb(tmp_path / "bomb.png")
    assert os.path.getsize(bomb) < 1_000_000
    with pytest.raises(OSError, match="bomb.png"):
        load_image(bomb)


def test_limit_can_be_raised_and_lowered(tmp_path, monkeypatch):
    path = write_image(str(tmp_path / "a.png"), size=(400, 300))
    assert load_image(path).size == (400, 300)
    with pytest.raises(images.ImageTooLargeError, match="a.png.*400 x 300"):
        load_image(path, max_pixels=100_000)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 50_000)
    with pytest.raises(images.ImageTooLargeError, match="EASYSSL_MAX_IMAGE_PIXELS"):
        load_image(path)
    assert load_image(path, max_pixels=None).size == (400, 300)
    dataset = SSLDataset(str(tmp_path), max_image_pixels=200_000)
    assert dataset.load(0)[0].size == (400, 300)
    # Above Pillow's own guard (2 x PIL.Image.MAX_IMAGE_PIXELS) when the user allows it, Pillow's global untouched after.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert load_image(path, max_pixels=1_000_000).size == (400, 300)
    assert Image.MAX_IMAGE_PIXELS == 10_000


def test_environment_variable_sets_the_limit(tmp_path):
    path = write_image(str(tmp_path / "a.png"), size=(400, 300))
    code = f"from easyssl.data import load_image\ntry:\n    load_image({path!r})\nexcept OSError as e:\n    print('refused', e)"
    env = {**os.environ, "EASYSSL_MAX_IMAGE_PIXELS": "100000"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("refused") and "a.png" in out


def test_large_jpeg_is_decoded_reduced(tmp_path):
    path = str(tmp_path / "big.jpg")
    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(path, quality=80)
    image = load_image(path, max_pixels=200_000)  # 1.92 MP: read at 1/4 (400 x 300) instead of refused
    assert image.size == (400, 300) and image.getpixel((10, 10))[0] > 150
    with pytest.raises(images.ImageTooLargeError):
        load_image(path, max_pixels=10_000)  # even 1/8 (200 x 150) is too large


SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, warnings
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {root!r})
    from easyssl import embed_images, train_embedding_model
    from tests.conftest import fast_config
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        checkpoint = train_embedding_model({folder!r}, checkpoint_dir={run!r}, **fast_config(loader={{"batch_size": 4, "num_workers": 0}}))
        embeddings, labels, names, skipped = embed_images({folder!r}, checkpoint, progress_bar=False, num_workers=0, return_skipped=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({{"rows": len(names), "names": names, "skipped": skipped, "peak_mb": peak_mb,
                       "warnings": [str(w.message) for w in caught]}}))
    """
)


def test_bomb_among_normal_images_trains_and_embeds_with_bounded_memory(tmp_path):
    folder = tmp_path / "images"
    for i in range(8):
        write_image(str(folder / f"img{i}.png"), size=(40, 30), seed=i)
    write_png_bomb(folder / "zz_bomb.png")
    script = SCRIPT.format(root=ROOT, folder=str(folder), run=str(tmp_path / "run"))
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rows"] == 8 and "zz_bomb.png" not in report["names"]
    assert report["skipped"] == ["zz_bomb.png"]
    assert any("zz_bomb.png" in w for w in report["warnings"])
    # Decoding the bomb would take 2.7 GB of RGB (and 900 MB more as 1-bit); training and embedding 8 small
    # images with torch loaded stays well under 1.5 GB.
    assert report["peak_mb"] < 1500, report["peak_mb"]


def test_training_config_sets_the_limit_of_the_run(demo_folder):
    from easyssl import build_training
    from tests.conftest import fast_config

    run = build_training(demo_folder, **fast_config(loader={"max_image_pixels": 500}))
    assert run.config["loader"]["max_image_pixels"] == 500 and run.dataset.max_image_pixels == 500
    assert run.dataset.load_or_none(0)[0] is None  # 32 x 32 = 1024 pixels > 500: skipped
    assert build_training(demo_folder, **fast_config()).config["loader"]["max_image_pixels"] == images.DEFAULT_MAX_IMAGE_PIXELS
    with pytest.raises(ValueError, match="max_image_pixels"):
        build_training(demo_folder, **fast_config(loader={"max_image_pixels": -3}))
