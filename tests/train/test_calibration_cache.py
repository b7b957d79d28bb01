"""Issue 11 item 2: the decoded-image cache fills while training, and the whitening pass reads it instead of the files."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import easyssl.data.dataset as dataset_module
from easyssl.api import build_training
from easyssl.config import eval_transform
from easyssl.data import CachedImageDataset, SSLDataset
from easyssl.train.whitening import calibrate_embeddings, calibration_loader


def _folder(root, n=40, size=28):
    rng = np.random.default_rng(1)
    for i in range(n):
        folder = root / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(folder / f"{i:03d}.png")
    return root


def _count_decodes(monkeypatch):
    calls = []
    real = dataset_module.load_image
    monkeypatch.setattr(dataset_module, "load_image", lambda path, *args, **kwargs: (calls.append(path), real(path, *args, **kwargs))[1])
    return calls


def test_training_fills_the_cache_and_calibration_decodes_no_file(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images")
    run = build_training(folder, checkpoint_dir=tmp_path / "run", model={"backbone": "resnet-18", "width": 0.125},
                         loader={"batch_size": 8, "num_workers": 0, "drop_last": False},
                         trainer={"max_epochs": 1, "progress_bar": False})
    cache = run.trainer.dataloader.dataset
    assert isinstance(cache, CachedImageDataset) and not bool(cache.filled.any())  # nothing decoded before training
    calls = _count_decodes(monkeypatch)
    calibration = run.trainer.calibration_loader
    run.trainer.calibration_loader = None  # train first, then count the calibration pass's decodes alone
    run.trainer.train_embedding(max_epochs=1, progress_bar=False, checkpoint_dir=None)
    assert bool(cache.filled.all()) and len(calls) == 40  # each file decoded once, during the first epoch
    calls.clear()
    assert calibrate_embeddings(run.trainer.model, calibration, device="cpu", precision="32") == 40
    assert calls == []  # every calibration image came from the cache


def test_cached_calibration_images_equal_the_decoded_ones_for_small_images(tmp_path):
    folder = _folder(tmp_path / "images", n=6)
    data = SSLDataset(folder)
    cache = CachedImageDataset(data, 28)
    for i in range(len(cache)):
        cache[i]
    transform = eval_transform({"collate": {"input_size": 28}})
    cached_batches = list(calibration_loader(data, transform, seed=0, device=torch.device("cpu"), cache=cache))
    file_batches = list(calibration_loader(data, transform, seed=0, device=torch.device("cpu")))
    assert len(cached_batches) == len(file_batches) == 1
    (a, ta, na), (b, tb, nb) = cached_batches[0], file_batches[0]
    assert type(a) is torch.Tensor and a.dtype == torch.float32 and a.shape == (6, 3, 28, 28)
    torch.testing.assert_close(a, b)  # the cache holds small images at their own size: the same tensors
    assert torch.equal(ta, tb) and na == nb


def test_a_partly_filled_cache_puts_its_images_first(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images", n=10)
    data = SSLDataset(folder)
    cache = CachedImageDataset(data, 28)
    for i in (7, 3):
        cache[i]
    loader = calibration_loader(data, eval_transform({"collate": {"input_size": 28}}), seed=0, device=torch.device("cpu"), cache=cache)
    order = list(loader.dataset.indices)
    assert sorted(order) == list(range(10)) and order != list(range(10))  # a random order (seeded), not the folder's
    loader.dataset.prefer_cached()
    held = [i for i in order if i in (3, 7)]
    assert loader.dataset.indices == held + [i for i in order if i not in (3, 7)]  # cached first, each group in its order
    calls = _count_decodes(monkeypatch)
    loader.dataset[0], loader.dataset[1]
    assert calls == []


def test_device_cache_loader_gives_the_workers_batches_and_the_uncached_images_after(tmp_path, monkeypatch):
    """On a GPU the calibration batches are made from the cache on the device (DeviceCacheLoader); on the CPU its
    batches are those of the loader it replaces, image for image, with the images the cache lacks decoded after."""
    from torch.utils.data import DataLoader

    from easyssl.data.collate import MultiViewCollate
    from easyssl.train.whitening import DeviceCacheLoader

    folder = _folder(tmp_path / "images", n=12, size=36)
    data = SSLDataset(folder)
    cache = CachedImageDataset(data, 32)  # photos' way: the cache holds a little more than the input size
    held = [0, 2, 3, 5, 8, 9, 10]
    for i in held:
        cache[i]
    transform = eval_transform({"collate": {"input_size": 28}})
    workers = calibration_loader(data, transform, seed=0, device=torch.device("cpu"), cache=cache)
    workers.dataset.prefer_cached()
    expected = [item for batch in workers for item in zip(*batch)]
    device = DeviceCacheLoader(workers.dataset, transform, torch.device("cpu"), batch_size=4,
                               fallback=lambda images: DataLoader(images, batch_size=4, collate_fn=MultiViewCollate()))
    calls = _count_decodes(monkeypatch)
    batches = list(device)
    assert len(device) == 4 and [len(b[2]) for b in batches] == [4, 3, 4, 1]  # 7 cached images, then the 5 others
    assert len(calls) == 5  # only the images the cache lacks are decoded
    got = [item for batch in batches for item in zip(*batch)]
    assert [name for _, _, name in got] == [name for _, _, name in expected]
    assert [int(t) for _, t, _ in got] == [int(t) for _, t, _ in expected]
    for (a, _, _), (b, _, _) in zip(got, expected):
        assert type(a) is torch.Tensor and a.dtype == torch.float32
        torch.testing.assert_close(a, b)  # the same transform on the same pixels


def test_calibration_loader_makes_cuda_batches_from_the_cache_only_on_cuda(tmp_path):
    from easyssl.train.whitening import DeviceCacheLoader

    data = SSLDataset(_folder(tmp_path / "images", n=4))
    cache = CachedImageDataset(data, 28)
    transform = eval_transform({"collate": {"input_size": 28}})
    assert isinstance(calibration_loader(data, transform, seed=0, device=torch.device("cuda"), cache=cache), DeviceCacheLoader)
    assert not isinstance(calibration_loader(data, transform, seed=0, device=torch.device("cpu"), cache=cache), DeviceCacheLoader)
    assert not isinstance(calibration_loader(data, transform, seed=0, device=torch.device("cuda")), DeviceCacheLoader)
