"""Issue 11 item 1: the device-decode path of embedding (JPEGs decoded by torchvision on the device), run on the CPU."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from easyssl.data import MultiViewCollate, SSLDataset
from easyssl.data.encoded import EncodedImageDataset, is_encoded
from easyssl.inference.device_decode import DeviceDecodedLoader, decode_batch, use_device_decode
from easyssl.inference.loop import embed_with
from easyssl.models import SimCLR, backbone
from easyssl.transforms import EvalTransform


def _photo(rng, w, h):
    """A smooth random image (JPEG-friendly, like a photo)."""
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.BICUBIC)


@pytest.fixture()
def jpeg_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
    for i in range(9):
        _photo(rng, 40 + 7 * i, 64 - 3 * i).save(root / ("a" if i % 2 else "b") / f"p{i}.jpg", quality=90)
    _photo(rng, 50, 30).convert("L").save(root / "a" / "grey.jpeg")
    rotated = _photo(rng, 48, 32)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    rotated.save(root / "a" / "exif.jpg", exif=exif.tobytes())
    _photo(rng, 40, 40).convert("CMYK").save(root / "b" / "cmyk.jpg")
    _photo(rng, 36, 44).save(root / "b" / "other.png")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return str(root)


def _pil_batches(folder, transform, batch_size=4):
    data = SSLDataset(folder, transform=transform)
    return data, DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=MultiViewCollate())


def test_cpu_device_decode_matches_the_pil_path(jpeg_folder):
    transform = EvalTransform(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, pil_loader = _pil_batches(jpeg_folder, transform)
        pil = [(b[0], b[1], b[2]) for b in pil_loader if b[0] is not None]
        device = list(DeviceDecodedLoader(SSLDataset(jpeg_folder, transform=transform), transform, torch.device("cpu"), batch_size=4))
    assert [n for b in device for n in b[2]] == [n for b in pil for n in b[2]]  # same files, same order, broken.jpg left out
    assert "b/broken.jpg" not in [n for b in device for n in b[2]]
    a = torch.cat([b[0] for b in device])
    b = torch.cat([b[0] for b in pil])
    assert a.shape == b.shape and a.dtype == torch.float32
    # Only the JPEG decoder differs (torchvision's libjpeg-turbo vs Pillow's): a grey level or two at most.
    assert (a - b).abs().mean() < 0.01 and (a - b).abs().max() < 0.15
    assert torch.equal(torch.cat([b[1] for b in device]), torch.cat([b[1] for b in pil]))


def test_cpu_device_decode_embeddings_match_the_pil_path(jpeg_folder):
    torch.manual_seed(0)
    model = SimCLR(backbone("resnet-18", width=0.125, input_size=32), out_dim=16).eval()
    transform = EvalTransform(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, pil_loader = _pil_batches(jpeg_folder, transform)
        ref, labels, names = embed_with(model, pil_loader, torch.device("cpu"), progress_bar=False)
        loader = DeviceDecodedLoader(SSLDataset(jpeg_folder, transform=transform), transform, torch.device("cpu"), batch_size=4, prefetch=0)
        got, labels2, names2 = embed_with(model, loader, torch.device("cpu"), progress_bar=False)
    assert names2 == names and labels2 == labels
    np.testing.assert_allclose(got, ref, rtol=0, atol=0.05 * np.abs(ref).max())


def test_only_plain_jpegs_are_left_undecoded(jpeg_folder):
    transform = EvalTransform(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SSLDataset(jpeg_folder, transform=transform)
        encoded = EncodedImageDataset(data, transform)
        kinds = {name: encoded[i][0] for i, name in enumerate(data.filenames)}
    assert is_encoded(kinds["b/p0.jpg"]) and is_encoded(kinds["a/grey.jpeg"])
    assert kinds["a/exif.jpg"].shape == (3, 32, 32)  # EXIF-rotated: PIL's path, which applies the rotation
    assert kinds["b/cmyk.jpg"].shape == (3, 32, 32) and kinds["b/other.png"].shape == (3, 32, 32)  # decoded by PIL
    assert kinds["b/broken.jpg"] is None and "b/broken.jpg" in data.skipped_files()


def test_a_jpeg_the_decoder_rejects_goes_through_the_fallback():
    good = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 10, 10)).save(good, format="JPEG")
    samples = [torch.frombuffer(bytearray(good.getvalue()), dtype=torch.uint8), torch.frombuffer(bytearray(b"\xff\xd8junk"), dtype=torch.uint8)]
    transform = EvalTransform(8, normalize=None)
    images, kept = decode_batch(samples, transform, torch.device("cpu"), fallback=lambda i: None)
    assert kept == [0] and images.shape == (1, 3, 8, 8) and images[0, 0].mean() > 0.7
    images, kept = decode_batch(samples, transform, torch.device("cpu"), fallback=lambda i: torch.zeros(3, 8, 8))
    assert kept == [0, 1] and images.shape == (2, 3, 8, 8)


def test_when_the_device_path_is_used(jpeg_folder, monkeypatch):
    monkeypatch.delenv("EASYSSL_DECODE", raising=False)
    data = SSLDataset(jpeg_folder)
    cpu = torch.device("cpu")
    assert not use_device_decode(data, cpu)  # auto: only on a CUDA device; the CPU keeps PIL in workers
    assert use_device_decode(data, cpu, "device") and not use_device_decode(data, cpu, "pil")
    assert not use_device_decode(SSLDataset.from_torch_dataset([(np.zeros((4, 4, 3), np.uint8), 0)]), cpu, "device")
    monkeypatch.setenv("EASYSSL_DECODE", "device")
    assert use_device_decode(data, cpu)
    with pytest.raises(ValueError, match="decode must be"):
        use_device_decode(data, cpu, "gpu")


def test_embedding_on_a_cuda_device_reads_with_every_core_but_one(monkeypatch):
    import easyssl.defaults as defaults

    monkeypatch.setattr(defaults, "cpu_count", lambda: 16)
    assert defaults.default_embed_workers(torch.device("cuda")) == 15  # was 8: decode-bound on half the cores
    assert defaults.default_embed_workers(torch.device("cpu")) == 4  # the CPU rule is unchanged
