"""The GPU embedding loader that ships uint8 pixels and normalises them on the device (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import easyssl.defaults as defaults
from easyssl.data import MultiViewCollate, SSLDataset
from easyssl.inference.device_decode import use_device_decode
from easyssl.inference.loop import embed_with
from easyssl.inference.pixel_loader import PixelLoader, uses_pixel_loader
from easyssl.models import SimCLR, backbone
from easyssl.transforms import EvalTransform


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
    for i in range(11):
        pixels = rng.integers(0, 256, (30 + 5 * i, 52 - 2 * i, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / ("a" if i % 2 else "b") / f"p{i}.{'png' if i % 3 else 'jpg'}")
    Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(root / "a" / "grey.png")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return str(root)


def test_eval_transform_splits_exactly():
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((40, 70), (33, 33), (90, 20))]
    transform = EvalTransform(24)
    pixels = torch.stack([transform.pixels(image) for image in images])
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 3, 24, 24)
    assert torch.equal(transform.finish(pixels), torch.stack([transform(image) for image in images]))


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_equal_the_cpu_paths_and_unreadable_files_are_skipped(folder, workers):
    transform = EvalTransform(16)
    data = SSLDataset(folder, transform=transform)
    expected = [b for b in DataLoader(data, batch_size=4, collate_fn=MultiViewCollate()) if b is not None and b[0] is not None]
    got = [b for b in PixelLoader(data, transform, "cpu", batch_size=4, num_workers=workers) if b[0] is not None]
    assert len(PixelLoader(data, transform, "cpu", batch_size=4)) == 4  # 13 files
    assert torch.equal(torch.cat([b[0] for b in got]), torch.cat([b[0] for b in expected]))
    assert [n for b in got for n in b[2]] == [n for b in expected for n in b[2]] and "b/broken.jpg" not in [n for b in got for n in b[2]]
    assert torch.equal(torch.cat([b[1] for b in got]), torch.cat([b[1] for b in expected]))
    assert data.skipped_files() == ["b/broken.jpg"]


def test_embeddings_through_the_pixel_loader_equal_the_cpu_paths(folder):
    torch.manual_seed(0)
    model = SimCLR(backbone("resnet-18", width=0.125, small_input=True)).eval()
    transform = EvalTransform(16)
    data = SSLDataset(folder, transform=transform)
    cpu = torch.device("cpu")
    ours, labels, names = embed_with(model, PixelLoader(data, transform, cpu, batch_size=5), cpu, progress_bar=False)
    theirs, labels2, names2 = embed_with(model, DataLoader(data, batch_size=5, collate_fn=MultiViewCollate()), cpu, progress_bar=False)
    assert ours.shape[0] == 12 and names == names2 and labels == labels2
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_when_the_pixel_loader_and_the_device_decoder_are_used(folder, monkeypatch):
    monkeypatch.delenv("EASYSSL_DECODE", raising=False)
    transform = EvalTransform(16)
    data = SSLDataset(folder, transform=transform)
    cuda = torch.device("cuda")
    assert uses_pixel_loader(data, transform, cuda)
    assert not uses_pixel_loader(data, transform, torch.device("cpu"))  # the CPU path ships floats to a model beside it
    assert not uses_pixel_loader(data, EvalTransform(16), cuda)  # only the dataset's own transform is split
    assert not uses_pixel_loader(SSLDataset(folder, transform=lambda image: image), None, cuda)
    # JPEGs go to the GPU's decoder only with few cores; with many, PIL in the workers is faster (H200, 16 cores)
    monkeypatch.setattr(defaults, "cpu_count", lambda: 16)
    assert not defaults.default_device_decode(cuda) and not defaults.default_device_decode(torch.device("cpu"))
    monkeypatch.setattr(defaults, "cpu_count", lambda: 4)
    assert defaults.default_device_decode(cuda)
    assert defaults.default_embed_batch_size(cuda) == 256 == defaults.default_embed_batch_size(torch.device("cpu"))
